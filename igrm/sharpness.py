"""Sharpness of a training loss: the dominant Hessian eigenvalue by power iteration or by
Lanczos on Hessian-vector products (double backprop), the Hessian's trace by Hutchinson's
estimator on the same products, and the squared gradient norm (docs/theory.md (T60),
(T64)–(T66); docs/training.md, "Sharpness along a run").

- :func:`power_iteration`: the eigenvalue of largest magnitude (signed) of a symmetric
  linear map given as a Hessian-vector product, with its Rayleigh quotient and residual;
- :func:`lanczos`: both ends of the spectrum, λ_max (algebraic top) and λ_min (bottom),
  each with its residual, from one Krylov space (fewer products than power iteration);
- :func:`hutchinson_trace`: tr H from Rademacher probes zᵀHz, with its standard error;
- :func:`lambda_max`: λ_max of the Hessian of E = Σ_c loss_fns[c]() with respect to
  ``params``, one graph per chunk built once and differentiated again per iteration;
- :func:`measure`: λ_max, tr H and ‖∇E‖² of that E from one graph (what a training run
  records at each point);
- the expansion parameters it enters: :mod:`igrm.validity` (no torch).

BatchNorm: the Hessian is that of the loss the closures compute. In train mode (what the
optimiser differentiates) the batch statistics are functions of the parameters, and the
Hessian includes that dependence. The forward passes would advance the running
statistics; pass ``buffers`` and they are restored bitwise afterwards, so a measurement
leaves the model exactly as it found it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


def power_iteration(
    *,
    hvp: Callable[[Vec], Vec],
    start: Sequence[Tensor],
    iters: int,
    tol: float,
    start_product: Sequence[Tensor] | None = None,
) -> PowerResult:
    """Power iteration v ← Hv/‖Hv‖ from ``start`` (docs/theory.md (T60)).

    Converges to an eigenvector of the eigenvalue of largest |λ| (when no eigenvalue of
    the opposite sign has nearly the same magnitude: then it is slow); the returned value
    keeps its sign. Stops after ``iters`` products, or once the relative residual
    ‖Hv − (vᵀHv) v‖ / |vᵀHv| ≤ ``tol``. A relative change of the quotient is not used: it
    is small also while the iterate still swings between λ and −λ. ``start_product``:
    H·``start`` if already computed (e.g. as a trace probe, :func:`measure`); it counts
    as the first of the ``iters`` products."""
    if int(iters) < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    v, n0 = _normalised(start)
    if n0 == 0:
        raise ValueError("start vector is zero")
    value, residual = 0.0, math.nan
    for k in range(1, int(iters) + 1):
        if k == 1 and start_product is not None:
            hv = [x.detach() / n0 for x in start_product]  # H(start/‖start‖), H linear
        else:
            hv = [x.detach() for x in hvp(v)]
        value = _dot(v, hv)  # Rayleigh quotient, ‖v‖ = 1
        w, norm = _normalised(hv)
        if norm == 0:  # H v = 0: v is in the null space
            return PowerResult(0.0, k, True, 0.0)
        # ‖Hv − λv‖² = ‖Hv‖² − λ² for a unit v and λ = vᵀHv
        residual = math.sqrt(max(0.0, norm**2 - value**2)) / abs(value) if value != 0 else math.inf
        if residual <= float(tol):
            return PowerResult(value, k, True, residual)
        v = w
    return PowerResult(value, int(iters), False, residual)


def lanczos(
    *,
    hvp: Callable[[Vec], Vec],
    start: Sequence[Tensor],
    iters: int,
    tol: float,
    start_product: Sequence[Tensor] | None = None,
) -> Ends:
    """Both ends of the spectrum by Lanczos with full reorthogonalisation from ``start``
    (docs/theory.md (T60), (T66)): after k products the tridiagonal T_k = Q_kᵀ H Q_k of the
    Krylov basis Q_k = [q_1 … q_k] (q_1 = start/‖start‖); ``top`` is T_k's largest
    eigenvalue θ_top (the algebraic top Ritz value, → λ_max(H)), ``bottom`` its smallest
    θ_bot (→ λ_min(H)). Each residual is ‖H y − θ y‖/ρ̂ = β_k |s_k|/ρ̂ (y = Q_k s, s the unit
    eigenvector of T_k, β_k the norm of the next Krylov direction), relative to the
    spectral-radius estimate ρ̂ = max(|θ_top|, |θ_bot|): some eigenvalue lies within
    residual·ρ̂ of θ. Ritz values lie in [λ_min(H), λ_max(H)], so θ_top ≤ λ_max, θ_bot ≥ λ_min
    and ρ̂ is a lower bound of the spectral radius ρ = max(|λ_max|, |λ_min|). Stops when both
    residuals are ≤ ``tol`` (each end's ``converged`` is its own). The same Krylov space
    gives both ends: no product beyond one end's. Keeps the k basis vectors (k × the
    parameter count in memory). ``start_product``: H·``start`` if already computed; it
    counts as the first product."""
    import numpy as np

    if int(iters) < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    q, n0 = _normalised(start)
    if n0 == 0:
        raise ValueError("start vector is zero")
    basis, alphas, betas = [q], [], []
    for k in range(1, int(iters) + 1):
        if k == 1 and start_product is not None:
            w = [x.detach() / n0 for x in start_product]
        else:
            w = [x.detach() for x in hvp(basis[-1])]
        alphas.append(_dot(basis[-1], w))
        for _ in range(2):  # full reorthogonalisation, twice
            for b in basis:
                c = _dot(b, w)
                w = [x - c * y for x, y in zip(w, b)]
        w, beta = _normalised(w)
        T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        theta, S = np.linalg.eigh(T)  # ascending
        rho = max(abs(float(theta[0])), abs(float(theta[-1])))
        if rho == 0:
            zero = PowerResult(0.0, k, True, 0.0)
            return Ends(zero, zero)
        res = [abs(beta * float(S[-1, i])) / rho for i in (-1, 0)]
        done = beta == 0 or max(res) <= float(tol)
        if done or k == int(iters):
            ends = [PowerResult(float(theta[i]), k, done or r <= float(tol), r) for i, r in zip((-1, 0), res)]
            return Ends(*ends)
        basis.append(w)
        betas.append(beta)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Ends:
    """The two ends of a symmetric spectrum: ``top`` → λ_max (algebraic largest), ``bottom``
    → λ_min (algebraic smallest), each with its own residual and convergence; ``radius``
    max(|top|, |bottom|) over the ends that are known, a lower bound of the spectral radius
    (the range checks' |λ|, docs/theory.md (T60), (T61))."""

    top: PowerResult
    bottom: PowerResult

    @property
    def radius(self) -> float:
        vals = [abs(r.value) for r in (self.top, self.bottom) if math.isfinite(r.value)]
        return max(vals) if vals else math.nan

    @property
    def converged(self) -> bool:
        """Both known ends converged (the radius is then established to tol)."""
        return all(r.converged for r in (self.top, self.bottom) if math.isfinite(r.value))


def power_ends(**power_args) -> Ends:
    """:func:`power_iteration` (its keyword arguments, passed on as they are), its dominant
    eigenvalue as the end it is: the top if it is ≥ 0, else the bottom; the other end is
    unknown (NaN, not converged). Its magnitude is the spectral-radius estimate."""
    r = power_iteration(**power_args)
    unknown = PowerResult(math.nan, r.iters, False, math.nan)
    return Ends(r, unknown) if r.value >= 0 else Ends(unknown, r)


ALGORITHMS = {"power": power_ends, "lanczos": lanczos}


@dataclass(frozen=True)
class TraceResult:
    """Hutchinson's estimate of tr H (docs/theory.md (T64)): ``value`` the mean of the
    probes' zᵀHz, ``se`` its standard error s/√m (sample SD of the m probe values, ddof 1;
    NaN for m = 1), ``probes`` m, ``values`` the m probe values."""

    value: float
    se: float
    probes: int
    values: tuple[float, ...]


@dataclass(frozen=True)
class Measurement:
    """What :func:`measure` returns: the spectrum's ends (``ends``: λ_max the algebraic top,
    λ_min the bottom, and the spectral-radius estimate), tr H (``trace``; None with 0
    probes), ‖∇E‖² (``grad_norm_sq``) and E (``loss``) of one E at one point."""

    ends: Ends
    trace: TraceResult | None
    grad_norm_sq: float
    loss: float = math.nan  # E itself, the loss whose Hessian this is (matching by loss level)

    @property
    def power(self) -> PowerResult:
        """The end of largest magnitude (the dominant eigenvalue, signed): what power
        iteration converges to; not λ_max when the bottom is the larger in magnitude."""
        known = [r for r in (self.ends.top, self.ends.bottom) if math.isfinite(r.value)]
        return max(known, key=lambda r: abs(r.value)) if known else self.ends.top


def rademacher(params: Sequence[Tensor], generator: torch.Generator) -> Vec:
    """A Rademacher vector (entries ±1 with probability ½ each, iid) shaped like ``params``,
    drawn on the CPU from ``generator`` (the same vector on every device)."""
    return [
        (torch.randint(0, 2, p.shape, generator=generator, dtype=torch.int8).to(p.dtype) * 2 - 1).to(p.device)
        for p in params
    ]


def hutchinson_trace(
    *, hvp: Callable[[Vec], Vec], probes: Sequence[Vec], products: Sequence[Vec | None] | None = None
) -> TraceResult:
    """tr H ≈ (1/m) Σ_j z_jᵀ H z_j over the m Rademacher ``probes`` (docs/theory.md (T64)):
    unbiased, E[zᵀHz] = Σ_ij H_ij E[z_i z_j] = tr H; its variance per probe is
    2 Σ_{i≠j} H_ij² = 2 (‖H‖_F² − Σ_i H_ii²), estimated by the probes' sample variance
    (the standard error is s/√m). ``products``: H z_j where already computed (None: by
    ``hvp``)."""
    probes = list(probes)
    if not probes:
        raise ValueError("hutchinson_trace needs at least one probe")
    products = list(products) if products is not None else [None] * len(probes)
    vals = []
    for z, hz in zip(probes, products):
        hz = hvp(z) if hz is None else hz
        vals.append(_dot(z, [x.detach() for x in hz]))
    m = len(vals)
    mean = sum(vals) / m
    se = math.sqrt(sum((v - mean) ** 2 for v in vals) / (m - 1) / m) if m > 1 else math.nan
    return TraceResult(float(mean), float(se), m, tuple(float(v) for v in vals))


def _graph(loss_fns: Sequence[Callable[[], Tensor]], params: list[Tensor]) -> tuple[Vec, float]:
    """(∇E with ``create_graph``, E) for E = Σ_c loss_fns[c](), the graphs retained for HVPs."""
    grads, total = None, 0.0
    for fn in loss_fns:
        loss = fn()
        total += float(loss.detach())
        gs = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        gs = [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params)]
        grads = gs if grads is None else [a + b for a, b in zip(grads, gs)]
    if grads is None:
        raise ValueError("loss_fns is empty")
    return grads, total


def measure(
    *,
    loss_fns: Sequence[Callable[[], Tensor]],
    params: Sequence[Tensor],
    buffers: Sequence[Tensor] | None,
    algorithm: str,
    iters: int,
    tol: float,
    trace_probes: int,
    generator: torch.Generator,
) -> Measurement:
    """λ_max, tr H and ‖∇E‖² of H = ∇²E, E = Σ_c loss_fns[c]() (each closure one chunk's
    loss, weighted so that they sum to E), from one graph: ∇E is built once with
    ``create_graph`` and every Hessian-vector product H v = ∇(∇E · v) is one double
    backward over the retained graphs (docs/theory.md (T60)).

    - ‖∇E‖² = Σ ∇E·∇E of that graph (docs/theory.md (T65)), no extra pass;
    - Rademacher vectors z_1, …, z_m (m = ``trace_probes``; at least one is drawn) from
      ``generator`` (CPU: the same on every device; no other random stream is touched);
    - the spectrum's ends: ``algorithm`` (``lanczos``: :func:`lanczos`, λ_max and λ_min from
      one Krylov space; ``power``: :func:`power_ends`, the dominant eigenvalue only) from z_1,
      at most ``iters`` products;
    - tr H: :func:`hutchinson_trace` over z_1..z_m; H z_1 is the power iteration's first
      product, so the trace costs m − 1 products beyond it (None for m = 0).

    ``buffers`` (e.g. the model's BatchNorm running statistics) are restored bitwise
    afterwards."""
    params = list(params)
    if int(trace_probes) < 0:
        raise ValueError(f"trace_probes must be >= 0, got {trace_probes}")
    saved = None if buffers is None else [b.detach().clone() for b in buffers]
    try:
        grads, loss = _graph(loss_fns, params)
        gn2 = float(sum((g.detach().double() ** 2).sum() for g in grads))

        def hvp(v: Vec) -> Vec:
            dot = sum((g * x).sum() for g, x in zip(grads, v))
            hv = torch.autograd.grad(dot, params, retain_graph=True, allow_unused=True)
            return [torch.zeros_like(p) if h is None else h for h, p in zip(hv, params)]

        probes = [rademacher(params, generator) for _ in range(max(1, int(trace_probes)))]
        hz1 = [x.detach() for x in hvp(probes[0])]
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {algorithm!r}")
        ends = ALGORITHMS[algorithm](hvp=hvp, start=probes[0], iters=iters, tol=tol, start_product=hz1)
        trace = (
            hutchinson_trace(hvp=hvp, probes=probes, products=[hz1] + [None] * (len(probes) - 1))
            if int(trace_probes) > 0
            else None
        )
        return Measurement(ends, trace, gn2, loss)
    finally:
        if saved is not None:
            with torch.no_grad():
                for b, s in zip(buffers, saved):
                    b.copy_(s)


def lambda_max(
    *,
    loss_fns: Sequence[Callable[[], Tensor]],
    params: Sequence[Tensor],
    buffers: Sequence[Tensor] | None,
    iters: int,
    tol: float,
    generator: torch.Generator,
) -> PowerResult:
    """Dominant eigenvalue (largest |λ|, signed: the bottom of the spectrum when that is the
    larger in magnitude) of ∇²E, E = Σ_c loss_fns[c]() (each closure: one chunk's loss,
    weighted so that they sum to E), by :func:`power_iteration` on exact Hessian-vector
    products: :func:`measure` without trace probes (start: a Rademacher vector from
    ``generator``). ``buffers`` are restored bitwise afterwards."""
    return measure(
        loss_fns=loss_fns,
        params=params,
        buffers=buffers,
        algorithm="power",
        iters=iters,
        tol=tol,
        trace_probes=0,
        generator=generator,
    ).power
