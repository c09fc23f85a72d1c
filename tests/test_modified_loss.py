"""igrm.modified_loss: the O(h³) flow of GD+M as the gradient flow of Ẽ₂ in the metric
(I + h²H²/(6(1−β)²))⁻¹ (docs/modified_flows.md §7.2), verified symbolically (SymPy: the
flow from the SymPy derivation, Ẽ₂ differentiated by SymPy) and numerically on both toy
problems; GD+M's limit from Ẽ₂'s metric flow, with its error order."""

import numpy as np
import pytest
import sympy as sp

from igrm import flows as F
from igrm.modified_loss import etilde2, etilde2_grad, identity_residual, limit_orders, metric_field, remainder
from igrm.modified_series import beta, gradient_form, h
from igrm.problems import LeastSquares, TwoFactor


def test_metric_identity_symbolically():
    """On a 2-D quartic whose H and T[g] do not commute, β = 4/5 exact and h symbolic: the flow of
    the SymPy derivation (modified_series.gradient_form) minus −(I + h²H²/(6m²))∇Ẽ₂ (∇ by
    SymPy) is exactly the remainder R = h³(1+β)H³g/(12m⁵) + c h⁴H²∇(gᵀHg)/(6m²), so it has no
    h⁰, h¹, h² terms; dropping Ẽ₂'s h² term leaves an h² residual (the check can fail)."""
    x1, x2 = sp.symbols("x1 x2")
    X = sp.Matrix([x1, x2])
    E = x1**4 / 4 + x1 * x2**2 + x2**3 / 3 + x1**2 * x2 / 2
    g = sp.Matrix([sp.diff(E, v) for v in (x1, x2)])
    H = g.jacobian(X)
    T = sp.Matrix(
        [(sp.Matrix([[sp.diff(E, a, b_, c_) for c_ in (x1, x2)] for b_ in (x1, x2)]) * g).dot(g) for a in (x1, x2)]
    )
    bv = sp.Rational(4, 5)
    a = {k: sp.sympify(v).subs(beta, bv) for k, v in gradient_form().items()}
    f = a["g"] * g + h * a["Hg"] * (H * g) + h**2 * (a["HHg"] * (H * H * g) + a["Tgg"] * T)
    m = 1 - bv
    gHg = sp.expand((g.T * H * g)[0])
    c = (1 + 10 * bv + bv**2) / (12 * m**5)
    M = sp.eye(2) + h**2 * H * H / (6 * m**2)
    for keep_h2, expect_zero in ((1, True), (0, False)):
        E2 = E / m + (1 + bv) * h * g.dot(g) / (4 * m**3) + keep_h2 * c * h**2 * gHg
        grad = sp.Matrix([sp.diff(E2, v) for v in (x1, x2)])
        diff = (f + M * grad).applyfunc(sp.expand)
        if expect_zero:
            R = h**3 * (1 + bv) * H**3 * g / (12 * m**5) + c * h**4 * H * H * sp.Matrix(
                [sp.diff(gHg, v) for v in (x1, x2)]
            ) / (6 * m**2)
            assert all(sp.expand(e) == 0 for e in (diff - R))
        assert all(e.coeff(h, 2) == 0 for e in diff) == expect_zero
        for k in (0, 1):
            assert all(e.coeff(h, k) == 0 for e in diff)


@pytest.mark.parametrize("problem", [TwoFactor(x=1.0, y=0.6), LeastSquares.random(dim=5, n=20, cond=10.0, seed=0)])
def test_metric_identity_numerically_to_rounding(problem):
    """flows.flow3_field − metric_field − remainder vanishes to rounding at random points of
    both toy problems (β = 0.5, 0.9; h up to 0.05); the closed-form ∇Ẽ₂ equals central
    differences of Ẽ₂; fixed points: metric_field vanishes exactly where ∇Ẽ₂ does."""
    rng = np.random.default_rng(1)
    Xs = rng.normal(size=(40, problem.dim))
    for b in (0.5, 0.9):
        for hh in (1e-3, 5e-2):
            assert identity_residual(problem, Xs, b, hh) < 1e-13
            d = 1e-6
            fd = np.stack(
                [
                    (etilde2(problem, Xs + d * e, b, hh) - etilde2(problem, Xs - d * e, b, hh)) / (2 * d)
                    for e in np.eye(problem.dim)
                ],
                axis=-1,
            )
            np.testing.assert_allclose(etilde2_grad(problem, Xs, b, hh), fd, rtol=1e-6, atol=1e-6)
    # a minimiser of E is a stationary point of Ẽ₂ and a fixed point of flow (3)
    if isinstance(problem, TwoFactor):
        w = np.array([[1.5, 0.6 / 1.5]])
        assert np.abs(etilde2_grad(problem, w, 0.9, 0.05)).max() < 1e-14
        assert np.abs(F.flow3_field(problem, w, 0.9, 0.05, 0.05**2, 0.05**2)).max() < 1e-14
        assert np.abs(remainder(problem, w, 0.9, 0.05)).max() < 1e-14


def test_gdm_limit_from_the_metric_flow_of_etilde2_has_order_three():
    """GD+M from rest on the two-factor toy converges to the limit of Ẽ₂'s metric flow
    started at x₀ + Δ₂ with error O(h³) (fitted slope 3 ± 0.15), and from x₀ with O(h²)
    (the rest offset (T94) moves the limit at O(h²))."""
    p = TwoFactor(x=1.0, y=0.6)
    r = limit_orders(problem=p, x0=np.array([2.8, 3.4]), beta=0.5, eps=[0.02, 0.04, 0.08], time=20.0, gtol=1e-10)
    assert r["converged"] and np.all(r["gnorm_gdm"] < 1e-9)
    s3 = np.polyfit(np.log(r["h"]), np.log(r["error_shifted"]), 1)[0]
    s2 = np.polyfit(np.log(r["h"]), np.log(r["error_x0"]), 1)[0]
    assert abs(s3 - 3) < 0.15 and abs(s2 - 2) < 0.15
    assert np.all(np.abs(metric_field(p, r["limit_shifted"], 0.5, r["h"][:, None])) < 1e-8)
