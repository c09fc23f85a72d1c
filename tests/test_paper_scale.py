"""Paper-scale economies (issue 25): full-batch evaluation on a schedule, the deterministic
choice, the shared epoch-0 measurement. Small CPU runs, seconds each."""

import math

import numpy as np
import torch

from igrm.pipeline.config import schema_defaults
from igrm.pipeline.targets import train_job_cfg
from igrm.tidy.runs import _summary as summary  # noqa: PLC2701
from igrm.train import deterministic_in_effect, train

from .test_train import BASE, tiny_data

FB = {**BASE, "method": "gdm", "fullbatch_subset": 40, "augment": ["none"], "epochs": 7}


def test_fullbatch_runs_evaluate_on_the_schedule_and_the_last_step():
    data = tiny_data()
    every, _ = train({**FB, "eval_every": 1}, data, None, None)
    sparse, at = train({**FB, "eval_every": 3}, data, None, None)
    evaluated = np.isfinite(sparse["test_acc"])
    np.testing.assert_array_equal(np.flatnonzero(evaluated) + 1, [3, 6, 7])
    # the evaluated steps read what evaluating every step reads; the trajectory is the same
    for k in ("test_acc", "test_loss"):
        np.testing.assert_array_equal(sparse[k][evaluated], every[k][evaluated])
    for k in ("train_loss", "grad_norm_sq", "final_state/linear.weight"):
        np.testing.assert_array_equal(sparse[k], every[k])
    assert at["eval_every"] == 3
    # the tidy final row reads the last evaluation; the best over the evaluated steps
    s = summary(sparse["test_acc"], True, 2)
    assert s["final_test_acc"] == every["test_acc"][-1]
    assert s["best_test_acc"] == every["test_acc"][evaluated].max()
    assert math.isfinite(s["last_mean_test_acc"])


def test_a_changed_schedule_resumes_the_run(tmp_path):
    """eval_every changes what is measured, not the trajectory: a checkpoint resumes under another."""
    data = tiny_data()
    train({**FB, "epochs": 4, "eval_every": 3, "checkpoint_every": 1}, data, tmp_path, None)
    a, at = train({**FB, "eval_every": 1, "checkpoint_every": 1}, data, tmp_path, None)
    assert at["resumed_from_epoch"] == 4
    # steps 3 and 4 (the end of the first run) evaluated, then every step
    np.testing.assert_array_equal(np.isfinite(a["test_acc"]), [False, False, True, True, True, True, True])


def test_the_pipeline_gives_the_schedule_to_full_batch_runs_only():
    cfg = {"train": schema_defaults("train"), "noise": {"runs": [], "points": []}}
    cfg["train"]["explicit"]["eval_every"] = 5
    assert train_job_cfg(cfg, "cifar10", "gdm", 0.9, 0.1, 0)["eval_every"] == 5
    assert train_job_cfg(cfg, "cifar10", "igrm_explicit", 0.9, 0.1, 0)["eval_every"] == 5
    assert train_job_cfg(cfg, "cifar10", "sgdm", 0.9, 0.1, 0)["eval_every"] == 1


def test_deterministic_choice_is_bit_identical_on_cpu_and_recorded():
    data = tiny_data()
    cfg = {**BASE, "epochs": 1}
    fast, a_fast = train({**cfg, "deterministic": False}, data, None, None)
    det, a_det = train({**cfg, "deterministic": True}, data, None, None)
    auto, a_auto = train({**cfg, "deterministic": "auto"}, data, None, None)
    for k in fast:
        if not k.endswith("wall_time"):
            np.testing.assert_array_equal(fast[k], det[k], err_msg=k)
            np.testing.assert_array_equal(auto[k], det[k], err_msg=k)
    assert (a_fast["deterministic"], a_fast["fill_uninitialized_memory"]) == (False, False)
    assert (a_det["deterministic"], a_det["fill_uninitialized_memory"]) == (True, True)
    assert a_auto["deterministic"] is True and a_auto["config"]["deterministic"] == "auto"  # auto: on, on the CPU
    assert not torch.are_deterministic_algorithms_enabled()  # restored


def test_auto_is_the_fast_path_on_cuda_only():
    assert deterministic_in_effect("auto", torch.device("cuda")) is False
    assert deterministic_in_effect("auto", torch.device("cpu")) is True
    assert deterministic_in_effect(True, torch.device("cuda")) is True
    assert schema_defaults("train")["deterministic"] == "auto"


# ---------------------------------------------------------------- the shared epoch-0 measurement
SH = {**BASE, "epochs": 1, "sharpness": {**BASE["sharpness"], "points": 2}}


def test_epoch0_measurement_is_shared_by_the_betas_of_a_seed(tmp_path):
    data = tiny_data()
    root = tmp_path / "ckpt" / "sgdm"
    msgs: list[str] = []
    first, _ = train({**SH, "beta": 0.9}, data, root / "beta0.9", msgs.append)
    files = list((root / "epoch0").glob("*.json"))
    assert len(files) == 1 and not any("shared measurement" in m for m in msgs)
    msgs.clear()
    shared, _ = train({**SH, "beta": 0.5}, data, root / "beta0.5", msgs.append)
    assert any("shared measurement" in m for m in msgs)
    alone, _ = train({**SH, "beta": 0.5}, data, None, None)  # measured, no cache
    for k in shared:
        if not k.endswith("wall_time"):
            np.testing.assert_array_equal(shared[k], alone[k], err_msg=k)
    # β changes h and ε at epoch 0, not λ_max
    assert shared["sharpness/lambda_max"][0] == first["sharpness/lambda_max"][0]
    assert shared["sharpness/h"][0] != first["sharpness/h"][0]
    # another seed is another initialisation: its own file
    train({**SH, "beta": 0.5, "seed": 4}, data, root / "s4", None)
    assert len(list((root / "epoch0").glob("*.json"))) == 2


def test_a_damaged_epoch0_file_is_ignored_and_rewritten(tmp_path):
    data = tiny_data()
    root = tmp_path / "sgdm"
    ref, _ = train(SH, data, root / "a", None)
    (path,) = (root / "epoch0").glob("*.json")
    text = path.read_text()
    lam = repr(float(ref["sharpness/lambda_max"][0]))
    assert lam in text
    path.write_text(text.replace(lam, repr(2 * float(lam)), 1))  # checksum no longer matches
    msgs: list[str] = []
    again, _ = train(SH, data, root / "b", msgs.append)
    assert any("ignored" in m and "sha256" in m for m in msgs)
    assert again["sharpness/lambda_max"][0] == ref["sharpness/lambda_max"][0]
    assert "ignored" not in " ".join(_messages(train, SH, data, root / "c"))  # rewritten, valid again


def _messages(fn, cfg, data, ckpt):
    msgs: list[str] = []
    fn(cfg, data, ckpt, msgs.append)
    return msgs


# ---------------------------------------------------------------- the device check, CPU smoke mode
def test_gpu_check_cpu_smoke(tmp_path):
    """benchmarks/gpu_check.py --cpu-smoke: the timing sections (deterministic vs fast path,
    full-batch steps on the preset's schedule, the ensemble at K = 1, 2) and the estimate from
    igrm.pipeline.plan.work run and hold their checks on the CPU."""
    import json
    import os
    import subprocess
    import sys

    from .conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu-smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
    )
    rep = json.loads((tmp_path / "report.json").read_text())
    failed = {k: v.get("error") for k, v in rep["sections"].items() if v["status"] != "ok"}
    assert proc.returncode == 0 and not failed, (failed, proc.stderr[-3000:])
    r = {k: v["result"] for k, v in rep["sections"].items()}
    assert r["paths"]["bit_identical"] and r["paths"]["match"]  # the CPU: both paths give the same numbers
    assert r["fullbatch"]["evaluated_steps"] == [2, 4]
    assert all(v["member0_matches_alone"] for v in r["ensemble"]["ks"].values())
    est = r["estimate"]
    assert est["runs"] == {"sgd": 48, "fullbatch": 18, "jobs": est["runs"]["jobs"]}
    assert est["best"] in est["ways"] and est["ways"][est["best"]]["matches"]
    assert est["gpu_hours_best"] == min(v["gpu_hours"] for v in est["ways"].values() if v["matches"])
