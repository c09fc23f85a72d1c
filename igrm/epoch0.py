"""The epoch-0 sharpness measurement, shared by the runs that start from one initialisation.

λ_max, tr H and ‖∇E‖² at the initialisation depend on the initial parameters, the examples
measured (the first ``sharpness.subset`` of the run's set, in its chunks), the measurement's
settings and its generator (seeded by the run seed), not on β or the learning rate: every
run of a seed's β and learning-rate grids measures the same numbers (igrm.train stores h and
the derived ε per run, from its own h). So the first run to measure it writes one small JSON
file, keyed by the fingerprint of all of these (:func:`key`: a sha256 of the initial state
and of the measured examples, via igrm.train.fingerprint_id), and the others read it.

The file is written atomically (igrm.pipeline.io.atomic_path) and carries a sha256 of its
content; a file that does not parse, fails its checksum or holds another key is ignored with a
warning and the measurement recomputed (and the file rewritten).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .pipeline.io import atomic_path
from .sharpness import Ends, Measurement, PowerResult, TraceResult


def tensor_digest(tensors) -> str:
    """sha256 over the bytes (and shapes, dtypes) of ``tensors``, on the CPU."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def key(state: Mapping[str, Tensor], examples: tuple[Tensor, ...], settings: Mapping[str, Any]) -> dict:
    """What fixes the epoch-0 measurement: the initial state (parameters and buffers), the
    examples measured, and ``settings`` (measurement settings, chunking, memory format, device,
    numerics, seed of its generator, torch version)."""
    return {
        "init": tensor_digest(state[k] for k in sorted(state)),
        "examples": tensor_digest(examples),
        **{k: settings[k] for k in sorted(settings)},
        "torch": torch.__version__,
    }


def _result(r: PowerResult) -> dict:
    return {"value": r.value, "iters": r.iters, "converged": r.converged, "residual": r.residual}


def _power(p: Mapping[str, Any]) -> PowerResult:
    return PowerResult(float(p["value"]), int(p["iters"]), bool(p["converged"]), float(p["residual"]))


def _content(m: Measurement) -> dict:
    t = m.trace
    return {
        "ends": {"top": _result(m.ends.top), "bottom": _result(m.ends.bottom)},
        "trace": None if t is None else {"value": t.value, "se": t.se, "probes": t.probes, "values": list(t.values)},
        "grad_norm_sq": m.grad_norm_sq,
        "loss": m.loss,
    }


def _measurement(c: Mapping[str, Any]) -> Measurement:
    e, t = c["ends"], c["trace"]
    return Measurement(
        ends=Ends(top=_power(e["top"]), bottom=_power(e["bottom"])),
        trace=None
        if t is None
        else TraceResult(float(t["value"]), float(t["se"]), int(t["probes"]), tuple(float(v) for v in t["values"])),
        grad_norm_sq=float(c["grad_norm_sq"]),
        loss=float(c["loss"]),
    )


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def load(path: Path, want: Mapping[str, Any], warn: Callable[[str], None]) -> Measurement | None:
    """The measurement stored at ``path`` for key ``want``; None (with a warning when the file
    exists) if it is absent, unreadable, fails its checksum or holds another key."""
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
        body = {"key": doc["key"], "measurement": doc["measurement"]}
        if doc["sha256"] != _digest(body):
            raise ValueError("sha256 does not match its content")
        if doc["key"] != json.loads(json.dumps(dict(want))):
            raise ValueError("written for another initialisation or setting")
        m = _measurement(doc["measurement"])
        if not math.isfinite(m.ends.top.value) or not math.isfinite(m.grad_norm_sq):
            raise ValueError("non-finite λ_max or |∇E|²")
        return m
    except (OSError, ValueError, KeyError, TypeError) as e:
        warn(f"epoch-0 measurement {path} ignored ({type(e).__name__}: {e}); measuring again")
        return None


def store(path: Path, k: Mapping[str, Any], m: Measurement) -> None:
    """Write the measurement for key ``k`` atomically, with its checksum."""
    body = {"key": json.loads(json.dumps(dict(k))), "measurement": _content(m)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({**body, "sha256": _digest(body)}, indent=1, sort_keys=True) + "\n")
