"""The GPU paths of igrm.train exercised on the CPU (issue 15): bf16 autocast (``bf16:
always``), torch.compile of the training step (backend aot_eager: inductor compiles for
minutes on this machine), several runs sharing one GPU slot set (igrm.gpuslots
runs_per_gpu) giving each run its metrics alone, and benchmarks/gpu_check.py in its
no-GPU mode."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from igrm.gpuslots import acquire_gpu, resolve_runs_per_gpu, slot_files
from igrm.train import _cfg_fingerprint, resolve_config, train
from tests.test_train import BASE, tiny_data

from .conftest import REPO

torch.set_num_threads(1)
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm_sq")
ONE = {**BASE, "epochs": 1}
EXPLICIT = {"method": "igrm_explicit", "fullbatch_subset": 64, "epochs": 2, "augment": ["none"]}


def _train(**keys):
    msgs = []
    arrays, attrs = train({**ONE, **keys}, tiny_data(), None, msgs.append)
    return arrays, attrs, msgs


# ---------------------------------------------------------------- bf16 on the CPU
def test_bf16_true_is_cuda_only_and_always_runs_cpu_autocast():
    ref, a_ref, _ = _train()
    same, a_same, _ = _train(bf16=True)             # production meaning: ignored on the CPU
    assert a_ref["bf16"] is False and a_same["bf16"] is False
    for k in METRICS:
        np.testing.assert_array_equal(same[k], ref[k])
    low, a_low, _ = _train(bf16="always")           # the bf16 autocast path, on the CPU
    assert a_low["bf16"] is True
    assert not np.array_equal(low["train_loss"], ref["train_loss"]), "autocast had no effect"
    # bf16 rounding (8-bit mantissa): a short run's losses agree to ~1e-3 relative
    np.testing.assert_allclose(low["train_loss"], ref["train_loss"], rtol=5e-3)
    np.testing.assert_allclose(low["test_loss"], ref["test_loss"], rtol=5e-3)
    assert all(low[k].dtype == np.float32 for k in low if k.startswith("final_state/") and "weight" in k)
    cpu = torch.device("cpu")
    fp = {b: _cfg_fingerprint(resolve_config({**ONE, "bf16": b}), cpu)["bf16"] for b in (False, True, "always")}
    assert fp == {False: False, True: False, "always": True}


def test_explicit_double_backward_under_bf16_autocast():
    ref, _, _ = _train(**EXPLICIT)
    low, attrs, _ = _train(**EXPLICIT, bf16="always")
    assert attrs["bf16"] is True and attrs["status"] == "completed"
    assert np.isfinite(low["train_loss"]).all() and np.isfinite(low["grad_norm_sq"]).all()
    np.testing.assert_allclose(low["train_loss"], ref["train_loss"], rtol=5e-3)


def test_bad_bf16_and_compile_values_are_named():
    with pytest.raises(ValueError, match="bf16"):
        resolve_config({**ONE, "bf16": "cpu"})
    with pytest.raises(ValueError, match="compile"):
        resolve_config({**ONE, "compile": "tensorrt"})


# ---------------------------------------------------------------- torch.compile
def test_compiled_step_agrees_with_eager():
    ref, a_ref, _ = _train()
    comp, attrs, _ = _train(compile="aot_eager")
    assert attrs["compiled"] is True and a_ref["compiled"] is False
    for k in METRICS:   # aot_eager runs the same kernels: agreement to float rounding
        np.testing.assert_allclose(comp[k], ref[k], rtol=1e-5, atol=1e-7)
    for k in (k for k in ref if k.startswith("final_state/")):
        np.testing.assert_allclose(comp[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # an execution option, not part of the checkpoint fingerprint: a run resumes either way
    cpu = torch.device("cpu")
    assert _cfg_fingerprint(resolve_config({**ONE, "compile": "aot_eager"}), cpu) == \
        _cfg_fingerprint(resolve_config(ONE), cpu)


def test_compile_falls_back_to_eager_for_the_double_backward():
    ref, _, _ = _train(**EXPLICIT)
    out, attrs, msgs = _train(**EXPLICIT, compile="aot_eager")
    assert attrs["compiled"] is False
    assert any("double backward runs eager" in m for m in msgs)
    for k in METRICS:
        np.testing.assert_array_equal(out[k], ref[k])


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


SHARED_RUN = textwrap.dedent("""
    import json, sys, numpy as np, torch
    sys.path.insert(0, {repo!r})
    torch.set_num_threads(1)
    from igrm.gpuslots import acquire_gpu
    from igrm.train import train
    from tests.test_train import tiny_data
    cfg = json.loads(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()                       # start together
    with acquire_gpu(n_gpus=1, lock_dir={d!r}, runs_per_gpu=2, timeout=0) as ids:
        assert ids == ["0"], ids
        arrays, _ = train(cfg, tiny_data(), None, lambda m: None)
    np.savez(sys.argv[2], **arrays)
""")


def test_two_runs_sharing_a_gpu_slot_set_match_each_alone(tmp_path):
    """Two training jobs at once in the two slots of one (fake) GPU, on the CPU: each
    gives bit-identical metrics and final weights to the same run alone."""
    cfgs = [{**ONE, "seed": 3}, {**ONE, "seed": 4, "beta": 0.5}]
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "IGRM_RUNS_PER_GPU")}
    code = SHARED_RUN.format(repo=str(REPO), d=str(tmp_path / "locks"))
    procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(c), str(tmp_path / f"run{i}.npz")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
             for i, c in enumerate(cfgs)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        p.stdin.close()
        assert p.wait(timeout=300) == 0
    for i, c in enumerate(cfgs):
        alone, _ = train(c, tiny_data(), None, lambda m: None)
        shared = np.load(tmp_path / f"run{i}.npz")
        for k in [*METRICS, *(k for k in alone if k.startswith("final_state/"))]:
            np.testing.assert_array_equal(shared[k], alone[k], err_msg=k)
