"""Toy stage on small configs (igrm.toy; its tidy tables, figures and claims in igrm.tidy.toy,
igrm.figures.toy, igrm.claims.toy), and the ODE flows against exact solutions."""

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import expm

from igrm import toy
from igrm.claims import COLUMNS, OUT_OF_RANGE, row
from igrm.claims.toy import convergence_slope, in_range, toy_claims
from igrm.figures.style import save
from igrm.figures.toy import plot_sharpness_sweep, plot_sigmoid, plot_two_factor
from igrm.flows import solve_flow
from igrm.pipeline.config import num, schema_defaults
from igrm.pipeline.io import read_h5, write_h5
from igrm.problems import LeastSquares, SigmoidFactor, TwoFactor
from igrm.tidy.toy import tidy_finals, tidy_flows, tidy_sharpness, tidy_trajectories

# each starts from the schema's defaults of its config section (the only defaults there are)
SMALL_TWO = {
    **schema_defaults("toy/two_factor"),
    "x": 1.0,
    "y": 0.6,
    "init": [2.8, 3.4],
    "eta": 1e-2,
    "betas": [0.0, 0.5, 0.9],
    "steps": 3000,
    "record_every": 7,
}
_TF = schema_defaults("toy/two_factor")
# one job of the sweep: the section with one eta in place of its grid etas, and the two-factor
# section passed whole (rule toy_sharpness_sweep)
SMALL_SWEEP = {
    **{k: v for k, v in schema_defaults("toy/sharpness_sweep").items() if k != "etas"},
    "eta": 1e-2,
    "betas": [0.0, 0.3, 0.6, 0.8],
    "steps": 4000,
    "two_factor": _TF,
}
SMALL_SIG = {
    **schema_defaults("toy/sigmoid"),
    "x": 1.0,
    "y": 0.6,
    "init": [6.0, 2.0],
    "eta": 1e-2,
    "betas": [0.0, 0.9],
    "steps": 500,
    "record_every": 1,
    "flow_points": 200,
}


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    arrays, attrs = toy.simulate_two_factor(**SMALL_TWO)
    path = tmp_path_factory.mktemp("h5") / "two.h5"
    write_h5(path, arrays, attrs)
    return read_h5(path)


@pytest.fixture(scope="module")
def sweep():
    return toy.sharpness_sweep(**SMALL_SWEEP)


@pytest.fixture(scope="module")
def sig(tmp_path_factory):
    arrays, attrs = toy.simulate_sigmoid(**SMALL_SIG)
    path = tmp_path_factory.mktemp("h5") / "sig.h5"
    write_h5(path, arrays, attrs)
    return read_h5(path)


def test_lambda_and_raw_step():
    # λ = (1+β) h / (4 (1−β)²), h = η(1−β) (flow (2)); β = 0 gives IGR's h/4
    assert toy.raw_step(0.01, 0.9) == pytest.approx(0.001)
    assert toy.igr_lambda(0.01, 0.0) == pytest.approx(0.0025)
    assert toy.igr_lambda(0.001, 0.9) == pytest.approx(1.9 * 0.001 / (4 * 0.01))


def test_simulate_two_factor_shapes(two):
    a, attrs = two
    n_rec = len(a["steps"])
    assert a["steps"][0] == 0 and a["steps"][-1] == SMALL_TWO["steps"]
    assert a["w"].shape == (n_rec, 3, 2)
    assert a["final_w"].shape == (3, 2)
    np.testing.assert_allclose(a["h"], 1e-2 * (1 - np.array(SMALL_TWO["betas"])))
    np.testing.assert_array_equal(a["diverged_step"], -1)
    assert np.all(a["final_loss"] < 1e-12)
    # at a minimum λ_max of the closed-form Hessian equals x²(w1²+w2²)
    np.testing.assert_allclose(a["final_sharpness"], a["sharpness_at_min"], rtol=1e-6)
    assert attrs["problem"] == "two_factor"


def test_gradient_flow_matches_matrix_exponential():
    p = LeastSquares.random(dim=5, n=12, cond=20.0, seed=4)
    w0 = np.array([[1.0, -2.0, 0.5, 3.0, -1.0], [0.0, 0.1, 0.2, 0.3, 0.4]])
    ts = np.linspace(0, 8.0, 17)
    res = solve_flow(p.grad, w0, 8.0, t_eval=ts, rtol=1e-12, atol=1e-14, method="DOP853")
    ws = p.minimiser
    for i, t in enumerate(ts):
        exact = ws + (expm(-p.H * t) @ (w0 - ws).T).T  # x' = −H(x − x*)
        np.testing.assert_allclose(res["w_eval"][i], exact, rtol=0, atol=1e-9)


def test_flow2_on_lstsq_matches_exact_linear_flow():
    # on a quadratic, ∇(E + λ‖∇E‖²) = (I + 2λH) H (x − x*): flow (2) is linear too
    p = LeastSquares.random(dim=4, n=10, cond=5.0, seed=2)
    w0 = np.array([1.0, 2.0, -1.0, 0.5])
    beta, eta, t = 0.8, 0.1, 3.0
    lam = toy.igr_lambda(toy.raw_step(eta, beta), beta)
    res = solve_flow(
        lambda w: toy.modified_gradient(p, w, np.full(len(w), lam)),
        w0[None],
        t,
        speed=1 / (1 - beta),
        rtol=1e-12,
        atol=1e-14,
        method="DOP853",
    )
    M = (np.eye(4) + 2 * lam * p.H) @ p.H / (1 - beta)
    exact = p.minimiser + expm(-M * t) @ (w0 - p.minimiser)
    np.testing.assert_allclose(res["w"][0], exact, atol=1e-9)


def test_flow1_conserves_balance_and_reaches_predicted_sharpness():
    # gradient flow on w1 w2: d/dt (w1² − w2²) = 0, so the limit has w1² − w2² = c, w1 w2 = y/x
    # and sharpness x² (w1² + w2²) = x² sqrt(c² + 4 (y/x)²)
    p = TwoFactor()
    w0 = np.array([2.8, 3.4])
    res = toy.flow1_limit(p, w0, 10.0, gtol=1e-11)
    assert res["converged"]
    c = w0[0] ** 2 - w0[1] ** 2
    expected = np.sqrt(c**2 + 4 * 0.6**2)
    assert p.sharpness(res["w"][0]) == pytest.approx(expected, rel=1e-9)


def test_sweep_arrays_and_physics(sweep):
    a, attrs = sweep
    n = len(SMALL_SWEEP["betas"])
    for k in ("eta", "beta", "h", "sharpness_gdm", "sharpness_flow2", "sharpness_flow1", "diverged_step"):
        assert a[k].shape == (n,)
    assert a["final_w_gdm"].shape == (n, 2) and a["final_w_flow2"].shape == (n, 2)
    assert attrs["flow2_all_converged"] and attrs["flow1_converged"]
    assert np.all(a["gnorm_gdm"] < 1e-8)  # GD+M has converged too
    # physical check: GD+M limit sharpness decreases with β, and lies below flow (1)
    assert np.all(np.diff(a["sharpness_gdm"]) < 0)
    assert np.all(a["sharpness_gdm"] < a["sharpness_flow1"])
    # flow (2) is closer to GD+M than flow (1) is
    df = tidy_sharpness(a, attrs)
    assert np.all(np.abs(df["rel_err"]) < np.abs(df["rel_err_flow1"]))


def test_flow2_error_is_second_order_in_eta():
    # at β = 0 the flow-(2) error of the limit sharpness is O(η²), the flow-(1) error O(η)
    errs2, errs1 = [], []
    for eta in (0.01, 0.005):
        a, at = toy.sharpness_sweep(**{**SMALL_SWEEP, "eta": eta, "betas": [0.0], "steps": 6000})
        df = tidy_sharpness(a, at)
        errs2.append(abs(df["rel_err"].iloc[0]))
        errs1.append(abs(df["rel_err_flow1"].iloc[0]))
    assert 3.0 < errs2[0] / errs2[1] < 5.0  # ≈ 4 for O(η²)
    assert 1.5 < errs1[0] / errs1[1] < 2.5  # ≈ 2 for O(η)


def test_simulate_sigmoid_and_flows(sig):
    a, attrs = sig
    p = SigmoidFactor()
    assert a["w"].shape == (501, 2, 2)
    assert a["flow_E_w"].shape == (200, 2) and a["flow_R_w"].shape == (200, 2)
    assert a["flow_E_t"][0] == 0 and a["flow_E_t"][-1] == pytest.approx(500 * 1e-2)
    np.testing.assert_allclose(a["flow_E_w"][0], [6.0, 2.0])
    # the regulariser flow ends where ∇E = 0, on the curve of minima w1 = y/σ(w2 x)
    wR = a["flow_R_w"][-1]
    assert p.grad_norm2(wR) < 1e-12
    assert wR[0] == pytest.approx(p.minima_w1(wR[1]), rel=1e-5)
    # the E flow decreases E monotonically
    assert np.all(np.diff(p.loss(a["flow_E_w"])) <= 1e-15)


def test_tidy_frames(two, sweep, sig):
    tr = tidy_trajectories(*two, max_points=50)
    assert list(tr.columns) == ["problem", "method", "beta", "eta", "h", "step", "w1", "w2"]
    per = tr.groupby("beta")["step"].agg(["count", "min", "max"])
    assert (per["count"] <= 50).all() and (per["min"] == 0).all() and (per["max"] == 3000).all()
    assert set(tr["method"]) == {"GD", "GD+M"}
    fi = tidy_finals(*two)
    assert len(fi) == 3 and {"w1", "w2", "loss", "sharpness", "diverged_step"} <= set(fi.columns)
    sw = tidy_sharpness(*sweep)
    assert {"eta", "beta", "sharpness_gdm", "sharpness_flow2", "sharpness_flow1", "rel_err"} <= set(sw.columns)
    fl = tidy_flows(*sig)
    assert list(fl.columns) == ["problem", "flow", "t", "w1", "w2"]
    assert set(fl["flow"]) == {toy.FLOW_E, toy.FLOW_R}


def _check_files(paths):
    for p in paths:
        data = open(p, "rb").read()
        assert len(data) > 1000
        assert data[:4] == (b"%PDF" if str(p).endswith(".pdf") else b"\x89PNG")


def test_plots(tmp_path, two, sweep, sig):
    # each figure function takes only what it draws (the problem and η for the titles)
    paths = [tmp_path / "two.pdf", tmp_path / "two.png"]
    drawn = {k: SMALL_TWO[k] for k in ("x", "y", "eta")}
    save(plot_two_factor(tidy_trajectories(*two), None, **drawn), paths)
    _check_files(paths)
    save(plot_two_factor(tidy_trajectories(*two), tidy_finals(*two), **drawn), paths)
    _check_files(paths)
    paths = [tmp_path / "sw.pdf", tmp_path / "sw.png"]
    save(plot_sharpness_sweep(tidy_sharpness(*sweep)), paths)
    _check_files(paths)
    paths = [tmp_path / "sig.pdf", tmp_path / "sig.png"]
    save(plot_sigmoid(tidy_trajectories(*sig), tidy_flows(*sig), **{k: SMALL_SIG[k] for k in ("x", "y", "eta")}), paths)
    _check_files(paths)


def test_toy_claims(two, sweep):
    sw = tidy_sharpness(*sweep)
    claims_cfg = schema_defaults("toy/claims")
    cl = toy_claims(sw, tidy_finals(*two), **{**claims_cfg, "spearman_max": -0.9})
    assert list(cl.columns) == COLUMNS
    etas = sorted(sw["eta"].unique())
    ids = list(cl["id"])
    # η = 0.01, β ∈ {0, 0.3, 0.6, 0.8}: ε = 0.28, 0.40, 0.71, 1.41; β ≥ 0.6 out of range
    assert ids == (
        [f"toy/flatter_minima/eta{num(e)}" for e in etas]
        + ["toy/flow2_closer_than_flow1", "toy/flow2_closer_than_flow1/out_of_range"]
        + [
            x
            for e in etas
            for x in (f"toy/limit_matches_flow2/eta{num(e)}", f"toy/limit_matches_flow2/eta{num(e)}/out_of_range")
        ]
        + ["toy/igr_order_beta0"]
    )
    flat = cl[cl["id"].str.startswith("toy/flatter_minima")]
    assert np.allclose(flat["measured"], -1.0) and (flat["verdict"] == "reproduces").all()
    # one η only: the order of the β = 0 error cannot be fitted, and the row says so
    assert cl[cl["id"] == "toy/igr_order_beta0"]["verdict"].iloc[0] == "inconclusive"
    # the quantitative flow-(2) row measures the largest |relative error| of its in-range β
    inr = in_range(sw, claims_cfg["max_epsilon"])
    assert list(sw["beta"][inr]) == [0.0, 0.3]
    for e in etas:
        r = cl[cl["id"] == f"toy/limit_matches_flow2/eta{num(e)}"].iloc[0]
        g = sw[(sw["eta"] == e) & inr]
        assert r["measured"] == pytest.approx(np.abs(g["rel_err"]).max())
        assert r["tolerance"] == 0.02  # the default, fixed before measuring
        assert r["verdict"] == "reproduces"
        o = cl[cl["id"] == f"toy/limit_matches_flow2/eta{num(e)}/out_of_range"].iloc[0]
        assert o["verdict"] == OUT_OF_RANGE
        assert o["measured"] == pytest.approx(np.abs(sw[(sw["eta"] == e) & ~inr]["rel_err"]).max())
    # a tolerance from the config is used as given, and can fail; out-of-range rows never fail
    cl2 = toy_claims(sw, None, **{**claims_cfg, "flow2_rel_tol": 1e-9})
    lm = cl2[cl2["id"].str.startswith("toy/limit_matches")]
    assert (lm[~lm["id"].str.endswith("/out_of_range")]["verdict"] == "does not reproduce").all()
    assert (lm[lm["id"].str.endswith("/out_of_range")]["verdict"] == OUT_OF_RANGE).all()
    # a stricter max_epsilon moves points out of range: nothing judged -> inconclusive, not a failure
    cl3 = toy_claims(sw, None, **{**claims_cfg, "max_epsilon": 0.1})
    assert cl3[cl3["id"] == f"toy/limit_matches_flow2/eta{num(etas[0])}"]["verdict"].iloc[0] == "inconclusive"
    assert "does not reproduce" not in set(cl3[cl3["id"].str.contains("flow2")]["verdict"])


def test_expansion_parameter_and_real_root_bound():
    # on the hyperbola of minima λ_max = x²(w1² + w2²): at the balanced minimum (√0.6, √0.6), 1.2
    p = TwoFactor(x=1.0, y=0.6)
    w = np.array([np.sqrt(0.6), np.sqrt(0.6)])
    assert p.sharpness(w) == pytest.approx(1.2)
    # ε = h λ/(1−β)² = η λ/(1−β): η = 0.01, β = 0.75 -> h = 0.0025, ε = 0.0025·1.2/0.0625 = 0.048
    h = toy.raw_step(0.01, 0.75)
    assert toy.expansion_parameter(h, 0.75, 1.2) == pytest.approx(0.048)
    assert toy.expansion_parameter(h, 0.75, 1.2) == pytest.approx(0.01 * 1.2 / 0.25)
    assert toy.real_root_bound(0.0) == 1.0 and toy.real_root_bound(0.25) == pytest.approx(4 / 9)
    assert toy.epsilon_threshold(0.25, 0.3) == pytest.approx(0.3)
    # the bound is exactly where r² − (1+β−hλ) r + β = 0 stops having real positive roots
    for beta in (0.0, 0.5, 0.9):
        for f in (0.9, 1.1):
            hl = f * toy.real_root_bound(beta) * (1 - beta) ** 2  # hλ = ε (1−β)²
            r = np.roots([1.0, -(1 + beta - hl), beta])
            real = np.all(np.abs(r.imag) < 1e-12) and np.all(r.real >= 0)
            assert real == (f < 1), (beta, f, r)
    # the sweep's tidy table: ε from the larger of the start's and the limit's λ_max (the start here)
    a, at = toy.sharpness_sweep(**{**SMALL_SWEEP, "betas": [0.5], "steps": 2000})
    df = tidy_sharpness(a, at)
    s0 = p.sharpness(np.array([2.8, 3.4]))
    assert df["sharpness_max"].iloc[0] == pytest.approx(s0)
    assert df["epsilon"].iloc[0] == pytest.approx(0.01 * s0 / 0.5)
    assert df["epsilon_bound"].iloc[0] == pytest.approx(1 / (1 + np.sqrt(0.5)) ** 2)


def _fake_sweep(beta, eta, rel_err, s0=10.0):
    h = np.asarray(eta) * (1 - np.asarray(beta))
    return pd.DataFrame(
        {
            "eta": eta,
            "beta": beta,
            "h": h,
            "sharpness_gdm": 1.0 + np.asarray(rel_err),
            "sharpness_flow2": 1.0,
            "sharpness_flow1": 2.0,
            "rel_err": rel_err,
            "rel_err_flow1": -0.5,
            "diverged_step": -1,
            "sharpness_init": s0,
            "sharpness_max": s0,
            "epsilon": h * s0 / (1 - np.asarray(beta)) ** 2,
            "epsilon_bound": toy.real_root_bound(beta),
        }
    )


def test_out_of_range_row_is_not_a_failure():
    # β = 0.5, η = 0.01, S0 = 10: ε = 0.2 (in); η = 0.1: ε = 2 (out), with a huge error there
    sw = _fake_sweep([0.5, 0.5], [0.01, 0.1], [0.001, 0.9])
    cfg = schema_defaults("toy/claims")
    cl = toy_claims(sw, None, **cfg).set_index("id")
    assert cl.loc["toy/limit_matches_flow2/eta0.01", "verdict"] == "reproduces"
    assert cl.loc["toy/limit_matches_flow2/eta0.1", "verdict"] == "inconclusive"  # nothing in range
    o = cl.loc["toy/limit_matches_flow2/eta0.1/out_of_range"]
    assert o["verdict"] == OUT_OF_RANGE == "out of range" and o["measured"] == pytest.approx(0.9)
    assert "does not reproduce" not in set(cl["verdict"])
    with pytest.raises(ValueError):
        row("x", "c", "s", 0.0, 0.0, 0.0, "maybe")
    assert row("x", "c", "s", 0.0, 0.0, 0.0, OUT_OF_RANGE)["verdict"] == OUT_OF_RANGE


def test_convergence_slope_recovers_planted_order():
    rng = np.random.default_rng(0)
    eta = np.geomspace(1e-4, 1e-3, 5)
    for p in (1.0, 2.0):
        mis = 3.0 * eta**p * np.exp(0.01 * rng.standard_normal(eta.size))
        slope, se, n = convergence_slope(eta, -mis)  # sign of the mismatch does not matter
        assert n == 5 and abs(slope - p) < 3 * se + 1e-3 and se < 0.05
    # and the claim row: planted order 2 reproduces, planted order 1 does not
    cfg = schema_defaults("toy/claims")
    for p, verdict in ((2.0, "reproduces"), (1.0, "does not reproduce")):
        cv = _fake_sweep([0.8] * 5, eta, 50.0 * eta**p)
        cl = toy_claims(_fake_sweep([0.5], [0.01], [0.001]), None, cv, **cfg).set_index("id")
        r = cl.loc["toy/limit_convergence/beta0.8"]
        assert r["verdict"] == verdict and r["measured"] == pytest.approx(p, abs=1e-9)
        assert r["expected"] == 2.0 and r["tolerance"] == f"±{cfg['order_tol']:g} (equivalence)"
