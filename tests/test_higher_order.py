"""Beyond the paper: the O(h³) modified flow of heavy ball (igrm/modified_series.py: SymPy
derivation; igrm/flows.py: numerics; docs/theory.md (T86)–(T92), docs/modified_flows.md §7)."""

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from igrm import flows as F
from igrm import modified_series as M
from igrm import orders
from igrm.pipeline.config import schema_defaults
from igrm.problems import LeastSquares, TwoFactor

b = M.beta
x1, x2 = sp.symbols("x1 x2")
# a 2-D cubic whose Hessian and T[g] do not commute
E_POLY = x1**2 * x2 / 2 + x1 * x2 + x2**3 / 3 + x1**2 / 2


def test_derived_flow_starts_with_flows_1_and_2():
    a = M.gradient_form()
    assert sp.simplify(a["g"] + 1 / (1 - b)) == 0  # flow (1), (T5)
    lam = (1 + b) * M.h / (4 * (1 - b) ** 2)  # flow (2), (T6)
    assert sp.simplify(M.h * a["Hg"] + 2 * lam / (1 - b)) == 0
    # β = 0: the known O(h²) modified equation of gradient descent, −H²g/3 − T[g,g]/12
    assert a["HHg"].subs(b, 0) == sp.Rational(-1, 3) and a["Tgg"].subs(b, 0) == sp.Rational(-1, 12)
    for beta in (0.0, 0.5, 0.9):
        num = F.flow3_coefficients(beta)
        for k in a:
            assert num[k] == pytest.approx(float(a[k].subs(b, beta)), rel=1e-13)


def test_slow_start_matches_derivation_and_backward_flow():
    s = M.derive_slow_start()
    assert sp.simplify(s["g"] - 1 / (1 - b)) == 0 and sp.simplify(s["Hg"] - 1 / (1 - b) ** 3) == 0  # (M7)
    assert sp.simplify(s["HHg"] - (1 + b) / (1 - b) ** 5) == 0
    assert sp.simplify(s["Tgg"] - (1 + b) / (2 * (1 - b) ** 5)) == 0
    # x_{−1} = X(−h) of the O(h³) flow to O(h⁴): the gap shrinks ~16x when h halves
    p, x0, beta = TwoFactor(), np.array([1.2, 0.9]), 0.5
    gaps = []
    for h in (2e-3, 1e-3):
        back = solve_ivp(
            lambda t, y: F.flow3_field(p, y, beta, h, h * h, h * h),
            (0.0, -h),
            x0,
            method="DOP853",
            rtol=1e-13,
            atol=1e-15,
        ).y[:, -1]
        gaps.append(np.linalg.norm(F.slow_manifold_prev3(p, x0, beta, np.array([h]))[0] - back))
    assert 12 < gaps[0] / gaps[1] < 20


def test_rest_offset_to_second_order():
    # s(z) = 1 + β z/m² + β(2+β) z²/m⁴ + O(z³): the coefficients of flows.rest_offset2 (T94)
    for beta in (0.5, 0.9):
        m = 1 - beta
        for z in (1e-3 * m**2, 5e-4 * m**2):
            rem = F.rest_offset_series(beta, z) - 1 - beta * z / m**2 - beta * (2 + beta) * z**2 / m**4
            assert abs(rem) < 20 * (z / m**2) ** 3
    p, x0 = LeastSquares.random(dim=3, n=6, cond=4.0, seed=0), np.array([0.3, -1.0, 2.0])
    d = F.rest_offset2(p, x0, 0.8, np.array([1e-2]))[0]
    g = p.grad(x0)
    np.testing.assert_allclose(d, 1e-2 * 0.8 / 0.04 * g + 1e-4 * 0.8 * 2.8 / 0.0016 * p.H @ g)


def test_linear_part_is_the_slow_root_series():
    c = M.slow_root_log_series(5)
    assert sp.simplify(c[2] - M.gradient_form()["HHg"]) == 0  # T = 0: f₂ = a_HHg H²g
    # the recursion against SymPy's own series of log r₁ at β = 4/5
    bb, z = sp.Rational(4, 5), M.z
    r1 = ((1 + bb - z) + sp.sqrt((1 - bb) ** 2 - 2 * (1 + bb) * z + z**2)) / 2
    ser = sp.series(sp.log(r1), z, 0, 6).removeO()
    assert [ser.coeff(z, n) for n in range(1, 6)] == [ci.subs(b, bb) for ci in c]
    num = F.log_slow_root_coefficients(0.8, 5)
    np.testing.assert_allclose(num, [float(ci.subs(b, bb)) for ci in c], rtol=1e-12)
    zz = 1e-4
    assert np.polyval(np.r_[num[::-1], 0.0], zz) == pytest.approx(np.log(F.slow_root(0.8, zz)), rel=1e-9)


def test_flow_satisfies_recursion_in_2d_and_check_can_fail():
    for k, res in enumerate(M.check_flow_2d(E_POLY, x1, x2, sp.Rational(4, 5))):
        assert all(e == 0 for e in res), (k, res)
    wrong = dict(M.gradient_form())
    wrong["Tgg"] = 0  # the ablation: drop the third-derivative term
    res = M.check_flow_2d(E_POLY, x1, x2, sp.Rational(4, 5), coefficients=wrong)
    assert all(e == 0 for e in res[0]) and all(e == 0 for e in res[1]) and any(e != 0 for e in res[2])


def test_f2_is_not_a_gradient_field():
    asym = M.f2_jacobian_asymmetry(E_POLY, x1, x2)
    assert asym != 0
    # it is −[H, T[g]]_{12} / (6 (1−β)³) (docs/theory.md (T89))
    xs = sp.Matrix([x1, x2])
    g = sp.Matrix([sp.diff(E_POLY, v) for v in (x1, x2)])
    H = g.jacobian(xs)
    Tg = sp.Matrix(2, 2, lambda i, j: sum(sp.diff(E_POLY, xs[i], xs[j], xs[k]) * g[k] for k in range(2)))
    comm = H * Tg - Tg * H
    assert sp.simplify(asym + comm[0, 1] / (6 * (1 - b) ** 3)) == 0
    # on a quadratic loss it is a gradient field
    assert M.f2_jacobian_asymmetry(x1**2 + x1 * x2 + 3 * x2**2 - x1, x1, x2) == 0


def test_third_derivatives_against_autograd():
    torch = pytest.importorskip("torch")
    p = TwoFactor(x=1.3, y=0.6)
    rng = np.random.default_rng(0)
    w, u, v = rng.standard_normal((3, 4, 2))

    def E(wt):
        return 0.5 * (p.y - wt[0] * wt[1] * p.x) ** 2

    for i in range(4):
        wt = torch.tensor(w[i], requires_grad=True)
        ut, vt = torch.tensor(u[i]), torch.tensor(v[i])
        (g,) = torch.autograd.grad(E(wt), wt, create_graph=True)
        (Hu,) = torch.autograd.grad(g @ ut, wt, create_graph=True)
        (ref,) = torch.autograd.grad(Hu @ vt, wt)  # ∂_i (uᵀ H v) = T[u, v]_i
        np.testing.assert_allclose(p.third(w[i], u[i], v[i]), ref.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p.third(w, u, v)[1], p.third(w[1], u[1], v[1]))  # batched
    ls = LeastSquares.random(dim=3, n=6, cond=4.0, seed=0)
    assert ls.third_vanishes and not np.any(ls.third(w[0, :1].repeat(3), u[0, :1].repeat(3), v[0, :1].repeat(3)))


GRID = {"min": 0.005, "max": 0.04, "num": 4, "units": "eps"}


@pytest.fixture(scope="module")
def small_runs():
    from igrm.higher_limits import limit_sharpness_orders

    g = schema_defaults("orders/gdm")
    tf = orders.gdm3_error_orders(
        problem="two_factor",
        beta=0.5,
        h_grid=GRID,
        t_burn_fraction=g["t_burn_fraction"],
        rtol=g["rtol"],
        atol=g["atol"],
        check_factor=g["check_factor"],
        series_orders=[],
        two_factor={**g["two_factor"], "T": 0.25},
        lstsq=g["lstsq"],
    )
    lim = limit_sharpness_orders(
        betas=[0.8], eps=[0.01, 0.02, 0.04], time=20.0, gtol=1e-11, two_factor={"x": 1.0, "y": 0.6, "init": [2.8, 3.4]}
    )
    return tf, lim


def test_higher_order_figures(small_runs, tmp_path):
    from igrm.figures.orders import plot_orders_higher, plot_orders_higher_limits
    from igrm.figures.style import save
    from igrm.tidy.orders import orders_tables

    errors, slopes = orders_tables(list(small_runs))
    assert set(errors["comparison"]) == {"manifold3", "shifted3", "limit"}
    for fn, name in ((plot_orders_higher, "h"), (plot_orders_higher_limits, "l")):
        (out,) = save(fn(errors, slopes), [tmp_path / f"{name}.png"])
        assert out.stat().st_size > 1000


def test_higher_order_slopes_small_grid(small_runs):
    g = schema_defaults("orders/gdm")
    grid = GRID
    a, at = small_runs[0]
    s = {f: orders.loglog_slope(a["h"], e)[0] for f, e in zip(a["flows"], a["errors"])}
    assert abs(s["flow (2)"] - 2) < 0.15 and abs(s["flow (3)"] - 3) < 0.15
    assert s["flow (3) without T term"] < 2.5  # the ablation loses the order
    assert abs(orders.loglog_slope(a["h"], a["shifted3_errors"])[0] - 3) < 0.15  # from rest, start x_0 + Δ₂
    assert at["reference_error_max"] < 0.05 * at["min_error"]  # the DOP853 floor
    a, at = orders.series_error_orders(beta=0.5, h_grid=grid, series_orders=[1, 2, 3, 4], **g["lstsq"])
    for R, e in zip(a["orders"], a["errors"]):
        assert abs(orders.loglog_slope(a["h"], e)[0] - R) < 0.15
    assert at["reference_error_max"] < 0.1 * at["min_error"]


def test_compiled_two_factor_heavy_ball_matches_the_loop():
    tf = TwoFactor(x=1.1, y=0.6)

    class Plain(F.Problem):  # the same loss, not a TwoFactor: takes the numpy loop
        dim = 2

        def grad(self, w):
            return tf.grad(w)

    x0 = np.array([[2.8, 3.4], [1.0, 0.5], [2.8, 3.4]])
    xp = x0 + np.array([[0.0, 0.0], [0.01, -0.02], [0.0, 0.0]])
    h, n = np.array([1e-3, 2e-3, 0.2]), np.array([50, 30, 40])  # lane 3 diverges
    a = F.heavy_ball(tf, x0, xp, 0.8, h, n)
    with np.errstate(over="ignore", invalid="ignore"):
        b = F.heavy_ball(Plain(), x0, xp, 0.8, h, n)
    np.testing.assert_allclose(a[:, :2], b[:, :2], rtol=1e-14, atol=1e-14)
    assert np.isnan(a[31:, 1]).all() and not np.all(np.isfinite(a[:, 2])) and not np.all(np.isfinite(b[:, 2]))


def test_limit_sharpness_orders_small(small_runs):
    a, at = small_runs[1]
    assert at["flows_converged"] and at["gnorm_gdm_max"] < 1e-9
    s = {f: orders.loglog_slope(a["h"], e)[0] for f, e in zip(a["flows"], a["errors"])}
    assert abs(s["flow (2)"] - 2) < 0.1 and abs(s["flow (3)"] - 2) < 0.15
    assert abs(s["flow (3) from x_0 + Delta_2"] - 3) < 0.1
    # the shifted O(h³) flow predicts the limit better than flow (2) at every ε here
    assert np.all(a["errors"][2] < a["errors"][0])
    assert np.nanmax(a["reference_error"]) < 0.2 * np.nanmin(a["errors"])
