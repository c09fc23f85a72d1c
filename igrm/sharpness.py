"""Sharpness of a training loss: the dominant Hessian eigenvalue by power iteration on
Hessian-vector products (double backprop) (docs/theory.md (T60); docs/training.md,
"Sharpness along a run").

- :func:`power_iteration`: the eigenvalue of largest magnitude (signed) of a symmetric
  linear map given as a Hessian-vector product, with its Rayleigh quotient and residual;
- :func:`lambda_max`: that of the Hessian of E = Σ_c loss_fns[c]() with respect to
  ``params``, one graph per chunk built once and differentiated again per iteration;
- the expansion parameters it enters: :mod:`igrm.validity` (no torch).

BatchNorm: the Hessian is that of the loss the closures compute. In train mode (what the
optimiser differentiates) the batch statistics are functions of the parameters, and the
Hessian includes that dependence. The forward passes would advance the running
statistics; pass ``buffers`` and they are restored bitwise afterwards, so a measurement
leaves the model exactly as it found it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

Vec = list[Tensor]


@dataclass(frozen=True)
class PowerResult:
    """``value``: the Rayleigh quotient vᵀHv of the last unit iterate (signed; its
    magnitude is a lower bound of the spectral radius); ``iters``: Hessian-vector products
    used; ``residual``: ‖Hv − value·v‖ / |value| of the last iterate (0 for an exact
    eigenvector; some eigenvalue lies within residual·|value| of value); ``converged``:
    residual ≤ tol (docs/theory.md (T60))."""
    value: float
    iters: int
    converged: bool
    residual: float


def _dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    return float(sum((x.double() * y.double()).sum() for x, y in zip(a, b)))


def _normalised(v: Sequence[Tensor]) -> tuple[Vec, float]:
    n = math.sqrt(_dot(v, v))
    return ([x / n for x in v] if n > 0 else [x.clone() for x in v]), n


def power_iteration(*, hvp: Callable[[Vec], Vec], start: Sequence[Tensor], iters: int, tol: float) -> PowerResult:
    """Power iteration v ← Hv/‖Hv‖ from ``start`` (docs/theory.md (T60)).

    Converges to an eigenvector of the eigenvalue of largest |λ| (when no eigenvalue of
    the opposite sign has nearly the same magnitude: then it is slow); the returned value
    keeps its sign. Stops after ``iters`` products, or once the relative residual
    ‖Hv − (vᵀHv) v‖ / |vᵀHv| ≤ ``tol``. A relative change of the quotient is not used: it
    is small also while the iterate still swings between λ and −λ."""
    if int(iters) < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    v, n0 = _normalised(start)
    if n0 == 0:
        raise ValueError("start vector is zero")
    value, residual = 0.0, math.nan
    for k in range(1, int(iters) + 1):
        hv = [x.detach() for x in hvp(v)]
        value = _dot(v, hv)                                   # Rayleigh quotient, ‖v‖ = 1
        w, norm = _normalised(hv)
        if norm == 0:                                         # H v = 0: v is in the null space
            return PowerResult(0.0, k, True, 0.0)
        # ‖Hv − λv‖² = ‖Hv‖² − λ² for a unit v and λ = vᵀHv
        residual = math.sqrt(max(0.0, norm ** 2 - value ** 2)) / abs(value) if value != 0 else math.inf
        if residual <= float(tol):
            return PowerResult(value, k, True, residual)
        v = w
    return PowerResult(value, int(iters), False, residual)


def lambda_max(*, loss_fns: Sequence[Callable[[], Tensor]], params: Sequence[Tensor],
               buffers: Sequence[Tensor] | None, iters: int, tol: float,
               generator: torch.Generator) -> PowerResult:
    """Dominant eigenvalue of ∇²E, E = Σ_c loss_fns[c]() (each closure: one chunk's loss,
    weighted so that they sum to E), by :func:`power_iteration` on exact Hessian-vector
    products: ∇E is built once with ``create_graph`` and H v = ∇(∇E · v) per iteration
    (one double backward over the retained graphs).

    The start vector is standard normal from ``generator`` (a CPU generator: the same
    start on every device; no other random stream is touched). ``buffers`` (e.g. the
    model's BatchNorm running statistics) are restored bitwise afterwards."""
    params = list(params)
    saved = None if buffers is None else [b.detach().clone() for b in buffers]
    try:
        grads = None
        for fn in loss_fns:
            gs = torch.autograd.grad(fn(), params, create_graph=True, allow_unused=True)
            gs = [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params)]
            grads = gs if grads is None else [a + b for a, b in zip(grads, gs)]
        if grads is None:
            raise ValueError("loss_fns is empty")

        def hvp(v: Vec) -> Vec:
            dot = sum((g * x).sum() for g, x in zip(grads, v))
            hv = torch.autograd.grad(dot, params, retain_graph=True, allow_unused=True)
            return [torch.zeros_like(p) if h is None else h for h, p in zip(hv, params)]

        start = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
        return power_iteration(hvp=hvp, start=start, iters=iters, tol=tol)
    finally:
        if saved is not None:
            with torch.no_grad():
                for b, s in zip(buffers, saved):
                    b.copy_(s)

