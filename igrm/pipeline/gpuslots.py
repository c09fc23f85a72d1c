"""One machine, several GPUs: give each concurrent GPU job its own device.

Snakemake's ``--resources gpu=N`` only caps how many GPU jobs run at once; it does not say
which device a job should use (snakemake#281), so without help every job lands on GPU 0.
:func:`acquire_gpu` fixes that with one lock file per GPU: a job takes a non-blocking
``flock`` on the first free ``gpu<i>.lock`` and sets ``CUDA_VISIBLE_DEVICES=<i>`` before
CUDA is initialised, so ``cuda:0`` in that process is its own device. ``flock`` locks go
away with the process, so a crashed or killed job never leaves a slot taken.

Under a scheduler that assigns GPUs itself (SLURM sets ``CUDA_VISIBLE_DEVICES`` for
``--gpus``/``--gres``), or when the user has set ``CUDA_VISIBLE_DEVICES``, nothing is
changed. Jobs that ask for no GPU (``count=0``) are left alone.

Which GPUs are shared: ``n_gpus`` if given, else ``IGRM_GPUS`` (a count, ``4``, or device
ids, ``2,3``), else the NVIDIA driver's list (``/proc/driver/nvidia/gpus``), else
``torch.cuda.device_count()`` asked in a subprocess (asking in this process would
initialise CUDA before the choice is made). Lock files live in ``lock_dir``, else
``IGRM_GPU_LOCK_DIR``, else ``<tmp>/igrm-gpu-slots`` (one folder per machine, shared by
every user and every Snakemake run on it).

    with acquire_gpu(count=1) as devices:    # e.g. ['1']; [] when no GPU is used
        train(...)

Several runs per GPU: ``runs_per_gpu=k`` (else ``IGRM_RUNS_PER_GPU``, else 1) gives each
GPU k lock files (``gpu<i>.lock``, then ``gpu<i>.s1.lock`` ... ``gpu<i>.s<k-1>.lock``), so k
jobs share one device; slots are handed out breadth first (every GPU's first slot before
any GPU's second), and a multi-GPU job (``count`` > 1) takes slots on ``count`` distinct
GPUs. Each job stays its own process, with its own CUDA context and RNG streams, so its
metrics are those it would have alone (bit-identical on the CPU; on a GPU within the
run-to-run variation of cuDNN's algorithm choice). Snakemake's ``gpu`` resource then
counts runs: ``--resources gpu=<n_gpus * k>`` (docs/cluster.md, "Several runs per GPU").
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

ENV_GPUS = "IGRM_GPUS"
ENV_LOCK_DIR = "IGRM_GPU_LOCK_DIR"
ENV_RUNS_PER_GPU = "IGRM_RUNS_PER_GPU"
VISIBLE = "CUDA_VISIBLE_DEVICES"


def default_lock_dir() -> Path:
    return Path(os.environ.get(ENV_LOCK_DIR) or Path(tempfile.gettempdir()) / "igrm-gpu-slots")


def gpu_ids(n_gpus: int | str | None = None) -> list[str]:
    """The device ids to share (see the module docstring for the order of sources)."""
    spec = n_gpus if n_gpus is not None else os.environ.get(ENV_GPUS)
    if spec is not None and str(spec).strip() != "":
        s = str(spec).strip()
        if "," in s or not s.isdigit():
            ids = [p.strip() for p in s.split(",") if p.strip()]
            if not all(i.isdigit() for i in ids):
                raise ValueError(f"{ENV_GPUS} / n_gpus: expected a count or device ids like '0,2', got {s!r}")
            return ids
        return [str(i) for i in range(int(s))]
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir():
        return [str(i) for i in range(len(list(proc.iterdir())))]
    try:
        out = subprocess.run(
            [sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return [str(i) for i in range(int(out.stdout.strip().splitlines()[-1]))]
    except Exception:  # no torch, no driver: no GPU
        return []


def resolve_runs_per_gpu(k: int | str | None = None) -> int:
    """Jobs sharing one GPU: ``k`` if given, else ``IGRM_RUNS_PER_GPU``, else 1."""
    spec = k if k is not None else os.environ.get(ENV_RUNS_PER_GPU)
    if spec is None or str(spec).strip() == "":
        return 1
    s = str(spec).strip()
    if not s.isdigit() or int(s) < 1:
        raise ValueError(f"{ENV_RUNS_PER_GPU} / runs_per_gpu: expected an integer >= 1, got {s!r}")
    return int(s)


def slot_files(ids: list[str], k: int) -> list[tuple[str, str]]:
    """(device id, lock file name) of every slot, breadth first over the GPUs."""
    return [(i, f"gpu{i}.lock" if s == 0 else f"gpu{i}.s{s}.lock") for s in range(k) for i in ids]


def _cuda_initialised() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:
        return False


def _try_lock(path: Path):
    """An fd holding an exclusive flock on ``path``, or None if another process holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _lock_dir(lock_dir) -> Path:
    d = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    try:
        if not d.is_dir():
            d.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(PermissionError):
                d.chmod(0o1777)  # shared by every user, like /tmp
        probe = _try_lock(d / ".probe")  # a folder we cannot create files in fails here, named
        if probe is not None:
            os.close(probe)
    except OSError as e:
        source = f"{ENV_LOCK_DIR}={os.environ.get(ENV_LOCK_DIR)!r}" if lock_dir is None else f"lock_dir={str(d)!r}"
        raise RuntimeError(
            f"the GPU slot folder {d} cannot be used ({type(e).__name__}: {e}); it comes from {source}: "
            f"set {ENV_LOCK_DIR} to a writable folder (or unset it for {Path(tempfile.gettempdir()) / 'igrm-gpu-slots'})"
        ) from None
    return d


@contextlib.contextmanager
def acquire_gpu(
    n_gpus: int | str | None = None,
    lock_dir: str | os.PathLike | None = None,
    count: int = 1,
    timeout: float | None = None,
    poll: float = 0.5,
    runs_per_gpu: int | str | None = None,
) -> Iterator[list[str]]:
    """Hold ``count`` GPU slots (on distinct GPUs) for the ``with`` block and make only
    them visible; ``runs_per_gpu`` slots per GPU (see the module docstring).

    Yields the visible device ids (``[]`` when the job uses no GPU). Waits while every slot
    is taken (``timeout`` seconds, then ``TimeoutError``; ``None`` waits for ever). On exit
    the slots are released and ``CUDA_VISIBLE_DEVICES`` is restored.
    """
    count = int(count or 0)
    if count <= 0:
        yield []
        return
    if os.environ.get(VISIBLE) is not None:
        ids = [i for i in os.environ[VISIBLE].split(",") if i.strip()]
        log.info("%s=%s set by the scheduler (or the user): no GPU slot taken", VISIBLE, os.environ[VISIBLE])
        yield ids
        return
    if _cuda_initialised():
        raise RuntimeError(
            "CUDA was initialised before acquire_gpu(): the device choice "
            "cannot take effect; call acquire_gpu() before any CUDA use"
        )
    ids = gpu_ids(n_gpus)
    k = resolve_runs_per_gpu(runs_per_gpu)
    if count > len(ids):
        raise RuntimeError(
            f"this job needs {count} GPU(s) but the machine has {len(ids)} "
            f"({ENV_GPUS}={os.environ.get(ENV_GPUS)!r}); set {ENV_GPUS} or use a CPU config"
        )
    d = _lock_dir(lock_dir)
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    held: list[tuple[str, int]] = []
    waited = set_order = False
    try:
        while True:
            for i, name in slot_files(ids, k):
                if len(held) == count:
                    break
                if any(i == j for j, _ in held):  # one slot per device
                    continue
                fd = _try_lock(d / name)
                if fd is not None:
                    held.append((i, fd))
            if len(held) == count:
                break
            for _, fd in held:  # all or nothing: no two jobs each holding half
                os.close(fd)
            held = []
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no {count} free GPU slot(s) among {ids} in {d} after {timeout} s")
            if not waited:
                log.info("all %d GPU slots (%d per GPU) in %s are taken: waiting", len(ids) * k, k, d)
                waited = True
            time.sleep(poll)
        chosen = [i for i, _ in held]
        os.environ[VISIBLE] = ",".join(chosen)
        set_order = "CUDA_DEVICE_ORDER" not in os.environ
        if set_order:  # ids as nvidia-smi numbers them
            os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        log.info("GPU slot(s) %s of %s: %s=%s", chosen, ids, VISIBLE, os.environ[VISIBLE])
        yield chosen
    finally:
        if held:
            os.environ.pop(VISIBLE, None)
            if set_order:
                os.environ.pop("CUDA_DEVICE_ORDER", None)
        for _, fd in held:
            os.close(fd)
