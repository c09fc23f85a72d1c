"""The modified loss of GD+M at O(h²), in a metric (docs/modified_flows.md §7.2; docs/theory.md
(T87), (T89)).

The O(h³) flow (T87) is, to O(h³), the gradient flow of

    Ẽ₂ = E/m + (1+β)h‖g‖²/(4m³) + (1+10β+β²)h² gᵀHg/(12m⁵),     m = 1−β,

in the metric G⁻¹ = I + h²H²/(6m²):

    f = −(I + h²H²/(6m²)) ∇Ẽ₂ + R,   R = h³(1+β)H³g/(12m⁵) + c h⁴ H²∇(gᵀHg)/(6m²),
    c = (1+10β+β²)/(12m⁵),  ∇(gᵀHg) = 2H²g + T[g, g],

exactly (R collects the products of the metric's h² with ∇Ẽ₂'s h¹ and h² terms). f₂ itself is
not a Euclidean gradient ((T89)); the metric absorbs its rotational part −H²g/(6m³).

- :func:`etilde2`, :func:`etilde2_grad`: Ẽ₂ and its gradient (closed form from g, H, T);
- :func:`metric_field`: −(I + h²H²/(6m²))∇Ẽ₂;
- :func:`remainder`: R above, so that flow3_field − metric_field − R = 0 to rounding;
- :func:`limit_orders`: GD+M's limit point (from rest) against the limit of the metric
  flow of Ẽ₂ from the rest-offset start x₀ + Δ₂ ((T94)), over the ε grid of
  ``orders.higher.limits`` (expected order 3; from x₀ without the offset, 2).
"""

from __future__ import annotations

import math

import numpy as np

from . import flows as F
from .problems import Problem, TwoFactor


def _coeffs(beta, h):
    m = 1.0 - float(beta)
    return m, (1.0 + beta) * h / (4.0 * m**3), (1.0 + 10.0 * beta + beta * beta) * h * h / (12.0 * m**5)


def etilde2(problem: Problem, x, beta: float, h: float):
    """Ẽ₂(x) = E/m + (1+β)h‖g‖²/(4m³) + (1+10β+β²)h² gᵀHg/(12m⁵) (docs/modified_flows.md §7.2)."""
    m, a1, a2 = _coeffs(beta, h)
    g = problem.grad(x)
    return problem.loss(x) / m + a1 * np.sum(g * g, axis=-1) + a2 * np.sum(g * problem.hvp(x, g), axis=-1)


def _grad_gHg(problem: Problem, x, g, Hg):
    """∇(gᵀHg) = 2H²g + T[g, g]."""
    out = 2.0 * problem.hvp(x, Hg)
    return out if problem.third_vanishes else out + problem.third(x, g, g)


def etilde2_grad(problem: Problem, x, beta: float, h: float):
    """∇Ẽ₂ = g/m + (1+β)h Hg/(2m³) + (1+10β+β²)h² (2H²g + T[g, g])/(12m⁵)."""
    m, a1, a2 = _coeffs(beta, h)
    g = problem.grad(x)
    Hg = problem.hvp(x, g)
    return g / m + 2.0 * a1 * Hg + a2 * _grad_gHg(problem, x, g, Hg)


def metric_field(problem: Problem, x, beta: float, h: float):
    """−(I + h²H²/(6m²)) ∇Ẽ₂: the gradient flow of Ẽ₂ in the metric (I + h²H²/(6m²))⁻¹."""
    m = 1.0 - float(beta)
    d = etilde2_grad(problem, x, beta, h)
    return -(d + h * h / (6.0 * m * m) * problem.hvp(x, problem.hvp(x, d)))


def remainder(problem: Problem, x, beta: float, h: float):
    """R = flow (3)'s field − :func:`metric_field`, exactly: h³(1+β)H³g/(12m⁵) + c h⁴ H²∇(gᵀHg)/(6m²)."""
    m, _, a2 = _coeffs(beta, h)
    g = problem.grad(x)
    Hg = problem.hvp(x, g)
    H3g = problem.hvp(x, problem.hvp(x, Hg))
    gg = _grad_gHg(problem, x, g, Hg)
    return h**3 * (1.0 + beta) * H3g / (12.0 * m**5) + a2 * h * h / (6.0 * m * m) * problem.hvp(x, problem.hvp(x, gg))


def identity_residual(problem: Problem, x, beta: float, h: float) -> float:
    """max |flow3_field − metric_field − R| / max |flow3_field| at the points ``x`` (rounding
    if the identity holds)."""
    f = F.flow3_field(problem, x, beta, h, h * h, h * h)
    r = f - metric_field(problem, x, beta, h) - remainder(problem, x, beta, h)
    return float(np.max(np.abs(r)) / np.max(np.abs(f)))


def limit_orders(*, problem: TwoFactor, x0, beta: float, eps, time: float, gtol: float) -> dict:
    """GD+M's limit from rest against the limit of the metric flow of Ẽ₂ started at
    x₀ + Δ₂ (the rest offset, (T94)) and at x₀, over the ε grid: η = ε(1−β)/λ_max(∇²E(x₀)),
    h = η(1−β), ⌈time/min η⌉ heavy-ball steps (as orders.higher.limits). Returns h, the
    errors ‖x_flow − x_GD+M‖ of both starts, the GD+M gradient norms at the end and whether
    every flow converged (‖field‖ < gtol), and the limits of the shifted start."""
    x0 = np.asarray(x0, dtype=np.float64)
    s0 = float(problem.sharpness(x0))
    eps = np.asarray(eps, dtype=np.float64)
    eta = eps * (1.0 - beta) / s0
    h = eta * (1.0 - beta)
    steps = int(math.ceil(float(time) / float(np.min(eta))))
    W = F.heavy_ball_two_factor_final(problem, np.tile(x0, (len(h), 1)), np.full(len(h), beta), h, steps)
    errs = {"shifted": np.full(len(h), np.nan), "x0": np.full(len(h), np.nan)}
    limits = np.full((len(h), x0.size), np.nan)
    conv = True
    for i, hh in enumerate(h):
        starts = {"shifted": x0 + F.rest_offset2(problem, x0, beta, np.array([hh]))[0], "x0": x0}
        for k, st in starts.items():
            res = F.solve_flow(
                lambda w, hh=hh: -metric_field(problem, w, beta, hh),
                st[None, :],
                float(steps * hh),
                gtol=gtol,
                method="LSODA",
                rtol=1e-12,
                atol=1e-14,
            )
            conv = conv and bool(res["converged"])
            errs[k][i] = float(np.linalg.norm(res["w"][0] - W[i]))
            if k == "shifted":
                limits[i] = res["w"][0]
    return {
        "h": h,
        "eps": eps,
        "error_shifted": errs["shifted"],
        "error_x0": errs["x0"],
        "limit_shifted": limits,
        "gnorm_gdm": np.sqrt(problem.grad_norm2(W)),
        "converged": conv,
    }
