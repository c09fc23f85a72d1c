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

import hashlib
import io
import json
import logging
import math
import os
import pickle
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .batches import (
    augment_batch,
    batch_crop,
    crop_padded,
    normalize,
    reflect_pad_u8,
    resolve_device,
    seed_for,
    to_device_uint8,
    unpack_data,
)
from .pipeline.io import atomic_path
from .models import build_model, n_params
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
#: EVAL_ONLY_KEYS form the checkpoint's fingerprint (_cfg_fingerprint): a key added here is in it.
TRAIN_KEYS = (
    "model", "width", "method", "beta", "lr", "lr_mode", "batch_size", "epochs", "augment", "pad",
    "cutout_size", "train_subset", "test_subset", "fullbatch_subset", "fullbatch_chunk", "seed", "device",
    "bf16", "channels_last", "checkpoint_every", "weight_decay", "schedule", "step_milestones", "step_gamma",
    "blowup_factor", "eval_batch_size", "penalty_impl", "penalty_eps", "deterministic",
    "snapshot_epochs",     # parameter points kept in the result (0 = initialisation), for noise estimates
    "sharpness",           # {points, algorithm, iters, final_iters, tol, subset, trace_probes}: λ_max, tr H, |∇E|²
    "compile",             # torch.compile of the training step's model: false, true (inductor), a backend
)
#: the keys of cfg["sharpness"] (schema: train.sharpness; docs/training.md, "Sharpness along a run")
SHARPNESS_KEYS = ("points", "algorithm", "iters", "final_iters", "tol", "subset", "trace_probes")
SHARPNESS_ARRAYS = ("epoch", "lambda_max", "iters", "converged", "residual", "h", "epsilon", "penalty_curvature",
                    "stability", "trace", "trace_se", "trace_probes", "grad_norm_sq", "wall_time")

CKPT_RE = re.compile(r"^ckpt_epoch(\d{4,})\.pt$")
#: cfg keys that do not change the training trajectory (model, optimiser, RNG streams): a
#: checkpoint written under other values resumes (docs/training.md, "Checkpoint / resume contract").
#: ``epochs`` is one too under the constant schedule.
#: ``compile`` is here too: it changes how the step is computed, not what (compiled and eager
#: steps agree to float rounding: benchmarks/gpu_check.py, tests/test_gpu_paths.py), so a run may resume either way.
EVAL_ONLY_KEYS = ("eval_batch_size", "checkpoint_every", "sharpness", "compile")
#: torch.compile backends of cfg["compile"] (true = inductor)
COMPILE_BACKENDS = ("inductor", "aot_eager")
#: checkpoints kept per fingerprint: the newest, and one to fall back on if it is damaged
CKPT_KEEP = 2


# --------------------------------------------------------------------------- config
def resolve_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """cfg validated, in :data:`TRAIN_KEYS` order: it must hold exactly those keys (no
    defaults here); an unknown key is a ValueError, a missing one a TypeError, naming it."""
    unknown = [k for k in cfg if k not in TRAIN_KEYS]
    if unknown:
        raise ValueError(f"unknown training cfg key(s): {', '.join(unknown)}; known: {', '.join(TRAIN_KEYS)}")
    missing = [k for k in TRAIN_KEYS if k not in cfg]
    if missing:
        raise TypeError(f"training cfg lacks key(s): {', '.join(missing)} (defaults: schemas/config.schema.yaml, "
                        "section train)")
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
        ("device", c["device"] in ("auto", "cpu", "cuda") or str(c["device"]).startswith("cuda:"),
         "auto, cpu, cuda or cuda:N"),
        ("checkpoint_every", int(c["checkpoint_every"]) >= 1, ">= 1"),
        ("blowup_factor", float(c["blowup_factor"]) > 1, "> 1"),
        ("penalty_impl", c["penalty_impl"] in IMPLEMENTATIONS, f"one of {IMPLEMENTATIONS}"),
        ("channels_last", c["channels_last"] in ("auto", True, False), "auto, true or false"),
        ("bf16", c["bf16"] in (True, False, "always"), "true, false or always"),
        ("compile", c["compile"] in (True, False, *COMPILE_BACKENDS), f"true, false or one of {COMPILE_BACKENDS}"),
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
        raise TypeError(f"training cfg lacks key(s) sharpness.{', sharpness.'.join(missing)} (defaults: "
                        "schemas/config.schema.yaml, section train.sharpness)")
    s = {k: s[k] for k in SHARPNESS_KEYS}
    checks = [("points", int(s["points"]) >= 0, ">= 0"), ("iters", int(s["iters"]) >= 1, ">= 1"),
              ("algorithm", s["algorithm"] in ("power", "lanczos"), "'power' or 'lanczos'"),
              ("final_iters", s["final_iters"] is None or int(s["final_iters"]) >= 1, "null or >= 1"),
              ("tol", float(s["tol"]) >= 0, ">= 0"), ("trace_probes", int(s["trace_probes"]) >= 0, ">= 0"),
              ("subset", s["subset"] is None or int(s["subset"]) >= 1, "null or >= 1")]
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
    return {"h": h, "eta": eta, "mu": beta * eta / (2 * (1 - beta)),
            "lambda_flow2": (1 + beta) * h / (4 * (1 - beta) ** 2)}


def lr_factor(cfg: Mapping[str, Any], step: int, total_steps: int) -> float:
    """Schedule multiplier at a global step (0-based)."""
    if cfg["schedule"] == "constant":
        return 1.0
    frac = step / max(1, total_steps)
    if cfg["schedule"] == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    return float(cfg["step_gamma"]) ** sum(frac >= m for m in cfg["step_milestones"])


# --------------------------------------------------------------------------- gradients
def chunk_loss_fns(model: nn.Module, inputs: Sequence[Tensor], labels: Sequence[Tensor], n_total: int,
                   autocast: Callable, stats: dict | None = None) -> list[Callable[[], Tensor]]:
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
def _cfg_fingerprint(cfg: Mapping[str, Any], device: torch.device) -> dict:
    """The cfg entries a checkpoint must match to be resumed: all but :data:`EVAL_ONLY_KEYS`,
    and ``epochs`` only under a non-constant schedule (it sets the schedule's length; under
    the constant one a finished run can be extended). ``device`` and ``bf16`` as in effect
    (auto = the device it picked; bf16 is ignored on CPU)."""
    fp = {k: v for k, v in cfg.items() if k not in EVAL_ONLY_KEYS}
    if cfg["schedule"] == "constant":
        del fp["epochs"]
    fp["device"] = device.type
    fp["bf16"] = bf16_in_effect(cfg["bf16"], device)
    return fp


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
        _emit(progress, "compile: the explicit baseline's double backward runs eager (torch.compile "
                        "does not support it); the other forward passes are not compiled either")
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


def _set_aside(path: Path, why: str, progress) -> None:
    """Rename a damaged checkpoint (and its checksum) to ``<name>.corrupt``, with a warning."""
    for p in (path, _sidecar(path)):
        if p.exists():
            os.replace(p, p.with_name(p.name + ".corrupt"))
    _warn(progress, f"checkpoint {path} is damaged ({why}); set aside as {path.name}.corrupt, "
                    "falling back to the previous checkpoint")


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


def load_checkpoint(folder: Path, fp: Mapping[str, Any], epochs: int, device: torch.device,
                    progress) -> tuple[Path, dict] | None:
    """(path, content) of the newest valid checkpoint in ``folder`` of fingerprint ``fp`` with
    epoch <= ``epochs``, or None. A damaged one (checksum or reader fails) is set aside with
    a warning and the next older one tried. A file that passes its checksum but holds more
    than tensors and plain types is refused (pickle.UnpicklingError): never unpickled."""
    for epoch, path in reversed(_checkpoints(folder)):
        if epoch > epochs:
            _emit(progress, f"checkpoint {path.name} is past epochs={epochs}; trying an earlier one")
            continue
        blob, why = _verify(path)
        if why is None:
            try:
                saved = torch.load(io.BytesIO(blob), map_location=device, weights_only=True)
            except pickle.UnpicklingError as e:
                raise pickle.UnpicklingError(f"checkpoint {path} holds objects other than tensors and plain "
                                             f"types; refused, delete it ({e})") from e
            except Exception as e:                  # noqa: BLE001 (any reader failure = damage)
                why = f"unreadable: {type(e).__name__}: {e}"
        if why is not None:
            _set_aside(path, why, progress)
            continue
        if saved.get("cfg") != _canon(fp):
            _warn(progress, f"checkpoint {path} was written under another config than its folder's; skipped")
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
def evaluate(model: nn.Module, images_u8: Tensor, labels: Tensor, mean: Tensor, std: Tensor,
             batch_size: int, autocast: Callable, memory_format) -> tuple[float, float]:
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
def train(cfg: Mapping[str, Any], data: Mapping[str, Any], checkpoint_dir: Path | None,
          progress) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train one run; returns (arrays, attrs). See docs/training.md."""
    c = resolve_config(cfg)
    device = resolve_device(c["device"])
    det_before = torch.are_deterministic_algorithms_enabled()
    det_warn_before = torch.is_deterministic_algorithms_warn_only_enabled()
    if c["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        return _train(c, data, device, checkpoint_dir, progress)
    finally:
        torch.use_deterministic_algorithms(det_before, warn_only=det_warn_before)


def _train(c: dict, data: Mapping[str, Any], device: torch.device, checkpoint_dir, progress):
    d = unpack_data(data)
    seed = int(c["seed"])
    use_cuda = device.type == "cuda"
    bf16 = bf16_in_effect(c["bf16"], device)
    # auto = on: measured ~15% faster on CPU too (docs/training.md)
    channels_last = True if c["channels_last"] == "auto" else bool(c["channels_last"])
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def autocast():
        return bf16_autocast(device, bf16)

    # ---- which examples (CPU generator: identical subsets on every device)
    g_subset = torch.Generator().manual_seed(seed_for(seed, "subset"))
    n_all = len(d["train/labels"])
    perm = torch.randperm(n_all, generator=g_subset).numpy()
    n_train = n_all if c["train_subset"] is None else min(int(c["train_subset"]), n_all)
    train_idx = perm[:n_train]
    fullbatch = c["method"] == "gdm" or (c["method"] == "igrm_explicit" and c["fullbatch_subset"] is not None)
    if fullbatch and c["fullbatch_subset"] is not None:
        train_idx = train_idx[:min(int(c["fullbatch_subset"]), n_train)]
    n_used = len(train_idx)
    n_test = len(d["test/labels"]) if c["test_subset"] is None else min(int(c["test_subset"]), len(d["test/labels"]))

    x_train = to_device_uint8(d["train/images"][train_idx], device)
    y_train = torch.from_numpy(d["train/labels"][train_idx]).to(device)
    # crops read from the set padded once (docs/performance.md, "CIFAR data loader")
    crop = bool({"crop", "crop+flip"} & set(c["augment"]))
    x_train_pad = reflect_pad_u8(x_train, int(c["pad"])) if crop and int(c["pad"]) > 0 else None
    x_test = to_device_uint8(d["test/images"][:n_test], device)
    y_test = torch.from_numpy(d["test/labels"][:n_test]).to(device)
    mean = torch.tensor(d["mean"], dtype=torch.float32, device=device)
    std = torch.tensor(d["std"], dtype=torch.float32, device=device)
    in_channels = x_train.shape[1]

    # ---- model (seeded init under a forked global RNG), optimiser
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(seed, "init"))
        model = build_model(c["model"], d["num_classes"], in_channels, float(c["width"]))
    model = model.to(device=device, memory_format=memory_format)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = list(model.buffers())
    step_model = compiled_step_model(model, c["compile"], c["method"], c["penalty_impl"], progress)
    sizes = step_sizes(c)
    beta = float(c["beta"])
    if c["method"] == "igrm_explicit":
        base_lr, momentum = sizes["eta"], 0.0
    else:
        base_lr, momentum = sizes["h"], beta
    opt = torch.optim.SGD(params, lr=base_lr, momentum=momentum, dampening=0, nesterov=False,
                          weight_decay=float(c["weight_decay"]))

    g_order = torch.Generator(device=device).manual_seed(seed_for(seed, "order"))
    g_aug = torch.Generator(device=device).manual_seed(seed_for(seed, "augment"))

    batch_size = min(int(c["batch_size"]), n_used)
    steps_per_epoch = 1 if fullbatch else n_used // batch_size
    chunk = int(c["fullbatch_chunk"] or c["batch_size"])
    total_steps = steps_per_epoch * int(c["epochs"])

    metrics: dict[str, list] = {k: [] for k in METRICS}
    state = {"epoch": 0, "step": 0, "initial_loss": None, "status": "running", "diverged_step": -1}
    resumed_from = 0
    snapshot_epochs = {int(e) for e in c["snapshot_epochs"]}
    snapshots: dict[int, dict[str, Tensor]] = {}   # epoch -> state_dict (CPU copies)

    # ---- sharpness along the run (docs/training.md, "Sharpness along a run"): the Hessian of
    # the train-mode loss on the first n_sharp training examples, unaugmented, in the chunks
    # a step uses; its own generator per measurement, BN buffers restored: the training
    # streams and the trajectory are unchanged
    sh = c["sharpness"]
    sharp_at = set(sharpness_epochs(int(sh["points"]), int(c["epochs"])))
    n_sharp = n_used if sh["subset"] is None else min(int(sh["subset"]), n_used)
    sharp_chunk = chunk if fullbatch else batch_size
    sharp: dict[str, list] = {k: [] for k in SHARPNESS_ARRAYS}

    def snapshot():
        if state["epoch"] in snapshot_epochs and state["epoch"] not in snapshots:
            snapshots[state["epoch"]] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    # ---- resume: the newest valid checkpoint of this fingerprint (one folder per fingerprint)
    fp = _cfg_fingerprint(c, device)
    eval_cfg = {k: c[k] for k in EVAL_ONLY_KEYS}
    ck_folder = None if checkpoint_dir is None else Path(checkpoint_dir) / fingerprint_id(fp)
    if checkpoint_dir is not None and any(_checkpoints(Path(checkpoint_dir))):
        _warn(progress, f"checkpoints of the old layout (ckpt_epoch*.pt directly in {checkpoint_dir}) are "
                        "ignored; checkpoints now live in one folder per config fingerprint: delete them")
    found = None if ck_folder is None else load_checkpoint(ck_folder, fp, int(c["epochs"]), device, progress)
    if found is not None:
        ck, saved = found
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        g_order.set_state(saved["rng"]["order"].cpu())
        g_aug.set_state(saved["rng"]["augment"].cpu())
        torch.set_rng_state(saved["rng"]["torch_cpu"].cpu())
        metrics = {k: list(v) for k, v in saved["metrics"].items()}
        snapshots = dict(saved.get("snapshots", {}))
        n_pts = len(saved["sharpness"].get("epoch", []))      # a checkpoint from before trace/|grad|^2: NaN there
        sharp = {k: list(saved["sharpness"].get(k, [0 if k == "trace_probes" else math.nan] * n_pts))
                 for k in SHARPNESS_ARRAYS}
        state = dict(saved["state"])
        resumed_from = state["epoch"]
        if state["status"] == "completed" and state["epoch"] < int(c["epochs"]):
            state["status"] = "running"          # constant schedule, more epochs asked for
        _emit(progress, f"resumed from {ck.name} in {ck_folder} (epoch {resumed_from}, status {state['status']})")
        changed = {k: (v, eval_cfg[k]) for k, v in saved.get("eval_cfg", {}).items() if v != _canon(eval_cfg[k])}
        if changed:
            _emit(progress, "evaluation-only keys changed since the checkpoint (its epochs keep the old "
                            "measurements): " + "; ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))
    elif ck_folder is not None:
        others = sorted(p.name for p in Path(checkpoint_dir).iterdir() if p.is_dir() and p != ck_folder) \
            if Path(checkpoint_dir).is_dir() else []
        _emit(progress, f"no checkpoint of this config ({ck_folder.name}) to resume; starting afresh"
                        + (f" (checkpoints of other configs kept: {', '.join(others)})" if others else ""))

    def checkpoint():
        if ck_folder is None:
            return
        ck_folder.mkdir(parents=True, exist_ok=True)
        if not (ck_folder / "fingerprint.json").exists():
            with atomic_path(ck_folder / "fingerprint.json") as tmp:
                tmp.write_text(json.dumps(_canon(fp), indent=1, sort_keys=True) + "\n")
        _save_checkpoint(ck_folder, {
            "epoch": state["epoch"], "cfg": _canon(fp), "eval_cfg": _canon(eval_cfg), "state": dict(state),
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "rng": {"order": g_order.get_state(), "augment": g_aug.get_state(),
                    "torch_cpu": torch.get_rng_state()},
            "metrics": metrics, "snapshots": snapshots, "sharpness": sharp,
        })

    def measure_sharpness():
        e = state["epoch"]
        if e not in sharp_at or e in sharp["epoch"]:
            return
        t_s = time.perf_counter()
        was_training = model.training
        model.train()
        xs = normalize(x_train[:n_sharp], mean, std).contiguous(memory_format=memory_format)
        ys = y_train[:n_sharp]
        fns = chunk_loss_fns(model, torch.split(xs, sharp_chunk), torch.split(ys, sharp_chunk), n_sharp, _null_ctx)
        # the last point (what the claims compare) may get more products (docs/training.md)
        iters = int(sh["final_iters"]) if e == int(c["epochs"]) and sh["final_iters"] is not None else int(sh["iters"])
        m = measure_point(loss_fns=fns, params=params, buffers=buffers, algorithm=sh["algorithm"], iters=iters,
                          tol=float(sh["tol"]),
                          trace_probes=int(sh["trace_probes"]),
                          generator=torch.Generator().manual_seed(seed_for(seed, f"sharpness/{e}")))
        r = m.power
        model.train(was_training)
        # h of the step at this point (the next one; at the end, the last one applied)
        h_now = sizes["h"] * lr_factor(c, min(state["step"], max(0, total_steps - 1)), total_steps)
        ex = expansion_parameters(lam=r.value, h=h_now, beta=beta)
        tr = m.trace
        vals = {"epoch": e, "lambda_max": r.value, "iters": r.iters, "converged": bool(r.converged),
                "residual": r.residual, "h": h_now, **ex,
                "trace": tr.value if tr is not None else math.nan, "trace_se": tr.se if tr is not None else math.nan,
                "trace_probes": tr.probes if tr is not None else 0, "grad_norm_sq": m.grad_norm_sq,
                "wall_time": time.perf_counter() - t_s}
        for k in SHARPNESS_ARRAYS:
            sharp[k].append(vals[k])
        _emit(progress, f"sharpness at epoch {e}: lambda_max {r.value:.4g} ({r.iters} HVPs, "
                        f"{'converged' if r.converged else 'not converged'}, residual {r.residual:.2g}), "
                        f"tr H {vals['trace']:.4g} ± {vals['trace_se']:.2g}, |grad E|^2 {m.grad_norm_sq:.4g}, "
                        f"eps {ex['epsilon']:.3g}, 2 mu lambda {ex['penalty_curvature']:.3g} "
                        f"({vals['wall_time']:.1f}s)")

    mu = sizes["mu"]
    blowup = float(c["blowup_factor"])
    epochs = int(c["epochs"])

    snapshot()                              # epoch 0: the initialisation
    measure_sharpness()
    while state["status"] == "running" and state["epoch"] < epochs:
        t0 = time.perf_counter()
        epoch = state["epoch"]
        model.train()
        loss_sum, correct, seen, gn_sum, steps_done = 0.0, 0, 0, 0.0, 0
        h_epoch = None
        if fullbatch:
            batches = [torch.arange(n_used, device=device)]
        else:
            order = torch.randperm(n_used, generator=g_order, device=device)
            batches = list(torch.split(order[: steps_per_epoch * batch_size], batch_size))
        for idx in batches:
            factor = lr_factor(c, state["step"], total_steps)
            for group in opt.param_groups:
                group["lr"] = base_lr * factor
            if h_epoch is None:
                h_epoch = sizes["h"] * factor
            xb = augment_batch(None if x_train_pad is not None else x_train[idx], c["augment"], g_aug,
                               mean, std, pad=int(c["pad"]), cutout_size=int(c["cutout_size"]), padded=x_train_pad, idx=idx)
            xb = xb.contiguous(memory_format=memory_format)
            yb = y_train[idx]
            n_b = len(idx)
            stats: dict = {}
            if fullbatch:
                fns = chunk_loss_fns(step_model, torch.split(xb, chunk), torch.split(yb, chunk), n_b, autocast,
                                     stats)
            else:
                fns = chunk_loss_fns(step_model, [xb], [yb], n_b, autocast, stats)
            if c["method"] == "igrm_explicit":
                g, pg, loss_val = penalty_grad(fns, params, mu * factor, c["penalty_impl"],
                                               float(c["penalty_eps"]), buffers=buffers)
                grads = [a + b for a, b in zip(g, pg)]
            else:
                g, loss_val = accumulate_grad(fns, params)
                grads = g
            gn = float(sq_norm(g))
            if state["initial_loss"] is None:
                state["initial_loss"] = loss_val
            if not math.isfinite(loss_val) or not math.isfinite(gn) or loss_val > blowup * state["initial_loss"]:
                state["status"], state["diverged_step"] = "diverged", state["step"]
                loss_sum += loss_val * n_b
                seen += n_b
                correct += stats.get("correct", 0)
                _emit(progress, f"diverged at step {state['step']} (epoch {epoch + 1}): loss {loss_val:.4g}")
                break
            for p, gr in zip(params, grads):
                p.grad = gr
            opt.step()
            state["step"] += 1
            steps_done += 1
            loss_sum += loss_val * n_b
            correct += stats.get("correct", 0)
            seen += n_b
            gn_sum += gn
        diverged = state["status"] == "diverged"
        if diverged:
            test_loss, test_acc = float("nan"), float("nan")
        else:
            test_loss, test_acc = evaluate(step_model, x_test, y_test, mean, std, int(c["eval_batch_size"]),
                                           autocast, memory_format)
        state["epoch"] = epoch + 1
        row = {"train_loss": loss_sum / max(1, seen), "train_acc": correct / max(1, seen),
               "test_loss": test_loss, "test_acc": test_acc,
               "grad_norm_sq": gn_sum / steps_done if steps_done else float("nan"),
               "lr": h_epoch if h_epoch is not None else float("nan"), "steps": state["step"],
               "wall_time": time.perf_counter() - t0}
        for k in METRICS:
            metrics[k].append(row[k])
        if not diverged:
            snapshot()
            measure_sharpness()
        if not diverged and state["epoch"] >= epochs:
            state["status"] = "completed"
        if diverged or state["status"] == "completed" or state["epoch"] % int(c["checkpoint_every"]) == 0:
            checkpoint()
        _emit(progress, f"epoch {state['epoch']}/{epochs} train_loss {row['train_loss']:.4f} "
                        f"train_acc {row['train_acc']:.4f} test_loss {test_loss:.4f} test_acc {test_acc:.4f} "
                        f"lr {row['lr']:.4g} ({row['wall_time']:.1f}s)")
        _emit_epoch(progress, state["epoch"], epochs, row, state["status"])

    if state["status"] == "running":        # epochs reached on resume of an old checkpoint
        state["status"] = "completed"

    arrays: dict[str, np.ndarray] = {"epoch": np.arange(1, len(metrics["train_loss"]) + 1, dtype=np.int64)}
    for k in METRICS:
        arrays[k] = np.asarray(metrics[k], dtype=np.int64 if k == "steps" else np.float64)
    for name, t in model.state_dict().items():
        arrays[f"final_state/{name}"] = t.detach().cpu().numpy()
    dtypes = {"epoch": np.int64, "iters": np.int64, "trace_probes": np.int64, "converged": np.bool_}
    for k in SHARPNESS_ARRAYS:
        arrays[f"sharpness/{k}"] = np.asarray(sharp[k], dtype=dtypes.get(k, np.float64))
    for e, sd in sorted(snapshots.items()):
        for name, t in sd.items():
            arrays[f"snapshots/epoch{e:04d}/{name}"] = t.numpy()
    attrs = {
        "status": state["status"], "diverged_step": int(state["diverged_step"]),
        "h": sizes["h"], "eta": sizes["eta"], "mu": sizes["mu"], "lambda_flow2": sizes["lambda_flow2"],
        "optimizer_lr": base_lr, "optimizer_momentum": momentum,
        "n_params": n_params(model), "device": _device_name(device), "bf16": bf16,
        "compiled": step_model is not model,
        "channels_last": channels_last, "deterministic": bool(c["deterministic"]),
        "n_train": n_used, "n_test": n_test, "steps_per_epoch": steps_per_epoch, "steps": state["step"],
        "epochs_completed": state["epoch"], "resumed_from_epoch": resumed_from,
        "initial_loss": float("nan") if state["initial_loss"] is None else state["initial_loss"],
        "seed": seed, "num_threads": torch.get_num_threads(),
        "sharpness_subset": n_sharp, "sharpness_chunk": min(sharp_chunk, n_sharp),
        "config": c,
    }
    return arrays, attrs


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name(device)})"
    return "cpu"
