"""The GPU paths of igrm.train exercised on the CPU (issue 15): bf16 autocast (``bf16:
always``), torch.compile of the training step (backend aot_eager: inductor compiles for
minutes on this machine), several runs sharing one GPU slot set (igrm.pipeline.gpuslots
runs_per_gpu) giving each run its metrics alone, and benchmarks/gpu_check.py in its
no-GPU mode."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from igrm.pipeline.gpuslots import acquire_gpu, resolve_runs_per_gpu, slot_files
from igrm.train import cfg_fingerprint, resolve_config, train
from tests.test_train import BASE, tiny_data

from .conftest import REPO

torch.set_num_threads(1)
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm_sq")
ONE = {**BASE, "epochs": 1}


def _train(**keys):
    msgs = []
    arrays, attrs = train({**ONE, **keys}, tiny_data(), None, msgs.append)
    return arrays, attrs, msgs


# ---------------------------------------------------------------- bf16 on the CPU, compile
# (the bf16 autocast path itself, bf16 vs fp32, the explicit double backward under bf16, the
# compiled step against eager and its fallback run in benchmarks/gpu_check.py: test below)
def test_bf16_true_is_cuda_only_on_the_cpu():
    ref, a_ref, _ = _train()
    same, a_same, _ = _train(bf16=True)  # production meaning: ignored on the CPU
    assert a_ref["bf16"] is False and a_same["bf16"] is False
    for k in METRICS:
        np.testing.assert_array_equal(same[k], ref[k])
    cpu = torch.device("cpu")
    fp = {b: cfg_fingerprint(resolve_config({**ONE, "bf16": b}), cpu)["bf16"] for b in (False, True, "always")}
    assert fp == {False: False, True: False, "always": True}


def test_compile_is_not_in_the_fingerprint_and_bad_values_are_named():
    cpu = torch.device("cpu")
    assert cfg_fingerprint(resolve_config({**ONE, "compile": "aot_eager"}), cpu) == cfg_fingerprint(
        resolve_config(ONE), cpu
    )
    with pytest.raises(ValueError, match="bf16"):
        resolve_config({**ONE, "bf16": "cpu"})
    with pytest.raises(ValueError, match="compile"):
        resolve_config({**ONE, "compile": "tensorrt"})


# ---------------------------------------------------------------- several runs per GPU
def test_runs_per_gpu_slots(tmp_path, monkeypatch):
    for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "IGRM_GPUS", "IGRM_RUNS_PER_GPU"):
        monkeypatch.delenv(k, raising=False)
    assert [n for _, n in slot_files(["0", "1"], 2)] == ["gpu0.lock", "gpu1.lock", "gpu0.s1.lock", "gpu1.s1.lock"]
    assert resolve_runs_per_gpu(None) == 1
    monkeypatch.setenv("IGRM_RUNS_PER_GPU", "3")
    assert resolve_runs_per_gpu(None) == 3 and resolve_runs_per_gpu(2) == 2
    with pytest.raises(ValueError, match="RUNS_PER_GPU"):
        resolve_runs_per_gpu("0")
    monkeypatch.delenv("IGRM_RUNS_PER_GPU")
    # one GPU, two slots: two jobs share device 0, a third waits (here: times out)
    with acquire_gpu(n_gpus=1, lock_dir=tmp_path, runs_per_gpu=2) as a:
        assert a == ["0"]
        saved = os.environ.pop("CUDA_VISIBLE_DEVICES")
        with acquire_gpu(n_gpus=1, lock_dir=tmp_path, runs_per_gpu=2) as b:
            assert b == ["0"]
            os.environ.pop("CUDA_VISIBLE_DEVICES")
            with pytest.raises(TimeoutError):
                with acquire_gpu(n_gpus=1, lock_dir=tmp_path, runs_per_gpu=2, timeout=0.2, poll=0.05):
                    pass
            os.environ["CUDA_VISIBLE_DEVICES"] = "0"
        os.environ["CUDA_VISIBLE_DEVICES"] = saved
    # two GPUs, two slots each: breadth first, and a 2-GPU job takes two distinct devices
    with acquire_gpu(n_gpus=2, lock_dir=tmp_path / "b", runs_per_gpu=2) as a:
        assert a == ["0"]
        saved = os.environ.pop("CUDA_VISIBLE_DEVICES")
        with acquire_gpu(n_gpus=2, lock_dir=tmp_path / "b", runs_per_gpu=2, count=2) as b:
            assert sorted(b) == ["0", "1"]
        os.environ["CUDA_VISIBLE_DEVICES"] = saved


# ---------------------------------------------------------------- the device check, CPU mode
@pytest.mark.pipeline
def test_gpu_check_cpu_mode(tmp_path):
    """benchmarks/gpu_check.py --cpu: every section runs and its checks hold; without a
    GPU the report says so. Its concurrency section is the test that two runs sharing one
    GPU's slots give bit-identical metrics and weights to the same run alone."""
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "IGRM_RUNS_PER_GPU")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
    )
    rep = json.loads((tmp_path / "report.json").read_text())
    md = (tmp_path / "report.md").read_text()
    failed = {k: v.get("error") for k, v in rep["sections"].items() if v["status"] != "ok"}
    assert proc.returncode == 0 and not failed, (failed, proc.stdout[-3000:], proc.stderr[-3000:])
    assert rep["mode"] == "cpu" and list(rep["sections"]) == [
        "card",
        "epoch",
        "loader",
        "bf16_vs_fp32",
        "explicit_bf16",
        "paths",
        "fullbatch",
        "ensemble",
        "concurrency",
        "snakemake",
        "estimate",
    ]
    if not torch.cuda.is_available():
        assert rep["no_gpu"] and "No GPU was found" in md and "NO GPU FOUND" in proc.stdout
    r = {k: v["result"] for k, v in rep["sections"].items()}
    ep = r["epoch"]["runs"]
    assert ep["compiled"]["compiled"] and not ep["eager"]["compiled"]
    assert ep["compiled"]["loss_max_rel_diff_vs_eager"] <= 1e-5  # aot_eager: the same kernels
    b = r["bf16_vs_fp32"]
    assert b["bf16"] and b["autocast_changed_numbers"] and b["within_tolerance"]
    assert r["explicit_bf16"]["bf16"] and r["explicit_bf16"]["finite"] and r["explicit_bf16"]["compile_fell_back"]
    for k, c in r["concurrency"]["ks"].items():
        assert c["seed0_bit_identical_to_alone"], k
    sm = r["snakemake"]
    assert sm["two_jobs_concurrent"] and all(len(x["epoch_wall_s"]) == 2 for x in sm["runs"])
    assert sm["first_job_bit_identical_to_alone"]  # the HDF5 of a job that shared the GPU slots
    assert r["estimate"]["gpu_hours_one_run_per_gpu"] > 0 and r["estimate"]["runs"]["sgd"] == 48
    assert set(r["loader"]["results"]) >= {"igrm on-device", "torchvision DataLoader, 0 workers"}
