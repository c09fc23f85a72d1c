"""Heavy ball's modified flows to any order (igrm.order_r_flows, igrm.order_r_study;
docs/modified_flows.md §8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy as sp

from igrm import modified_series as MS
from igrm import order_r_coefficients as TAB
from igrm import order_r_flows as T
from igrm.order_r_study import order_r_error_orders
from igrm.orders import loglog_slope

b = T.beta
LEAF = ()
HG, HHG, TGG = ((),), (((),),), ((), ())


def test_trees_are_counted_as_rooted_trees():
    assert [len(T.trees(n)) for n in range(1, 7)] == [1, 1, 2, 4, 9, 20]  # OEIS A000081
    assert all(T.nodes(t) == n for n in range(1, 6) for t in T.trees(n))


def test_generated_table_is_current():
    """The committed table is what the generator writes now (regenerate: python -c
    'from igrm.order_r_flows import generated_table_source as g; print(g(), end="")')."""
    path = Path(T.__file__).with_name("order_r_coefficients.py")
    assert path.read_text() == T.generated_table_source()
    for t, row in TAB.FLOW.items():
        assert sp.simplify(T.table_coefficient(row, T.nodes(t)) - T.derive_flow(5)[t]) == 0


def test_orders_1_to_3_equal_flows_1_2_3():
    """R = 1, 2, 3: flow (1), flow (2) (T5), (T6) and the O(h³) flow of the 1-D derivation (T87)."""
    a = T.gradient_coefficients(T.derive_flow(3))
    old = MS.gradient_form()
    assert sp.simplify(a[LEAF] - old["g"]) == 0 and sp.simplify(a[LEAF] + 1 / (1 - b)) == 0
    # flow (2): −(1/m)(g + 2λ Hg), λ = (1+β)h/(4m²)
    assert sp.simplify(a[HG] + 2 * (1 + b) / (4 * (1 - b) ** 2) / (1 - b)) == 0
    assert sp.simplify(a[HHG] - old["HHg"]) == 0
    assert sp.simplify(a[TGG] - old["Tgg"]) == 0
    assert sp.simplify(a[TGG] + (1 + 10 * b + b**2) / (12 * (1 - b) ** 5)) == 0
    assert sp.simplify(a[HHG] + (1 + 4 * b + b**2) / (3 * (1 - b) ** 5)) == 0
    s = T.gradient_coefficients(T.derive_start(3))
    old_s = MS.derive_slow_start()
    for t, k in ((LEAF, "g"), (HG, "Hg"), (HHG, "HHg"), (TGG, "Tgg")):
        assert sp.simplify(s[t] - old_s[k]) == 0


def test_beta_zero_is_gradient_descents_series():
    """β = 0: −g − h Hg/2 − h²(H²g/3 + T[g,g]/12) (Barrett & Dherin's h/2, (T87)'s β = 0) and
    the chains (H^{n−1}g) carry −1/n (log(1 − hλ)/h, the linear GD series)."""
    a = {t: c.subs(b, 0) for t, c in T.gradient_coefficients(T.derive_flow(5)).items()}
    assert a[LEAF] == -1 and a[HG] == sp.Rational(-1, 2)
    assert a[HHG] == sp.Rational(-1, 3) and a[TGG] == sp.Rational(-1, 12)
    chains = [t for t in a if T.is_chain(t)]
    assert sorted(a[t] for t in chains) == sorted(sp.Rational(-1, T.nodes(t)) for t in chains)


def test_chains_are_the_slow_root_series_and_binomial_squares():
    """The chain coefficients equal the exact linear series log r₁(z) (T90), an independent
    recursion, and have numerators Σ_k C(n−1,k)² β^k."""
    a = T.gradient_coefficients(T.derive_flow(5))
    lin = MS.slow_root_log_series(5)
    chain = LEAF
    for n in range(1, 6):
        assert sp.simplify(a[chain] - lin[n - 1]) == 0
        closed = -sum(sp.binomial(n - 1, k) ** 2 * b**k for k in range(n)) / (n * (1 - b) ** (2 * n - 1))
        assert sp.simplify(a[chain] - closed) == 0
        chain = (chain,)


def test_recursion_residual_vanishes_in_2d_and_an_ablation_does_not():
    """On a 2-D cubic where H and T[g] do not commute, the order-4 field satisfies heavy ball's
    recursion to O(h⁴) by plain Jacobian products (no trees); dropping one 4-node tree leaves a
    residual at h³."""
    x1, x2 = sp.symbols("x1 x2")
    E = x1**3 / 3 + x1 * x2**2 / 2 + x2**2 / 2
    bv = sp.Rational(4, 5)
    res = T.recursion_residual(E, (x1, x2), 4, bv)
    assert all(e == 0 for M in res for e in M)
    h = sp.Symbol("h")
    drop = (((), ((),)),)
    field = T.flow_expression(E, (x1, x2), 4, h, bv, drop=drop)
    res = T.recursion_residual(E, (x1, x2), 4, bv, field=field)
    assert all(e == 0 for M in res[:3] for e in M)
    assert any(e != 0 for e in res[3])


def test_start_is_the_backward_flow():
    """x_{−1} (M20) against a DOP853 backward solve of the order-4 flow over [0, −h] on the
    two-factor toy: the gap falls like h⁵ (≥ 20× per halving)."""
    from igrm.order_r_study import compiled_fields
    from igrm.problems import TwoFactor

    p = TwoFactor()
    fields = compiled_fields(p, 4, 0.8)
    x0 = np.array([[2.8, 3.4]])
    gaps = []
    for hh in (2e-4, 1e-4):
        hv = np.array([hh])
        from scipy.integrate import solve_ivp

        sol = solve_ivp(
            lambda t, y: fields["flow"](y[None], hv)[0], (0, -hh), x0[0], method="DOP853", rtol=1e-13, atol=1e-15
        )
        gaps.append(np.linalg.norm(x0[0] + fields["start"](x0, hv)[0] - sol.y[:, -1]))
    assert gaps[0] / gaps[1] > 20


@pytest.fixture(scope="module")
def lstsq_orders():
    return order_r_error_orders(
        problem="lstsq",
        beta=0.8,
        orders=[1, 2, 3, 4, 5],
        h_grid={"min": 0.02, "max": 0.08, "num": 4, "units": "eps"},
        rtol=2.5e-14,
        atol=2.5e-14,
        check_factor=10.0,
        floor_factor=100.0,
        precise_step=2.5e-4,
        two_factor={},
        sigmoid={},
        lstsq={"dim": 3, "n": 6, "cond": 4.0, "seed": 0, "init_seed": 1, "init_scale": 1.0, "T": 1.0},
    )


@pytest.mark.parametrize("R", [1, 2, 3, 4, 5])
def test_order_r_on_least_squares(lstsq_orders, R):
    """Global error of GD+M vs the order-R flow falls as h^R (the reference floor 100× below);
    the ablation (no f_{R−1}) only as h^{R−1}."""
    arrays, _ = lstsq_orders
    ri = list(arrays["orders"]).index(R)
    err, ref = arrays["errors"][ri], arrays["reference_error"][ri]
    slope, _, _ = loglog_slope(arrays["h"], err[0])
    assert abs(slope - R) < 0.15
    assert np.all(ref[0] * 100 < err[0]) and arrays["reference_method"][ri] == "DOP853"  # no escalation needed
    if R > 1:
        abl, _, _ = loglog_slope(arrays["h"], err[1])
        assert abs(abl - (R - 1)) < 0.15
    else:
        assert np.all(np.isnan(err[1]))
    # heavy ball vs gradient descent on its order-R modified loss (M23): O(h^R) too
    gd, _, _ = loglog_slope(arrays["h"], arrays["gd_errors"][ri])
    assert abs(gd - R) < 0.15


def test_order_3_is_a_gradient_flow_in_a_hessian_metric():
    """R = 3: f = −(I + μ₁hH + μ₂h²H²)∇Ẽ₂ has solutions on two losses at once, among them
    μ₁ = 0, μ₂ = 1/(6m²) (issue 22's metric); f₂ alone is not a Euclidean gradient (T89)."""
    from igrm import order_r_losses as L

    curls = L.euclidean_curls(3)
    assert curls[0] == 0 and curls[1] == 0 and curls[2] != 0
    r = L.gradient_flow_test(3)
    assert r["solvable"]
    mu1, mu2 = r["mu"]
    (c,) = mu1.free_symbols
    (c0,) = sp.solve(mu1, c)
    m = sp.Rational(1, 5)
    assert sp.simplify(mu2.subs(c, c0) - 1 / (6 * m**2)) == 0
    # its claim rows (§8.4, our finding): R = 3 reproduces and names issue 22's metric; the
    # curl rows follow the curls; an order whose conditions are inconsistent does not reproduce
    from igrm import claims
    from igrm.claims.order_r_metric import metric_rows
    from igrm.claims.summary import assign

    bad = {"solvable": False, "mu": [sp.Rational(45, 241), sp.Symbol("mu2")], "orders": [(1, True), (2, False)]}
    rows = metric_rows({3: r, 5: bad}, curls)
    verdicts = [x["verdict"] for x in rows]
    assert verdicts == [claims.REPRODUCES, claims.FAILS, claims.REPRODUCES, claims.REPRODUCES, claims.FAILS]
    assert rows[0]["id"] == "order/any_order_metric/test_losses/beta0.8/metric/flow_order3"
    assert "contains mu1 = 0, mu2 = 1/(6m^2)" in rows[0]["detail"] and rows[0]["detail"].endswith("yes")
    assert "h^2 INCONSISTENT" in rows[1]["detail"] and rows[4]["measured"] > 0
    assert set(assign(pd.Series([x["id"] for x in rows]))) == {"any-order-metric"}


def test_heavy_ball_is_gradient_descent_on_a_modified_loss_to_order_4():
    """(M23): on a 2-D quartic with [H, T[g]] ≠ 0 every order through h³ closes (the field to
    integrate is curl-free); that GD on the loss found tracks heavy ball to O(h^R) is
    test_order_r_on_least_squares (numerically) and docs/modified_flows.md §8.5 (two-factor)."""
    from igrm import order_r_losses as L

    E = L.TEST_LOSSES[0]
    Et, curls = L.modified_loss(E, (L.X1, L.X2), 4, L.TEST_BETA)
    assert Et is not None and all(c == 0 for c in curls)
    # leading correction Ẽ₁ = β‖g‖²/(2m³): with GD's own h‖∇Ẽ‖²/4 it makes flow (2)
    h, b = sp.Symbol("h"), L.TEST_BETA
    g = [sp.diff(E, v) for v in (L.X1, L.X2)]
    assert sp.expand(Et.coeff(h, 1) - b * (g[0] ** 2 + g[1] ** 2) / (2 * (1 - b) ** 3)) == 0


def test_limit_sharpness_error_falls_as_h_to_the_r():
    """(M24): on the two-factor toy, GD+M's limit sharpness against the order-R flow's limit
    differs by O(h^R) (R = 1, 2, 3; β = 0.5), and each order is more accurate than the last."""
    from igrm.order_r_limits import limit_sharpness_any_order

    arrays, attrs = limit_sharpness_any_order(
        betas=[0.5], eps=[0.02, 0.04, 0.08], range_eps=[0.08, 0.16], range_tol=1e-3, time=10.0,
        gtol=1e-13, rtol=2.5e-14, atol=2.5e-14, check_factor=10.0, orders=[1, 2, 3],
        two_factor={"x": 1.0, "y": 0.6, "init": [2.8, 3.4]},
    )  # fmt: skip
    assert attrs["flows_converged"]
    # the longdouble heavy ball agrees with the compiled float64 loop (an independent code) to
    # float64's drift, far under the errors
    assert attrs["gdm_float64_gap_max"] < 1e-9 < np.min(arrays["errors"])
    fit = arrays["fitted"]
    assert list(arrays["eps"][fit]) == [0.02, 0.04, 0.08] and list(arrays["eps"][arrays["in_range"]]) == [0.08, 0.16]
    for ri, R in enumerate((1, 2, 3)):
        slope, _, _ = loglog_slope(arrays["h"][fit], arrays["errors"][ri, fit])
        assert abs(slope - R) < 0.2
    assert np.all(np.diff(arrays["errors"], axis=0) < 0)
    # the floor (M26) is the sum of its three gaps, each measured, and lies far under the old
    # LSODA reference's (a 100x looser rerun: ~1e-9 relative, docs §8.6)
    parts = ("reference_error_tol", "reference_error_gtol", "reference_error_gdm")
    assert np.allclose(arrays["reference_error"], sum(arrays[k] for k in parts))
    assert np.all(arrays["reference_error_tol"] > 0) and np.max(arrays["reference_error"]) < 1e-12
    # its claim rows: part any_order, expected slope R, fitted on the fitted grid only
    from igrm.claims.order_r_range import range_claims
    from igrm.claims.orders import order_claims
    from igrm.tidy.orders import orders_tables

    errors, slopes = orders_tables([(arrays, attrs)])
    rows = order_claims(slopes, slope_tol=0.15, ci=0.95, max_epsilon=0.25, floor_factor=100)
    assert list(rows["id"]) == [f"order/any_order/two_factor/beta0.5/limit_slow/flow_order{R}" for R in (1, 2, 3)]
    assert np.allclose(rows["detail"].str.extract(r"eps = hL0/\(1-beta\)\^2 <= ([0-9.]+)")[0].astype(float), 0.08)
    found = range_claims(errors, range_tol=1e-3)
    assert len(found) == 2 and set(found["verdict"]) == {"out of range"}
    assert list(rows["expected"].astype(float)) == [1.0, 2.0, 3.0]
    # and they belong to one paper claim of the summary (an unassigned row id is an error there)
    from igrm.claims.summary import assign

    assert set(assign(rows["id"])) == {"any-order"} and set(assign(found["id"])) == {"any-order"}


def test_range_of_validity_finding_rows():
    """(M27) on constructed errors: the largest ε where some order meets the declared accuracy
    (at every ε up to it), the first ε where one more order does not help (a gain inside the
    floor does not count), and their finding rows (verdict "out of range", ids .../out_of_range)."""
    import pandas as pd

    from igrm.claims.order_r_range import range_claims
    from igrm.order_r_limits import range_of_validity

    eps = np.array([0.25, 0.08, 0.12, 0.16])  # unsorted on purpose
    err = np.array([[5e-2, 1e-2, 2e-2, 3e-2], [2e-2, 1e-4, 5e-4, 2e-3], [3e-2, 1e-5, 4e-4, 1e-3]])
    ref = np.full_like(err, 1e-14)
    f = range_of_validity(eps, err, ref, [1, 2, 3], 1e-3)
    assert (f["accurate_eps"], f["accurate_order"]) == (0.16, 3) and f["eps_max"] == 0.25
    assert (f["stop_eps"], f["stop_order"]) == (0.25, 3) and f["min_gain"] == pytest.approx(2 / 3)
    # the order-3 error at 0.25 inside its floor: that gain does not count, nothing stops
    ref[2, 0] = 1.0
    g = range_of_validity(eps, err, ref, [1, 2, 3], 1e-3)
    assert np.isnan(g["stop_eps"]) and (g["min_gain"], g["min_gain_eps"]) == (pytest.approx(1.25), 0.12)
    # a gap: meets 1e-4 at 0.08 only, not at 0.12 (so not at 0.25 either)
    assert range_of_validity(eps, err, ref, [1, 2, 3], 1e-4)["accurate_eps"] == 0.08
    assert np.isnan(range_of_validity(eps, err, ref, [1, 2, 3], 1e-6)["accurate_eps"])
    rows = [
        {"problem": "two_factor", "beta": 0.9, "comparison": "limit_slow", "window": w, "flow": f"order-{R} flow",
         "eps": e, "error": err[R - 1, j], "reference_error": 1e-14}
        for w in ("range", "all") for R in (1, 2, 3) for j, e in enumerate(eps)
    ]  # fmt: skip
    found = range_claims(pd.DataFrame(rows), range_tol=1e-3)
    assert list(found["id"]) == [
        "order/any_order/two_factor/beta0.9/limit_range/accurate/out_of_range",
        "order/any_order/two_factor/beta0.9/limit_range/ladder_stops/out_of_range",
    ]
    assert list(found["measured"]) == [0.16, 0.25] and set(found["verdict"]) == {"out of range"}
    assert "order 3: δ_R ≥ δ_(R−1)" in found["detail"].iloc[0]


def test_claim_rows_check_the_reference_floor():
    """An any-order row whose reference floor is not floor_factor × under its errors at every h
    is inconclusive, its ablation's loses_order row too, the reason in the detail; the same
    curves with a floor 1000× under reproduce; a row of the paper's part is never floored
    (docs/modified_flows.md §8.2)."""
    from igrm import claims
    from igrm.claims.orders import order_claims
    from igrm.orders import fit_slopes, flow_labels

    h = np.geomspace(1e-3, 8e-3, 6)
    wobble = 1 + 0.01 * np.sin(np.arange(6))

    def curves(ratio):
        rows = []
        for comp, flow, p in (
            ("order_r", flow_labels(5)[0], 5),
            ("order_r", flow_labels(5)[1], 4),
            ("manifold", "flow (2)", 2),
        ):
            err = h**p * wobble
            for j in range(6):
                rows.append(
                    {"problem": "sigmoid", "beta": 0.5, "comparison": comp, "flow": flow, "window": "all",
                     "h": h[j], "eps": 0.01 * (j + 1), "error": err[j], "reference_error": err[0] / ratio}
                )  # fmt: skip
        return fit_slopes(pd.DataFrame(rows))

    judged = order_claims(curves(1000.0), slope_tol=0.15, ci=0.95, max_epsilon=0.25, floor_factor=100)
    floored = order_claims(curves(59.0), slope_tol=0.15, ci=0.95, max_epsilon=0.25, floor_factor=100)
    assert list(judged["id"]) == list(floored["id"]) and len(judged) == 4  # flow, ablation, loses_order, manifold
    assert set(judged["verdict"]) == {claims.REPRODUCES}
    anyorder = floored["id"].str.startswith("order/any_order/")
    assert set(floored.loc[anyorder, "verdict"]) == {claims.INCONCLUSIVE}
    assert floored.loc[anyorder, "detail"].str.contains("NOT JUDGED: the reference floor is only 59x").all()
    assert set(floored.loc[~anyorder, "verdict"]) == {claims.REPRODUCES}
    # the factor is the declared one, not a constant: at 50 the 59× floor passes
    relaxed = order_claims(curves(59.0), slope_tol=0.15, ci=0.95, max_epsilon=0.25, floor_factor=50)
    assert set(relaxed["verdict"]) == {claims.REPRODUCES}


def test_longdouble_rk4_reference_beats_float64():
    """igrm.precise_flow (M25): rationals compile to longdouble quotients (a float64 1/3 is off
    by ~1e−17); RK4 on heavy ball's grid falls 16× per halved step and, on x' = −x/3, reaches
    errors under float64's unit roundoff that no float64 integrator could show."""
    from igrm import precise_flow as P

    x, hs = sp.symbols("x h")
    f = P.lambdify_longdouble((x, hs), [-sp.Rational(1, 3) * x])
    third = f(np.ones(1, dtype=P.LD), np.ones(1, dtype=P.LD))[0]
    assert third[0] == -P.LD(1) / P.LD(3) and third[0] != -np.float64(1 / 3)

    def field(Y, hh):
        return np.stack([np.asarray(c, dtype=P.LD) for c in f(Y[:, 0], hh)], axis=-1)

    h, n = np.array([0.02, 0.05]), np.array([50, 20])  # both lanes to t = 1
    exact = [np.exp(-np.arange(k + 1, dtype=P.LD) * P.LD(hj) / 3) for hj, k in zip(h, n)]
    err = []
    for m in (2, 4, 128):
        Y = P.rk4_on_grid(field, np.ones((2, 1)), h, n, np.array([m, m]))[..., 0]
        err.append([np.abs(Y[: k + 1, j] - exact[j]).max() for j, k in enumerate(n)])
    err = np.array(err, dtype=np.float64)
    assert np.all(np.abs(np.log2(err[0] / err[1]) - 4) < 0.1)
    assert np.all(err[2] < 1e-17)
    assert np.all(P.substeps(h, 0.015) == [2, 4]) and np.all(P.substeps(h, 0.003) % 2 == 0)


def _eulerian(n: int) -> list[int]:
    """Eulerian numbers A(n, m), m = 0..n−1, by their recurrence (independent of igrm)."""
    a = [1]
    for k in range(2, n + 1):
        a = [(m + 1) * (a[m] if m < len(a) else 0) + (k - m) * (a[m - 1] if m >= 1 else 0) for m in range(k)]
    return a


def _narayana(n: int) -> list[int]:
    """Narayana numbers N(n, k) = C(n,k) C(n,k−1)/n, k = 1..n."""
    from math import comb

    return [comb(n, k) * comb(n, k - 1) // n for k in range(1, n + 1)]


def test_slow_manifold_holds_eulerian_and_narayana_polynomials():
    """The published statement (Cattaneo & Shigida 2025, arXiv 2509.08483, abstract): heavy
    ball's memoryless approximation hides Eulerian and Narayana polynomials in β. In the
    generated slow start (M20), x₋₁ − x₀ = Σ s(τ) h^|τ| F(τ): on the bushes F^(k)[F,…,F]
    s = (−1)^(k+1) A_k(β)/(k! (1−β)^(2k+1)), on the chains (F')^(n−1)F s = (−1)^n
    N_(n−1)(β)/(1−β)^(2n−1), for every such tree of the table (|τ| ≤ 5)."""
    from math import factorial

    from igrm.order_r_coefficients import START

    for k in range(1, 5):
        assert START[((),) * k] == (factorial(k), tuple((-1) ** (k + 1) * c for c in _eulerian(k)))
    chain = ((),)
    for n in range(2, 6):
        assert START[chain] == (1, tuple((-1) ** n * c for c in _narayana(n - 1)))
        chain = (chain,)
    assert _eulerian(4) == [1, 11, 11, 1] and _narayana(4) == [1, 6, 6, 1]  # the textbook rows
