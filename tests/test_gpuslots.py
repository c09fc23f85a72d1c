"""igrm.pipeline.gpuslots: one flock slot per GPU, no GPU needed (fake slot counts, lock holders in
subprocesses)."""

import os
import subprocess
import sys
import textwrap
import threading
import time
import types

import pytest

from igrm.pipeline import gpuslots
from igrm.pipeline.gpuslots import acquire_gpu, gpu_ids

from .conftest import REPO


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "IGRM_GPUS", "IGRM_GPU_LOCK_DIR"):
        monkeypatch.delenv(k, raising=False)


HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from igrm.pipeline.gpuslots import acquire_gpu
    with acquire_gpu(n_gpus={n!r}, lock_dir={d!r}, count={count}) as ids:
        print(",".join(ids), flush=True)
        sys.stdin.read()            # hold until the parent closes our stdin (or kills us)
""")


def holder(tmp_path, n, count=1):
    """A subprocess that holds `count` slots until killed or its stdin is closed; returns
    (proc, its devices)."""
    code = HOLDER.format(repo=str(REPO), n=n, d=str(tmp_path), count=count)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"},
    )
    line = proc.stdout.readline().strip()
    assert line, "lock holder did not start"
    return proc, line.split(",")


def test_slots_are_distinct_and_released(tmp_path):
    with acquire_gpu(n_gpus=3, lock_dir=tmp_path) as a:
        assert a == ["0"] and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        proc, theirs = holder(tmp_path, 3)  # a second job while this one holds GPU 0
        assert theirs == ["1"]
        proc.kill()
        proc.wait()
    assert "CUDA_VISIBLE_DEVICES" not in os.environ and "CUDA_DEVICE_ORDER" not in os.environ
    with acquire_gpu(n_gpus=3, lock_dir=tmp_path) as c:
        assert c == ["0"]


def test_another_process_holding_a_slot_is_skipped(tmp_path):
    proc, theirs = holder(tmp_path, 2)
    try:
        assert theirs == ["0"]
        with acquire_gpu(n_gpus=2, lock_dir=tmp_path) as mine:
            assert mine == ["1"]
            assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    finally:
        proc.kill()
        proc.wait()


def test_all_slots_taken_waits_then_times_out(tmp_path):
    proc, _ = holder(tmp_path, 1)
    try:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            with acquire_gpu(n_gpus=1, lock_dir=tmp_path, timeout=0.6, poll=0.1):
                pass
        assert time.monotonic() - t0 >= 0.5
        assert "CUDA_VISIBLE_DEVICES" not in os.environ
    finally:
        proc.kill()
        proc.wait()


def test_killed_holder_frees_its_slot(tmp_path):
    """flock dies with the process: a SIGKILLed job leaves no stale slot."""
    proc, theirs = holder(tmp_path, 1)
    assert theirs == ["0"]
    proc.kill()
    proc.wait()
    with acquire_gpu(n_gpus=1, lock_dir=tmp_path, timeout=5) as ids:
        assert ids == ["0"]


def test_waiting_job_gets_the_slot_when_it_frees(tmp_path):
    """A job that finds every slot taken says so and waits, and gets the slot once its
    holder releases it (released by the test, not by a clock)."""
    import logging

    proc, _ = holder(tmp_path, 1)
    waiting, got, errors = threading.Event(), [], []

    class Seen(logging.Handler):
        def emit(self, record):
            if "are taken: waiting" in record.getMessage():
                waiting.set()

    handler = Seen()
    gpuslots.log.addHandler(handler)
    old_level = gpuslots.log.level
    gpuslots.log.setLevel(logging.INFO)

    def waiter():
        try:
            with acquire_gpu(n_gpus=1, lock_dir=tmp_path, timeout=120, poll=0.05) as ids:
                got.append(list(ids))
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    try:
        assert waiting.wait(timeout=60), errors  # it tried, found the slot taken
        assert not got
    finally:
        proc.stdin.close()  # the holder leaves its `with` and exits
        proc.wait(timeout=60)
        t.join(timeout=120)
        gpuslots.log.removeHandler(handler)
        gpuslots.log.setLevel(old_level)
    assert not errors, errors
    assert got == [["0"]]


def test_concurrent_jobs_each_get_their_own_device(tmp_path):
    procs = [holder(tmp_path, 4) for _ in range(4)]
    try:
        got = sorted(ids[0] for _, ids in procs)
        assert got == ["0", "1", "2", "3"]
    finally:
        for p, _ in procs:
            p.kill()
            p.wait()


def test_multi_gpu_job_takes_all_or_nothing(tmp_path):
    proc, theirs = holder(tmp_path, 3, count=1)
    try:
        with acquire_gpu(n_gpus=3, lock_dir=tmp_path, count=2) as ids:
            assert ids == ["1", "2"] and os.environ["CUDA_VISIBLE_DEVICES"] == "1,2"
        with pytest.raises(TimeoutError):  # only 2 free slots are left... after
            with acquire_gpu(n_gpus=3, lock_dir=tmp_path, count=3, timeout=0.3, poll=0.1):
                pass
        # the failed 3-slot attempt released what it had grabbed
        with acquire_gpu(n_gpus=3, lock_dir=tmp_path, count=2, timeout=1) as ids:
            assert ids == ["1", "2"]
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(RuntimeError, match="needs 4 GPU"):
        with acquire_gpu(n_gpus=3, lock_dir=tmp_path, count=4):
            pass


def test_scheduler_assignment_is_kept(tmp_path, monkeypatch):
    """SLURM sets CUDA_VISIBLE_DEVICES: no slot, no change."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with acquire_gpu(n_gpus=4, lock_dir=tmp_path) as ids:
        assert ids == ["3"] and os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert not list(tmp_path.iterdir())


def test_cpu_job_is_left_alone(tmp_path):
    with acquire_gpu(n_gpus=2, lock_dir=tmp_path, count=0) as ids:
        assert ids == [] and "CUDA_VISIBLE_DEVICES" not in os.environ
    assert not list(tmp_path.iterdir())


def test_gpu_ids_sources(tmp_path, monkeypatch):
    assert gpu_ids(2) == ["0", "1"]
    assert gpu_ids("1,3") == ["1", "3"]
    monkeypatch.setenv("IGRM_GPUS", "2,5")
    assert gpu_ids() == ["2", "5"]
    with acquire_gpu(lock_dir=tmp_path) as ids:
        assert ids == ["2"]
    monkeypatch.setenv("IGRM_GPUS", "3")
    assert gpu_ids() == ["0", "1", "2"]
    with pytest.raises(ValueError):
        gpu_ids("gpu0")
    monkeypatch.setenv("IGRM_GPU_LOCK_DIR", str(tmp_path / "env"))
    with acquire_gpu() as ids:
        assert ids == ["0"]
    assert (tmp_path / "env" / "gpu0.lock").exists()


def test_cuda_initialised_first_is_an_error(tmp_path, monkeypatch):
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_initialized=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake)
    with pytest.raises(RuntimeError, match="before acquire_gpu"):
        with acquire_gpu(n_gpus=1, lock_dir=tmp_path):
            pass
    assert gpuslots._cuda_initialised()


@pytest.mark.parametrize("where", ["/etc/passwd", "/etc/passwd/slots"])
def test_unusable_lock_dir_names_the_variable(monkeypatch, where):
    """IGRM_GPU_LOCK_DIR pointing at a file (or below one): an error that names the variable."""
    monkeypatch.setenv("IGRM_GPU_LOCK_DIR", where)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(RuntimeError, match=f"IGRM_GPU_LOCK_DIR='{where}'"):
        with acquire_gpu(n_gpus=1, count=1):
            pass
