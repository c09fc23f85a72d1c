"""One deep-network training run: SGD+M, full-batch GD+M, or the explicit IGR-M baseline.

``train(cfg, data, checkpoint_dir, progress)`` -> ``(arrays, attrs)``; see
docs/training.md for the cfg keys, the returned arrays and the resume contract.

Data stay on the device as uint8 (N, C, H, W) (channels_last strides); each batch is
augmented and normalised on the device (airbench style). Every random choice comes
from an explicit ``torch.Generator`` seeded from the run seed: ``subset`` (CPU,
which examples), ``order`` (shuffling) and ``augment`` (crops, flips, cutout) on
the training device, plus the model initialisation under a forked global RNG.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import logging
import math
import os
import pickle
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import epoch0
from .batches import (
    augment_batch,
    normalize,
    reflect_pad_u8,
    resolve_device,
    seed_for,
    to_device_uint8,
    unpack_data,
)
from .models import build_model, n_params
from .pipeline.io import atomic_path
from .regularizers import IMPLEMENTATIONS, accumulate_grad, penalty_grad, sq_norm
from .sharpness import measure as measure_point
from .validity import expansion_parameters

log = logging.getLogger(__name__)

METHODS = ("sgdm", "gdm", "igrm_explicit")
AUGMENTS = ("none", "flip", "crop", "crop+flip", "cutout")
SCHEDULES = ("constant", "cosine", "step")
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm_sq", "lr", "steps", "wall_time")

#: the keys of train()'s cfg, all required (their defaults: schemas/config.schema.yaml,
#: section train; the pipeline's cfg of each run: rules/common.smk train_cfg). All but
#: EVAL_ONLY_KEYS form the checkpoint's fingerprint (cfg_fingerprint): a key added here is in it.
TRAIN_KEYS = (
    "model",
    "width",
    "method",
    "beta",
    "lr",
    "lr_mode",
    "batch_size",
    "epochs",
    "augment",
    "pad",
    "cutout_size",
    "train_subset",
    "test_subset",
    "fullbatch_subset",
    "fullbatch_chunk",
    "seed",
    "device",
    "bf16",
    "channels_last",
    "checkpoint_every",
    "weight_decay",
    "schedule",
    "step_milestones",
    "step_gamma",
    "blowup_factor",
    "eval_batch_size",
    "penalty_impl",
    "penalty_eps",
    "deterministic",
    "snapshot_epochs",  # parameter points kept in the result (0 = initialisation), for noise estimates
    "sharpness",  # {points, algorithm, iters, final_iters, tol, subset, trace_probes}: λ_max, tr H, |∇E|²
    "compile",  # torch.compile of the training step's model: false, true (inductor), a backend
    "eval_every",  # test-set evaluation after every eval_every-th epoch (full-batch step) and the last
)
#: the keys of cfg["sharpness"] (schema: train.sharpness; docs/training.md, "Sharpness along a run")
SHARPNESS_KEYS = ("points", "algorithm", "iters", "final_iters", "tol", "subset", "trace_probes")
SHARPNESS_ARRAYS = (
    "epoch",
    "lambda_max",  # the algebraic top of the spectrum (NaN where power iteration found the bottom)
    "iters",
    "converged",  # every known end converged: the spectral radius (ε's |λ|) is established
    "residual",
    "lambda_min",  # the bottom (NaN where power iteration found the top)
    "lambda_min_residual",
    "spectral_radius",  # max(|λ_max|, |λ_min|): what the range checks use ((T61))
    "h",
    "epsilon",
    "penalty_curvature",
    "stability",
    "trace",
    "trace_se",
    "trace_probes",
    "grad_norm_sq",
    "loss",  # E on the measured examples: the loss whose Hessian this is (matched-loss comparisons)
    "wall_time",
)

CKPT_RE = re.compile(r"^ckpt_epoch(\d{4,})\.pt$")
#: cfg keys that do not change the training trajectory (model, optimiser, RNG streams): a
#: checkpoint written under other values resumes (docs/training.md, "Checkpoint / resume contract").
#: ``epochs`` is one too under the constant schedule.
#: ``compile`` is here too: it changes how the step is computed, not what (compiled and eager
#: steps agree to float rounding: benchmarks/gpu_check.py, tests/test_gpu_paths.py), so a run may resume either way.
EVAL_ONLY_KEYS = ("eval_batch_size", "checkpoint_every", "sharpness", "compile", "eval_every")
#: torch.compile backends of cfg["compile"] (true = inductor)
COMPILE_BACKENDS = ("inductor", "aot_eager")
#: checkpoints kept per fingerprint: the newest, and one to fall back on if it is damaged
CKPT_KEEP = 2
#: folder, beside a run's checkpoint folders, of the epoch-0 measurements its siblings share
EPOCH0_DIR = "epoch0"


# --------------------------------------------------------------------------- config
def resolve_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """cfg validated, in :data:`TRAIN_KEYS` order: it must hold exactly those keys (no
    defaults here); an unknown key is a ValueError, a missing one a TypeError, naming it."""
    unknown = [k for k in cfg if k not in TRAIN_KEYS]
    if unknown:
        raise ValueError(f"unknown training cfg key(s): {', '.join(unknown)}; known: {', '.join(TRAIN_KEYS)}")
    missing = [k for k in TRAIN_KEYS if k not in cfg]
    if missing:
        raise TypeError(
            f"training cfg lacks key(s): {', '.join(missing)} (defaults: schemas/config.schema.yaml, section train)"
        )
    c = {k: cfg[k] for k in TRAIN_KEYS}
    if isinstance(c["augment"], str):
        c["augment"] = [c["augment"]]
    c["augment"] = list(c["augment"])
    checks = [
        ("method", c["method"] in METHODS, f"one of {METHODS}"),
        ("beta", 0.0 <= float(c["beta"]) < 1.0, "in [0, 1)"),
        ("lr", float(c["lr"]) > 0, "> 0"),
        ("lr_mode", c["lr_mode"] in ("effective", "raw"), "'effective' or 'raw'"),
        ("batch_size", int(c["batch_size"]) >= 1, ">= 1"),
        ("epochs", int(c["epochs"]) >= 1, ">= 1"),
        ("augment", all(a in AUGMENTS for a in c["augment"]), f"a list of {AUGMENTS}"),
        ("schedule", c["schedule"] in SCHEDULES, f"one of {SCHEDULES}"),
        (
            "device",
            c["device"] in ("auto", "cpu", "cuda") or str(c["device"]).startswith("cuda:"),
            "auto, cpu, cuda or cuda:N",
        ),
        ("checkpoint_every", int(c["checkpoint_every"]) >= 1, ">= 1"),
        ("blowup_factor", float(c["blowup_factor"]) > 1, "> 1"),
        ("penalty_impl", c["penalty_impl"] in IMPLEMENTATIONS, f"one of {IMPLEMENTATIONS}"),
        ("channels_last", c["channels_last"] in ("auto", True, False), "auto, true or false"),
        ("bf16", c["bf16"] in (True, False, "always"), "true, false or always"),
        ("compile", c["compile"] in (True, False, *COMPILE_BACKENDS), f"true, false or one of {COMPILE_BACKENDS}"),
        ("deterministic", c["deterministic"] in (True, False, "auto"), "auto, true or false"),
        ("eval_every", int(c["eval_every"]) >= 1, ">= 1"),
    ]
    for key, ok, what in checks:
        if not ok:
            raise ValueError(f"training cfg key {key!r} must be {what}, got {c[key]!r}")
    c["sharpness"] = _resolve_sharpness(c["sharpness"])
    return c


def _resolve_sharpness(s) -> dict[str, Any]:
    if not isinstance(s, Mapping):
        raise ValueError(f"training cfg key 'sharpness' must be a mapping of {SHARPNESS_KEYS}, got {s!r}")
    unknown = [k for k in s if k not in SHARPNESS_KEYS]
    missing = [k for k in SHARPNESS_KEYS if k not in s]
    if unknown:
        raise ValueError(f"unknown training cfg key(s) sharpness.{', sharpness.'.join(unknown)}")
    if missing:
        raise TypeError(
            f"training cfg lacks key(s) sharpness.{', sharpness.'.join(missing)} (defaults: "
            "schemas/config.schema.yaml, section train.sharpness)"
        )
    s = {k: s[k] for k in SHARPNESS_KEYS}
    checks = [
        ("points", int(s["points"]) >= 0, ">= 0"),
        ("iters", int(s["iters"]) >= 1, ">= 1"),
        ("algorithm", s["algorithm"] in ("power", "lanczos"), "'power' or 'lanczos'"),
        ("final_iters", s["final_iters"] is None or int(s["final_iters"]) >= 1, "null or >= 1"),
        ("tol", float(s["tol"]) >= 0, ">= 0"),
        ("trace_probes", int(s["trace_probes"]) >= 0, ">= 0"),
        ("subset", s["subset"] is None or int(s["subset"]) >= 1, "null or >= 1"),
    ]
    for key, ok, what in checks:
        if not ok:
            raise ValueError(f"training cfg key sharpness.{key} must be {what}, got {s[key]!r}")
    return s


def sharpness_epochs(points: int, epochs: int) -> list[int]:
    """Epochs (0 = initialisation) at which λ_max is measured: ``points`` evenly spaced
    from 0 to ``epochs`` inclusive (rounded; 1: the initialisation only; 0: none)."""
    if int(points) <= 0:
        return []
    if int(points) == 1:
        return [0]
    return sorted({int(round(x)) for x in np.linspace(0, int(epochs), int(points))})


def step_sizes(cfg: Mapping[str, Any]) -> dict[str, float]:
    """h (raw step), eta = h/(1-beta), mu = beta eta/(2(1-beta)) (explicit baseline),
    lambda_flow2 = (1+beta) h/(4(1-beta)^2) (docs/theory.md (T7); μ: (T30))."""
    beta, lr = float(cfg["beta"]), float(cfg["lr"])
    h = lr * (1 - beta) if cfg["lr_mode"] == "effective" else lr
    eta = h / (1 - beta)
    return {
        "h": h,
        "eta": eta,
        "mu": beta * eta / (2 * (1 - beta)),
        "lambda_flow2": (1 + beta) * h / (4 * (1 - beta) ** 2),
    }


def lr_factor(cfg: Mapping[str, Any], step: int, total_steps: int) -> float:
    """Schedule multiplier at a global step (0-based)."""
    if cfg["schedule"] == "constant":
        return 1.0
    frac = step / max(1, total_steps)
    if cfg["schedule"] == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    return float(cfg["step_gamma"]) ** sum(frac >= m for m in cfg["step_milestones"])


# --------------------------------------------------------------------------- gradients
def chunk_loss_fns(
    model: nn.Module,
    inputs: Sequence[Tensor],
    labels: Sequence[Tensor],
    n_total: int,
    autocast: Callable,
    stats: dict | None = None,
) -> list[Callable[[], Tensor]]:
    """Closures, one per chunk, returning sum-CE(chunk)/n_total: they sum to the mean
    loss over all n_total examples. The first call of each records loss/correct in stats."""
    fns = []
    seen: set = stats.setdefault("_seen", set()) if stats is not None else set()
    for i, (x, y) in enumerate(zip(inputs, labels)):

        def fn(x=x, y=y, i=i):
            with autocast():
                out = model(x)
            loss = F.cross_entropy(_f32(out), y, reduction="sum") / n_total
            if stats is not None and i not in seen:
                seen.add(i)
                stats["correct"] = stats.get("correct", 0) + int((out.argmax(1) == y).sum())
            return loss

        fns.append(fn)
    return fns


def accumulate_gradient(model: nn.Module, x: Tensor, y: Tensor, chunk_size: int) -> tuple[list[Tensor], float]:
    """Exact gradient of the mean cross-entropy over all of (x, y), accumulated over
    chunks of ``chunk_size`` with weight len(chunk)/N each. Equal to the one-shot
    gradient for models without train-mode BatchNorm (with BatchNorm each chunk
    uses its own batch statistics: ghost batch norm)."""
    params = [p for p in model.parameters() if p.requires_grad]
    n = len(x)
    xs, ys = torch.split(x, chunk_size), torch.split(y, chunk_size)
    fns = chunk_loss_fns(model, xs, ys, n, _null_ctx)
    return accumulate_grad(fns, params)


def _f32(t: Tensor) -> Tensor:
    """Logits to at least float32 for the loss (bf16 autocast); float64 stays float64."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class _null_ctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


# --------------------------------------------------------------------------- checkpoints
def cfg_fingerprint(cfg: Mapping[str, Any], device: torch.device, script: str = "train_run.py") -> dict:
    """The cfg entries a checkpoint must match to be resumed: all but :data:`EVAL_ONLY_KEYS`,
    and ``epochs`` only under a non-constant schedule (it sets the schedule's length; under
    the constant one a finished run can be extended). ``device`` and ``bf16`` as in effect
    (auto = the device it picked; bf16 is ignored on CPU). ``code``: the hash of the igrm
    files the training job runs (:func:`trajectory_code` of its ``script``: an ensemble job's
    code differs from a lone run's), so that a checkpoint of other code is not resumed
    (docs/reliability.md, "Checkpoints and resume")."""
    fp = {k: v for k, v in cfg.items() if k not in EVAL_ONLY_KEYS}
    if cfg["schedule"] == "constant":
        del fp["epochs"]
    fp["device"] = device.type
    fp["bf16"] = bf16_in_effect(cfg["bf16"], device)
    fp["code"] = trajectory_code(script)
    return fp


def trajectory_code(script: str = "train_run.py") -> str:
    """Hash of the igrm files a training job runs: the ``code`` input of the rule whose script
    is ``script`` (igrm.pipeline.code.code_version), read from this package's own tree. Imported by name:
    igrm.pipeline.code is parse-time plumbing, outside every rule's code input (its ``ast``
    scan does not follow this import), so editing it outdates no result."""
    code = importlib.import_module("igrm.pipeline.code")
    return code.code_version(Path(__file__).resolve().parent.parent, script)


def bf16_in_effect(bf16, device: torch.device) -> bool:
    """bf16 autocast on? ``true``: on CUDA only (ignored on CPU, the production meaning);
    ``"always"``: on any device (CPU autocast: slow, for tests of the bf16 path)."""
    return bf16 == "always" or (bf16 is True and device.type == "cuda")


def bf16_autocast(device: torch.device, on: bool):
    """The context a forward pass runs in: bf16 autocast on ``device``'s type, or nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if on else _null_ctx()


def compiled_step_model(model: nn.Module, compile_opt, method: str, penalty_impl: str, progress) -> nn.Module:
    """The module the training step's forward passes use: ``torch.compile(model)`` when
    ``compile_opt`` asks for it, else ``model`` itself (same parameters and buffers: the
    state dict, checkpoints and sharpness stay on ``model``). The explicit baseline's
    ``double_backprop`` penalty (a double backward, which compiled autograd does not
    support) stays eager; its finite-difference HVPs compile."""
    if compile_opt is False:
        return model
    if method == "igrm_explicit" and penalty_impl == "double_backprop":
        _emit(
            progress,
            "compile: the explicit baseline's double backward runs eager (torch.compile "
            "does not support it); the other forward passes are not compiled either",
        )
        return model
    backend = "inductor" if compile_opt is True else str(compile_opt)
    return torch.compile(model, backend=backend)


def _canon(v):
    """JSON-ready value with 1 and 1.0 alike (the fingerprint compares values, not types)."""
    if isinstance(v, Mapping):
        return {str(k): _canon(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    if isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)):
        return float(v)
    return v if v is None or isinstance(v, (str, bool)) else str(v)


def fingerprint_id(fp: Mapping[str, Any]) -> str:
    """16 hex digits of sha256 over the canonical JSON of a fingerprint: its folder's name."""
    return hashlib.sha256(json.dumps(_canon(fp), sort_keys=True).encode()).hexdigest()[:16]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := CKPT_RE.match(p.name)))


def _warn(progress, msg: str) -> None:
    if hasattr(progress, "warning"):
        progress.warning(msg)
    elif progress is not None:
        progress(f"WARNING: {msg}")
    else:
        log.warning(msg)


def _set_aside(path: Path, why: str, progress, suffix: str = ".corrupt") -> None:
    """Rename a damaged (``.corrupt``) or mismatched (``.rejected``) checkpoint and its checksum
    to ``<name><suffix>``, with a warning naming it."""
    for p in (path, _sidecar(path)):
        if p.exists():
            os.replace(p, p.with_name(p.name + suffix))
    what = "is damaged" if suffix == ".corrupt" else "does not belong here"
    _warn(
        progress,
        f"checkpoint {path} {what} ({why}); set aside as {path.name}{suffix}, falling back to the previous checkpoint",
    )


def _mismatch(saved: Mapping[str, Any], epoch: int, fp: Mapping[str, Any], shapes: Mapping[str, tuple] | None):
    """Why a checkpoint that reads cleanly may not be resumed here, or None: its epoch counters
    against its name, its fingerprint against its folder's, its tensors against the model's."""
    parts = ("epoch", "cfg", "state", "model")
    if not isinstance(saved, Mapping) or not all(isinstance(saved.get(k), Mapping) for k in parts[1:]):
        return f"not a checkpoint of igrm.train (keys {', '.join(parts)} expected)"
    inner = (saved.get("epoch"), saved["state"].get("epoch"))
    if any(e != epoch for e in inner):
        return f"its name says epoch {epoch}, its counters say {inner[0]} / {inner[1]}"
    if saved["cfg"] != _canon(fp):
        diff = sorted(k for k in set(saved["cfg"]) | set(_canon(fp)) if saved["cfg"].get(k) != _canon(fp).get(k))
        return f"written under another config or code than its folder's (differs in {', '.join(diff)})"
    if shapes is not None:
        got = {k: tuple(v.shape) for k, v in saved["model"].items() if hasattr(v, "shape")}
        bad = sorted(k for k in set(got) | set(shapes) if got.get(k) != shapes.get(k))
        if bad:
            k = bad[0]
            return f"model tensors differ from this run's model ({len(bad)}, e.g. {k}: {got.get(k)} vs {shapes.get(k)})"
    return None


def _verify(path: Path) -> tuple[bytes | None, str | None]:
    """(file bytes, None) if the file matches its sha256 sidecar, else (None, why)."""
    side = _sidecar(path)
    if not side.exists():
        return None, f"no checksum file {side.name}"
    want = side.read_text().split()[:1]
    blob = path.read_bytes()
    if not blob:
        return None, "empty file"
    got = hashlib.sha256(blob).hexdigest()
    if want != [got]:
        return None, f"sha256 {got[:12]}… of its {len(blob)} bytes does not match {side.name}"
    return blob, None


def load_checkpoint(
    folder: Path,
    fp: Mapping[str, Any],
    epochs: int,
    device: torch.device,
    progress,
    shapes: Mapping[str, tuple] | None = None,
) -> tuple[Path, dict] | None:
    """(path, content) of the newest valid checkpoint in ``folder`` of fingerprint ``fp`` with
    epoch <= ``epochs``, or None. A damaged one (checksum or reader fails) is set aside as
    ``.corrupt``, one that does not match (:func:`_mismatch`: epoch in its name, fingerprint,
    tensor ``shapes`` of the model) as ``.rejected``, each with a warning naming it, and the
    next older one tried. A file that passes its checksum but holds more than tensors and
    plain types is refused (pickle.UnpicklingError): never unpickled."""
    for epoch, path in reversed(_checkpoints(folder)):
        if epoch > epochs:
            _emit(progress, f"checkpoint {path.name} is past epochs={epochs}; trying an earlier one")
            continue
        blob, why = _verify(path)
        if why is None:
            try:
                saved = torch.load(io.BytesIO(blob), map_location=device, weights_only=True)
            except pickle.UnpicklingError as e:
                raise pickle.UnpicklingError(
                    f"checkpoint {path} holds objects other than tensors and plain types; refused, delete it ({e})"
                ) from e
            except Exception as e:
                why = f"unreadable: {type(e).__name__}: {e}"
        if why is not None:
            _set_aside(path, why, progress)
            continue
        why = _mismatch(saved, epoch, fp, shapes)
        if why is not None:
            _set_aside(path, why, progress, suffix=".rejected")
            continue
        return path, saved
    return None


def _save_checkpoint(folder: Path, state: dict) -> Path:
    """Write ``ckpt_epochNNNN.pt`` then its sha256 sidecar (each atomically); then delete
    older ones of this folder, keeping :data:`CKPT_KEEP` up to this epoch."""
    buf = io.BytesIO()
    torch.save(state, buf)
    blob = buf.getvalue()
    path = folder / f"ckpt_epoch{state['epoch']:04d}.pt"
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    with atomic_path(_sidecar(path)) as tmp:
        tmp.write_text(f"{hashlib.sha256(blob).hexdigest()}  {path.name}\n")
    older = [p for e, p in _checkpoints(folder) if e < state["epoch"]]
    for old in older[: max(0, len(older) - (CKPT_KEEP - 1))]:
        old.unlink(missing_ok=True)
        _sidecar(old).unlink(missing_ok=True)
    return path


def _emit(progress, msg: str) -> None:
    if progress is None:
        return
    if hasattr(progress, "info"):
        progress.info(msg)
    else:
        progress(msg)


def _emit_epoch(progress, epoch: int, epochs: int, row: Mapping[str, Any], status: str) -> None:
    """The epoch's metrics to a ``progress`` that takes them (igrm.pipeline.snakejob.RunProgress: the
    per-run CSV and the console line); a plain logger or callable gets only the line of _emit."""
    if hasattr(progress, "epoch"):
        progress.epoch(epoch, epochs, row, status)


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(
    model: nn.Module,
    images_u8: Tensor,
    labels: Tensor,
    mean: Tensor,
    std: Tensor,
    batch_size: int,
    autocast: Callable,
    memory_format,
) -> tuple[float, float]:
    """(mean CE loss, accuracy) in eval mode, unaugmented."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for xb, yb in zip(torch.split(images_u8, batch_size), torch.split(labels, batch_size)):
        x = normalize(xb, mean, std).contiguous(memory_format=memory_format)
        with autocast():
            out = model(x)
        loss_sum += float(F.cross_entropy(_f32(out), yb, reduction="sum"))
        correct += int((out.argmax(1) == yb).sum())
    model.train(was_training)
    n = max(1, len(labels))
    return loss_sum / n, correct / n


# --------------------------------------------------------------------------- training
def train(
    cfg: Mapping[str, Any], data: Mapping[str, Any], checkpoint_dir: Path | None, progress
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train one run; returns (arrays, attrs). See docs/training.md."""
    c = resolve_config(cfg)
    device = resolve_device(c["device"])
    with numerics(deterministic_in_effect(c["deterministic"], device), device):
        return run_training(c, data, device, checkpoint_dir, progress)


def deterministic_in_effect(deterministic, device: torch.device) -> bool:
    """``auto``: the fast path on CUDA (False), the deterministic one elsewhere (True: on the
    CPU both give bit-identical results, benchmarks/gpu_check.py; the tests' path)."""
    return (device.type != "cuda") if deterministic == "auto" else bool(deterministic)


@contextlib.contextmanager
def numerics(deterministic: bool, device: torch.device):
    """The run's numerics, restored afterwards. Deterministic: torch's deterministic algorithms
    (warn only), which also fill every new tensor's memory with NaN
    (torch.utils.deterministic.fill_uninitialized_memory), and cuDNN's autotuner off. Fast:
    neither, and cuDNN's autotuner on (on CUDA): the same maths, other kernels."""
    import torch.utils.deterministic as tud

    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        tud.fill_uninitialized_memory,
    )
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark = before[2]
        tud.fill_uninitialized_memory = before[3]


def run_training(c: dict, data: Mapping[str, Any], device: torch.device, checkpoint_dir, progress):
    """The run of a resolved cfg, as named steps around its :class:`Run` state: select the
    data, build the model and optimiser, resume, train epoch by epoch, return the result."""
    run = start_run(c, data, device, checkpoint_dir, progress)
    while run_due(run):
        run_epoch(run)
    return end_run(run)


def start_run(
    c: dict, data: Mapping[str, Any], device: torch.device, checkpoint_dir, progress, script: str = "train_run.py"
) -> Run:
    """A run ready for its next epoch: data selected, model and optimiser built, resumed from
    its newest checkpoint of ``script``'s code if any, the initialisation's snapshot and
    sharpness point taken."""
    run = build_run(c, select_data(c, data, device), device, progress)
    run.epoch0_dir = None if checkpoint_dir is None else Path(checkpoint_dir).parent / EPOCH0_DIR
    resume(run, checkpoint_dir, script)
    take_snapshot(run)  # epoch 0: the initialisation
    measure_sharpness(run)
    return run


def run_due(run: Run) -> bool:
    """Has the run epochs left to train (running, not diverged)?"""
    return run.state["status"] == "running" and run.state["epoch"] < run.epochs


def end_run(run: Run) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The run's (arrays, attrs), its status completed once its epochs are done."""
    if run.state["status"] == "running":  # epochs reached on resume of an old checkpoint
        run.state["status"] = "completed"
    return result_arrays(run), result_attrs(run)


@dataclass
class TrainData:
    """The run's examples on the device: the training subset (and its padded copy when crops
    are drawn), the test subset, the normalisation."""

    x_train: Tensor
    y_train: Tensor
    x_train_pad: Tensor | None
    x_test: Tensor
    y_test: Tensor
    mean: Tensor
    std: Tensor
    num_classes: int
    fullbatch: bool

    @property
    def n_used(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)


def select_data(c: Mapping[str, Any], data: Mapping[str, Any], device: torch.device) -> TrainData:
    """Which examples (a CPU generator: identical subsets on every device), moved to the device."""
    d = unpack_data(data)
    g_subset = torch.Generator().manual_seed(seed_for(int(c["seed"]), "subset"))
    n_all = len(d["train/labels"])
    perm = torch.randperm(n_all, generator=g_subset).numpy()
    n_train = n_all if c["train_subset"] is None else min(int(c["train_subset"]), n_all)
    train_idx = perm[:n_train]
    fullbatch = c["method"] == "gdm" or (c["method"] == "igrm_explicit" and c["fullbatch_subset"] is not None)
    if fullbatch and c["fullbatch_subset"] is not None:
        train_idx = train_idx[: min(int(c["fullbatch_subset"]), n_train)]
    n_test = len(d["test/labels"]) if c["test_subset"] is None else min(int(c["test_subset"]), len(d["test/labels"]))

    x_train = to_device_uint8(d["train/images"][train_idx], device)
    # crops read from the set padded once (docs/performance.md, "CIFAR data loader")
    crop = bool({"crop", "crop+flip"} & set(c["augment"]))
    return TrainData(
        x_train=x_train,
        y_train=torch.from_numpy(d["train/labels"][train_idx]).to(device),
        x_train_pad=reflect_pad_u8(x_train, int(c["pad"])) if crop and int(c["pad"]) > 0 else None,
        x_test=to_device_uint8(d["test/images"][:n_test], device),
        y_test=torch.from_numpy(d["test/labels"][:n_test]).to(device),
        mean=torch.tensor(d["mean"], dtype=torch.float32, device=device),
        std=torch.tensor(d["std"], dtype=torch.float32, device=device),
        num_classes=d["num_classes"],
        fullbatch=fullbatch,
    )


@dataclass
class Run:
    """The state of one training run: its cfg, data, model and optimiser with their RNG
    streams (fixed by :func:`build_run`), and what it has recorded so far (restored by
    :func:`resume`, saved by :func:`save_checkpoint`)."""

    c: dict
    device: torch.device
    data: TrainData
    progress: Any
    model: nn.Module
    step_model: nn.Module  # the module the step's forward passes use (compiled or model)
    params: list
    buffers: list
    opt: torch.optim.Optimizer
    g_order: torch.Generator
    g_aug: torch.Generator
    sizes: dict  # step_sizes(c)
    base_lr: float
    momentum: float
    bf16: bool
    channels_last: bool
    batch_size: int
    steps_per_epoch: int
    chunk: int  # full-batch gradient chunk
    total_steps: int
    sharp_at: set  # epochs of a sharpness point
    n_sharp: int
    sharp_chunk: int
    metrics: dict = field(default_factory=lambda: {k: [] for k in METRICS})
    state: dict = field(
        default_factory=lambda: {"epoch": 0, "step": 0, "initial_loss": None, "status": "running", "diverged_step": -1}
    )
    snapshots: dict = field(default_factory=dict)  # epoch -> state_dict (CPU copies)
    sharp: dict = field(default_factory=lambda: {k: [] for k in SHARPNESS_ARRAYS})
    resumed_from: int = 0
    ck_folder: Path | None = None
    fp: dict = field(default_factory=dict)
    eval_cfg: dict = field(default_factory=dict)
    epoch0_dir: Path | None = None  # the shared epoch-0 measurements (igrm.epoch0)

    @property
    def epochs(self) -> int:
        return int(self.c["epochs"])

    @property
    def memory_format(self):
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self):
        return bf16_autocast(self.device, self.bf16)


def build_run(c: dict, data: TrainData, device: torch.device, progress) -> Run:
    """Model (seeded init under a forked global RNG), optimiser, the order and augment streams
    and the step counts of a fresh run."""
    seed = int(c["seed"])
    # auto = on: measured ~15% faster on CPU too (docs/training.md)
    channels_last = True if c["channels_last"] == "auto" else bool(c["channels_last"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(seed, "init"))
        model = build_model(c["model"], data.num_classes, data.x_train.shape[1], float(c["width"]))
    model = model.to(device=device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    step_model = compiled_step_model(model, c["compile"], c["method"], c["penalty_impl"], progress)
    sizes = step_sizes(c)
    if c["method"] == "igrm_explicit":
        base_lr, momentum = sizes["eta"], 0.0
    else:
        base_lr, momentum = sizes["h"], float(c["beta"])
    opt = torch.optim.SGD(
        params, lr=base_lr, momentum=momentum, dampening=0, nesterov=False, weight_decay=float(c["weight_decay"])
    )
    batch_size = min(int(c["batch_size"]), data.n_used)
    steps_per_epoch = 1 if data.fullbatch else data.n_used // batch_size
    chunk = int(c["fullbatch_chunk"] or c["batch_size"])
    # sharpness along the run (docs/training.md, "Sharpness along a run"): the Hessian of the
    # train-mode loss on the first n_sharp training examples, unaugmented, in the chunks a
    # step uses; its own generator per measurement, BN buffers restored: the training streams
    # and the trajectory are unchanged
    sh = c["sharpness"]
    return Run(
        c=c,
        device=device,
        data=data,
        progress=progress,
        model=model,
        step_model=step_model,
        params=params,
        buffers=list(model.buffers()),
        opt=opt,
        g_order=torch.Generator(device=device).manual_seed(seed_for(seed, "order")),
        g_aug=torch.Generator(device=device).manual_seed(seed_for(seed, "augment")),
        sizes=sizes,
        base_lr=base_lr,
        momentum=momentum,
        bf16=bf16_in_effect(c["bf16"], device),
        channels_last=channels_last,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        chunk=chunk,
        total_steps=steps_per_epoch * int(c["epochs"]),
        sharp_at=set(sharpness_epochs(int(sh["points"]), int(c["epochs"]))),
        n_sharp=data.n_used if sh["subset"] is None else min(int(sh["subset"]), data.n_used),
        sharp_chunk=chunk if data.fullbatch else batch_size,
    )


# --------------------------------------------------------------------------- resume
def resume(run: Run, checkpoint_dir, script: str = "train_run.py") -> None:
    """Restore the newest valid checkpoint of this run's fingerprint (one folder per
    fingerprint under ``checkpoint_dir``; ``script``: the job's, whose code is in it), if
    there is one; else say why it starts afresh."""
    c, progress = run.c, run.progress
    run.fp = cfg_fingerprint(c, run.device, script)
    run.eval_cfg = {k: c[k] for k in EVAL_ONLY_KEYS}
    run.ck_folder = None if checkpoint_dir is None else Path(checkpoint_dir) / fingerprint_id(run.fp)
    if checkpoint_dir is not None and any(_checkpoints(Path(checkpoint_dir))):
        _warn(
            progress,
            f"checkpoints of the old layout (ckpt_epoch*.pt directly in {checkpoint_dir}) are "
            "ignored; checkpoints now live in one folder per config fingerprint: delete them",
        )
    shapes = {k: tuple(v.shape) for k, v in run.model.state_dict().items()}
    found = (
        None
        if run.ck_folder is None
        else load_checkpoint(run.ck_folder, run.fp, run.epochs, run.device, progress, shapes)
    )
    if found is not None:
        restore(run, *found)
    elif run.ck_folder is not None:
        others = (
            sorted(p.name for p in Path(checkpoint_dir).iterdir() if p.is_dir() and p != run.ck_folder)
            if Path(checkpoint_dir).is_dir()
            else []
        )
        _emit(
            progress,
            f"no checkpoint of this config ({run.ck_folder.name}) to resume; starting afresh"
            + (f" (checkpoints of other configs kept: {', '.join(others)})" if others else ""),
        )


def restore(run: Run, ck: Path, saved: dict) -> None:
    """The run's model, optimiser, RNG streams and records from a checkpoint's content."""
    run.model.load_state_dict(saved["model"])
    run.opt.load_state_dict(saved["optimizer"])
    run.g_order.set_state(saved["rng"]["order"].cpu())
    run.g_aug.set_state(saved["rng"]["augment"].cpu())
    torch.set_rng_state(saved["rng"]["torch_cpu"].cpu())
    run.metrics = {k: list(v) for k, v in saved["metrics"].items()}
    run.snapshots = dict(saved.get("snapshots", {}))
    n_pts = len(saved["sharpness"].get("epoch", []))  # a checkpoint from before trace/|grad|^2: NaN there
    run.sharp = {
        k: list(saved["sharpness"].get(k, [0 if k == "trace_probes" else math.nan] * n_pts)) for k in SHARPNESS_ARRAYS
    }
    run.state = dict(saved["state"])
    run.resumed_from = run.state["epoch"]
    if run.state["status"] == "completed" and run.state["epoch"] < run.epochs:
        run.state["status"] = "running"  # constant schedule, more epochs asked for
    _emit(
        run.progress,
        f"resumed from {ck.name} in {run.ck_folder} (epoch {run.resumed_from}, status {run.state['status']})",
    )
    changed = {k: (v, run.eval_cfg[k]) for k, v in saved.get("eval_cfg", {}).items() if v != _canon(run.eval_cfg[k])}
    if changed:
        _emit(
            run.progress,
            "evaluation-only keys changed since the checkpoint (its epochs keep the old "
            "measurements): " + "; ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()),
        )


def save_checkpoint(run: Run) -> None:
    """The run's state into its fingerprint's folder (and the fingerprint, once, beside it)."""
    if run.ck_folder is None:
        return
    run.ck_folder.mkdir(parents=True, exist_ok=True)
    if not (run.ck_folder / "fingerprint.json").exists():
        with atomic_path(run.ck_folder / "fingerprint.json") as tmp:
            tmp.write_text(json.dumps(_canon(run.fp), indent=1, sort_keys=True) + "\n")
    _save_checkpoint(
        run.ck_folder,
        {
            "epoch": run.state["epoch"],
            "cfg": _canon(run.fp),
            "eval_cfg": _canon(run.eval_cfg),
            "state": dict(run.state),
            "model": run.model.state_dict(),
            "optimizer": run.opt.state_dict(),
            "rng": {
                "order": run.g_order.get_state(),
                "augment": run.g_aug.get_state(),
                "torch_cpu": torch.get_rng_state(),
            },
            "metrics": run.metrics,
            "snapshots": run.snapshots,
            "sharpness": run.sharp,
        },
    )


# --------------------------------------------------------------------------- epoch
@dataclass
class EpochSums:
    """What one epoch's steps add up: summed loss, correct, examples, |grad|^2, steps, and
    the h of its first step."""

    loss: float = 0.0
    correct: int = 0
    seen: int = 0
    grad_norm_sq: float = 0.0
    steps: int = 0
    h: float | None = None


def epoch_batches(run: Run) -> list[Tensor]:
    """The index batches of one epoch: the whole set (full batch) or a fresh shuffle."""
    n_used = run.data.n_used
    if run.data.fullbatch:
        return [torch.arange(n_used, device=run.device)]
    order = torch.randperm(n_used, generator=run.g_order, device=run.device)
    return list(torch.split(order[: run.steps_per_epoch * run.batch_size], run.batch_size))


def step_batch(run: Run, idx: Tensor) -> tuple[Tensor, Tensor]:
    """The batch ``idx`` augmented (the run's augment stream) and normalised, and its labels."""
    c, d = run.c, run.data
    xb = augment_batch(
        None if d.x_train_pad is not None else d.x_train[idx],
        c["augment"],
        run.g_aug,
        d.mean,
        d.std,
        pad=int(c["pad"]),
        cutout_size=int(c["cutout_size"]),
        padded=d.x_train_pad,
        idx=idx,
    )
    return xb.contiguous(memory_format=run.memory_format), d.y_train[idx]


def step_gradient(run: Run, idx: Tensor, factor: float, stats: dict) -> tuple[list, list, float]:
    """(update direction, loss gradient, loss) of one step on the batch ``idx``, augmented;
    the explicit baseline's direction adds the penalty's gradient."""
    c, d = run.c, run.data
    xb, yb = step_batch(run, idx)
    if d.fullbatch:
        fns = chunk_loss_fns(
            run.step_model, torch.split(xb, run.chunk), torch.split(yb, run.chunk), len(idx), run.autocast, stats
        )
    else:
        fns = chunk_loss_fns(run.step_model, [xb], [yb], len(idx), run.autocast, stats)
    if c["method"] == "igrm_explicit":
        g, pg, loss_val = penalty_grad(
            fns, run.params, run.sizes["mu"] * factor, c["penalty_impl"], float(c["penalty_eps"]), buffers=run.buffers
        )
        return [a + b for a, b in zip(g, pg)], g, loss_val
    g, loss_val = accumulate_grad(fns, run.params)
    return g, g, loss_val


def train_step(run: Run, idx: Tensor, sums: EpochSums) -> bool:
    """One optimiser step on the batch ``idx``; False (and the run marked diverged, the step
    not taken) when the loss or gradient is not finite or the loss blew up."""
    factor = begin_step(run, sums)
    stats: dict = {}
    grads, g, loss_val = step_gradient(run, idx, factor, stats)
    return apply_step(run, grads, g, loss_val, len(idx), stats.get("correct", 0), sums)


def begin_step(run: Run, sums: EpochSums) -> float:
    """The schedule's factor at this step, set as the optimiser's learning rate."""
    factor = lr_factor(run.c, run.state["step"], run.total_steps)
    for group in run.opt.param_groups:
        group["lr"] = run.base_lr * factor
    if sums.h is None:
        sums.h = run.sizes["h"] * factor
    return factor


def apply_step(run: Run, grads: list, g: list, loss_val: float, n_b: int, correct: int, sums: EpochSums) -> bool:
    """The optimiser step with direction ``grads`` (loss gradient ``g``, loss ``loss_val`` over
    ``n_b`` examples, ``correct`` of them right); False, the run marked diverged and the step
    not taken, when the loss or gradient is not finite or the loss blew up."""
    state = run.state
    gn = float(sq_norm(g))
    if state["initial_loss"] is None:
        state["initial_loss"] = loss_val
    if (
        not math.isfinite(loss_val)
        or not math.isfinite(gn)
        or loss_val > float(run.c["blowup_factor"]) * state["initial_loss"]
    ):
        state["status"], state["diverged_step"] = "diverged", state["step"]
        sums.loss += loss_val * n_b
        sums.seen += n_b
        sums.correct += correct
        _emit(run.progress, f"diverged at step {state['step']} (epoch {state['epoch'] + 1}): loss {loss_val:.4g}")
        return False
    for p, gr in zip(run.params, grads):
        p.grad = gr
    run.opt.step()
    state["step"] += 1
    sums.steps += 1
    sums.loss += loss_val * n_b
    sums.correct += correct
    sums.seen += n_b
    sums.grad_norm_sq += gn
    return True


def run_epoch(run: Run) -> None:
    """One epoch's steps, then its measurements (:func:`finish_epoch`)."""
    t0 = time.perf_counter()
    run.model.train()
    sums = EpochSums()
    for idx in epoch_batches(run):
        if not train_step(run, idx, sums):
            break
    finish_epoch(run, sums, t0)


def finish_epoch(run: Run, sums: EpochSums, t0: float) -> None:
    """Test metrics, the epoch's row, snapshot and sharpness point when due, a checkpoint when
    due (every checkpoint_every epochs, at the end, on divergence), the progress line."""
    state, d = run.state, run.data
    diverged = state["status"] == "diverged"
    if diverged or not eval_due(state["epoch"] + 1, run.epochs, int(run.c["eval_every"])):
        test_loss, test_acc = float("nan"), float("nan")
    else:
        test_loss, test_acc = evaluate(
            run.step_model,
            d.x_test,
            d.y_test,
            d.mean,
            d.std,
            int(run.c["eval_batch_size"]),
            run.autocast,
            run.memory_format,
        )
    state["epoch"] += 1
    row = {
        "train_loss": sums.loss / max(1, sums.seen),
        "train_acc": sums.correct / max(1, sums.seen),
        "test_loss": test_loss,
        "test_acc": test_acc,
        "grad_norm_sq": sums.grad_norm_sq / sums.steps if sums.steps else float("nan"),
        "lr": sums.h if sums.h is not None else float("nan"),
        "steps": state["step"],
        "wall_time": time.perf_counter() - t0,
    }
    for k in METRICS:
        run.metrics[k].append(row[k])
    if not diverged:
        take_snapshot(run)
        measure_sharpness(run)
    if not diverged and state["epoch"] >= run.epochs:
        state["status"] = "completed"
    if diverged or state["status"] == "completed" or state["epoch"] % int(run.c["checkpoint_every"]) == 0:
        save_checkpoint(run)
    _emit(
        run.progress,
        f"epoch {state['epoch']}/{run.epochs} train_loss {row['train_loss']:.4f} "
        f"train_acc {row['train_acc']:.4f} test_loss {test_loss:.4f} test_acc {test_acc:.4f} "
        f"lr {row['lr']:.4g} ({row['wall_time']:.1f}s)",
    )
    _emit_epoch(run.progress, state["epoch"], run.epochs, row, state["status"])


def eval_due(epoch: int, epochs: int, every: int) -> bool:
    """Is the test set evaluated after ``epoch`` (1-based)? Every ``every``-th and the last
    (igrm.pipeline.plan.fullbatch_eval_steps counts the same); the others record NaN."""
    return epoch % every == 0 or epoch >= epochs


# --------------------------------------------------------------------------- measure
def take_snapshot(run: Run) -> None:
    """Keep the parameters of this epoch if it is a snapshot epoch (the noise points)."""
    e = run.state["epoch"]
    if e in {int(x) for x in run.c["snapshot_epochs"]} and e not in run.snapshots:
        run.snapshots[e] = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}


def measure_sharpness(run: Run) -> None:
    """λ_max, tr H and |∇E|² at this epoch if it is a sharpness point not yet measured."""
    c, sh, e, d = run.c, run.c["sharpness"], run.state["epoch"], run.data
    if e not in run.sharp_at or e in run.sharp["epoch"]:
        return
    t_s = time.perf_counter()
    was_training = run.model.training
    run.model.train()
    xs = normalize(d.x_train[: run.n_sharp], d.mean, d.std).contiguous(memory_format=run.memory_format)
    ys = d.y_train[: run.n_sharp]
    fns = chunk_loss_fns(
        run.model, torch.split(xs, run.sharp_chunk), torch.split(ys, run.sharp_chunk), run.n_sharp, _null_ctx
    )
    # the last point (what the claims compare) may get more products (docs/training.md)
    iters = int(sh["final_iters"]) if e == run.epochs and sh["final_iters"] is not None else int(sh["iters"])

    def measure():
        return measure_point(
            loss_fns=fns,
            params=run.params,
            buffers=run.buffers,
            algorithm=sh["algorithm"],
            iters=iters,
            tol=float(sh["tol"]),
            trace_probes=int(sh["trace_probes"]),
            generator=torch.Generator().manual_seed(seed_for(int(c["seed"]), f"sharpness/{e}")),
        )

    m = shared_epoch0(run, iters, measure) if e == 0 and run.epoch0_dir is not None else measure()
    run.model.train(was_training)
    # h of the step at this point (the next one; at the end, the last one applied)
    h_now = run.sizes["h"] * lr_factor(c, min(run.state["step"], max(0, run.total_steps - 1)), run.total_steps)
    vals = sharpness_values(e, m, h_now, float(c["beta"]), time.perf_counter() - t_s)
    for k in SHARPNESS_ARRAYS:
        run.sharp[k].append(vals[k])
    _emit(
        run.progress,
        f"sharpness at epoch {e}: lambda_max {vals['lambda_max']:.4g}, lambda_min {vals['lambda_min']:.4g} "
        f"({vals['iters']} HVPs, "
        f"{'converged' if vals['converged'] else 'not converged'}, residual {vals['residual']:.2g}), "
        f"tr H {vals['trace']:.4g} ± {vals['trace_se']:.2g}, |grad E|^2 {m.grad_norm_sq:.4g}, "
        f"eps {vals['epsilon']:.3g}, 2 mu lambda {vals['penalty_curvature']:.3g} "
        f"({vals['wall_time']:.1f}s)",
    )


def shared_epoch0(run: Run, iters: int, measure: Callable):
    """The epoch-0 measurement from the runs' shared file (igrm.epoch0) if one of the same
    initialisation, examples and settings is there, else ``measure()``, stored for the others."""
    c, d = run.c, run.data
    settings = {
        "sharpness": {k: run.c["sharpness"][k] for k in ("algorithm", "tol", "trace_probes")},
        "iters": iters,
        "n_sharp": run.n_sharp,
        "chunk": run.sharp_chunk,
        "channels_last": run.channels_last,
        "device": run.device.type,
        "deterministic": deterministic_in_effect(c["deterministic"], run.device),
        "generator_seed": seed_for(int(c["seed"]), "sharpness/0"),
        "code": trajectory_code(),  # a measurement of other code is not reused
    }
    k = epoch0.key(
        run.model.state_dict(), (d.x_train[: run.n_sharp], d.y_train[: run.n_sharp], d.mean, d.std), settings
    )
    path = run.epoch0_dir / f"{fingerprint_id(k)}.json"
    m = epoch0.load(path, k, lambda msg: _warn(run.progress, msg))
    if m is not None:
        _emit(run.progress, f"sharpness at epoch 0: shared measurement {path.name} (same initialisation)")
        return m
    m = measure()
    epoch0.store(path, k, m)
    return m


def sharpness_values(epoch: int, m, h_now: float, beta: float, wall_time: float) -> dict[str, Any]:
    """One sharpness point's :data:`SHARPNESS_ARRAYS` values from a measurement ``m``."""
    e, tr = m.ends, m.trace
    return {
        "epoch": epoch,
        "lambda_max": e.top.value,
        "iters": max(e.top.iters, e.bottom.iters),
        "converged": e.converged,
        "residual": e.top.residual,
        "lambda_min": e.bottom.value,
        "lambda_min_residual": e.bottom.residual,
        "spectral_radius": e.radius,
        "h": h_now,
        **expansion_parameters(lam=e.radius, h=h_now, beta=beta),
        "trace": tr.value if tr is not None else math.nan,
        "trace_se": tr.se if tr is not None else math.nan,
        "trace_probes": tr.probes if tr is not None else 0,
        "grad_norm_sq": m.grad_norm_sq,
        "loss": m.loss,
        "wall_time": wall_time,
    }


# --------------------------------------------------------------------------- result
def result_arrays(run: Run) -> dict[str, np.ndarray]:
    """Per-epoch metrics, final parameters, sharpness points and snapshots (docs/training.md)."""
    metrics = run.metrics
    arrays: dict[str, np.ndarray] = {"epoch": np.arange(1, len(metrics["train_loss"]) + 1, dtype=np.int64)}
    for k in METRICS:
        arrays[k] = np.asarray(metrics[k], dtype=np.int64 if k == "steps" else np.float64)
    for name, t in run.model.state_dict().items():
        arrays[f"final_state/{name}"] = t.detach().cpu().numpy()
    dtypes = {"epoch": np.int64, "iters": np.int64, "trace_probes": np.int64, "converged": np.bool_}
    for k in SHARPNESS_ARRAYS:
        arrays[f"sharpness/{k}"] = np.asarray(run.sharp[k], dtype=dtypes.get(k, np.float64))
    for e, sd in sorted(run.snapshots.items()):
        for name, t in sd.items():
            arrays[f"snapshots/epoch{e:04d}/{name}"] = t.numpy()
    return arrays


def result_attrs(run: Run) -> dict[str, Any]:
    """The run's outcome, step sizes, set-up and the resolved cfg (docs/training.md)."""
    state, sizes, c = run.state, run.sizes, run.c
    return {
        "status": state["status"],
        "diverged_step": int(state["diverged_step"]),
        "h": sizes["h"],
        "eta": sizes["eta"],
        "mu": sizes["mu"],
        "lambda_flow2": sizes["lambda_flow2"],
        "optimizer_lr": run.base_lr,
        "optimizer_momentum": run.momentum,
        "n_params": n_params(run.model),
        "device": _device_name(run.device),
        "bf16": run.bf16,
        "compiled": run.step_model is not run.model,
        "channels_last": run.channels_last,
        "deterministic": deterministic_in_effect(c["deterministic"], run.device),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark) if run.device.type == "cuda" else False,
        "fill_uninitialized_memory": deterministic_in_effect(c["deterministic"], run.device),
        "eval_every": int(c["eval_every"]),
        "n_train": run.data.n_used,
        "n_test": run.data.n_test,
        "steps_per_epoch": run.steps_per_epoch,
        "steps": state["step"],
        "epochs_completed": state["epoch"],
        "resumed_from_epoch": run.resumed_from,
        "initial_loss": float("nan") if state["initial_loss"] is None else state["initial_loss"],
        "seed": int(c["seed"]),
        "num_threads": torch.get_num_threads(),
        "sharpness_subset": run.n_sharp,
        "sharpness_chunk": min(run.sharp_chunk, run.n_sharp),
        "config": c,
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name(device)})"
    return "cpu"
