"""Error-order stage on reduced grids: simulations and slopes (igrm/orders.py), tidy tables
(igrm/tidy/orders.py), claims (igrm/claims/orders.py), figures (igrm/figures/orders.py)."""

import math

import numpy as np
import pandas as pd
import pytest

from igrm import claims, orders
from igrm.claims.orders import order_claims
from igrm.figures.orders import plot_orders_gdm, plot_orders_sgdm
from igrm.figures.style import save
from igrm.pipeline.config import schema_defaults
from igrm.pipeline.io import read_h5, write_h5
from igrm.tidy.orders import TIDY_COLUMNS, tidy_orders

TOL = 0.15  # the claims tolerance of the default config, fixed before measuring
SMALL_GRID = {"min": 0.005, "max": 0.04, "num": 4, "units": "eps"}


@pytest.fixture(scope="module")
def gdm_results():
    # one job's keywords as the pipeline builds them (rule order_gdm: the section orders.gdm,
    # its grids problems and betas replaced by the job's problem and beta), from the schema's
    # defaults of orders.gdm
    g = {k: v for k, v in schema_defaults("orders/gdm").items() if k not in ("problems", "betas")}
    out = []
    for problem, beta, over in (
        ("lstsq", 0.5, {"dim": 5, "n": 20, "cond": 10, "seed": 0, "T": 2.0}),
        ("two_factor", 0.8, {"T": 0.25}),
    ):
        cfg = {**g, "h_grid": SMALL_GRID, "problem": problem, "beta": beta, problem: {**g[problem], **over}}
        out.append(orders.gdm_error_orders(**cfg))
    return out


@pytest.fixture(scope="module")
def sgdm_result():
    s = {k: v for k, v in schema_defaults("orders/sgdm").items() if k != "betas"}
    return orders.sgdm_error_orders(**{**s, "beta": 0.5, "h_grid": SMALL_GRID, "T": 0.5, "streams": 4, "seed": 1})


@pytest.fixture(scope="module")
def tidy(gdm_results, sgdm_result):
    return pd.concat([tidy_orders(a, at) for a, at in [*gdm_results, sgdm_result]], ignore_index=True)


@pytest.fixture(scope="module")
def slopes(tidy):
    return orders.fit_slopes(tidy)


def test_gdm_arrays(gdm_results):
    arrays, attrs = gdm_results[0]
    H = 4
    assert arrays["h"].shape == (H,) and arrays["eps"].shape == (H,)
    assert arrays["errors"].shape == (4, 2, H) == arrays["errors_late"].shape == arrays["reference_error"].shape
    assert list(arrays["comparisons"]) == list(orders.COMPARISONS)
    np.testing.assert_allclose(arrays["eps"], np.geomspace(0.005, 0.04, H))
    # the reference is far more accurate than the smallest measured error
    assert attrs["reference_error_max"] < 1e-3 * attrs["min_error"]
    assert not attrs["diverged"]


def test_sgdm_arrays(sgdm_result):
    arrays, attrs = sgdm_result
    assert arrays["err_full"].shape == (4, 4) == arrays["err_noreg"].shape
    assert arrays["det_err_flow2"].shape == (4,)
    assert attrs["reference_error_max"] < 1e-3 * attrs["min_error"]


def test_primary_slopes_match_theory(slopes):
    prim = slopes[slopes["primary"]]
    # every (comparison, flow) on both problems plus SGD+M: 2 × 4 × 2 + 2 + 4
    assert len(prim) == 22
    bad = prim[(prim["slope"] - prim["expected_slope"]).abs() > TOL]
    assert bad.empty, bad[["problem", "beta", "comparison", "flow", "slope", "expected_slope"]].to_string()
    # the start matters: naive vs flow (2) is first order, shifted/manifold second order
    for prob in ("lstsq", "two_factor"):
        s = prim[(prim["problem"] == prob) & (prim["flow"] == "flow (2)")].set_index("comparison")["slope"]
        assert s["naive"] < 1.2 and s["shifted"] > 1.8 and s["manifold"] > 1.7 and s["manifold2"] > 1.8
    # SGD+M: the h/4 terms raise the order from 1 to 2
    sg = prim[prim["comparison"] == "sgdm"].set_index("flow")["slope"]
    assert sg["SGD+M flow"] > 1.8 and sg["SGD+M flow without h/4 terms"] < 1.2


def test_shifted_all_window_is_first_order(slopes):
    # the shifted flow starts O(h) away from x_0, so max over all k is the offset itself (M6)
    s = slopes[(slopes["comparison"] == "shifted") & (slopes["window"] == "all")]
    assert np.allclose(s["slope"], 1.0, atol=0.02)


def test_tidy_columns_and_h5_roundtrip(tmp_path, gdm_results, sgdm_result, tidy):
    assert list(tidy.columns) == TIDY_COLUMNS
    assert set(tidy["comparison"]) == {"naive", "manifold", "manifold2", "shifted", "sgdm", "sgdm_deterministic"}
    assert set(tidy["flow"]) == {"flow (1)", "flow (2)", "SGD+M flow", "SGD+M flow without h/4 terms"}
    sg = tidy[tidy["comparison"] == "sgdm"]
    assert sg["error_std"].notna().all() and (sg["n_streams"] == 4).all()
    # the pipeline path: write_h5 → read_h5 → tidy gives the same table
    frames = []
    for i, (a, at) in enumerate([*gdm_results, sgdm_result]):
        p = write_h5(tmp_path / f"r{i}.h5", a, at)
        frames.append(tidy_orders(*read_h5(p)))
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), tidy)


def test_fit_slopes_exact_power_law():
    h = np.geomspace(1e-3, 1e-2, 6)
    s, se, n = orders.loglog_slope(h, 3.0 * h**2)
    assert s == pytest.approx(2.0) and se < 1e-10 and n == 6
    s, se, n = orders.loglog_slope(h, np.where(h > 5e-3, np.nan, h))
    assert n == 4 and s == pytest.approx(1.0)


def test_slopes_columns(slopes):
    for c in ["problem", "beta", "comparison", "flow", "slope", "slope_se", "n_points", "expected_slope"]:
        assert c in slopes.columns
    assert (slopes["n_points"] == 4).all()
    assert slopes["expected_slope"].notna().all()


def test_order_claims(slopes):
    df = order_claims(slopes, slope_tol=TOL, ci=0.95, max_epsilon=0.25, floor_factor=100)
    assert list(df.columns) == claims.COLUMNS
    assert len(df) == int(slopes["primary"].sum())
    assert df["id"].is_unique
    assert "order/gdm/two_factor/beta0.8/shifted/flow2" in set(df["id"])
    assert "order/sgdm/two_factor/beta0.5/sgdm/sgdm_flow_noreg" in set(df["id"])
    assert set(df["verdict"]) <= set(claims.VERDICTS)
    assert (df["tolerance"] == f"±{TOL:g} (equivalence)").all()
    # a measured slope outside the tolerance is reported as not reproducing
    bad = slopes.copy()
    bad.loc[:, "slope"] = bad["expected_slope"] + 0.5
    assert set(order_claims(bad, slope_tol=TOL, ci=0.95, max_epsilon=0.25, floor_factor=100)["verdict"]) == {
        claims.FAILS
    }


def test_plots_write_files(tmp_path, tidy, slopes):
    gd = save(plot_orders_gdm(tidy, slopes), [tmp_path / "gdm.pdf", tmp_path / "gdm.png"])
    sg = save(plot_orders_sgdm(tidy, slopes), [tmp_path / "sgdm.png"])
    for p in [*gd, *sg]:
        assert p.exists() and p.stat().st_size > 1000


def test_h_grid_units():
    h, eps = orders.h_values({"min": 0.01, "max": 0.04, "num": 3, "units": "eps"}, 0.9, 2.0)
    np.testing.assert_allclose(eps, [0.01, 0.02, 0.04])
    np.testing.assert_allclose(h, eps * 0.01 / 2.0)
    h2, eps2 = orders.h_values({"min": 1e-3, "max": 4e-3, "num": 3, "units": "h"}, 0.5, 1.0)
    np.testing.assert_allclose(eps2, h2 / 0.25)
    with pytest.raises(ValueError):
        orders.h_values({"min": 1, "max": 2, "num": 2, "units": "lr"}, 0.5, 1.0)
    assert math.isnan(orders.expected_slope("naive", "no such flow"))


def test_order_claims_judged_inside_the_declared_range_only(slopes):
    """A grid reaching past min(max_epsilon, 1/(1+√β)²) is labelled 'out of range' (not a
    failure, slope still reported); a slope whose interval straddles the margin is
    inconclusive, one wholly outside it does not reproduce."""
    far = slopes.copy()
    far.loc[:, "eps_max"] = 0.5
    far.loc[:, "slope"] = far["expected_slope"] + 0.5
    df = order_claims(far, slope_tol=TOL, ci=0.95, max_epsilon=0.25, floor_factor=100)
    assert set(df["verdict"]) == {claims.OUT_OF_RANGE}
    assert df["detail"].str.contains("OUTSIDE the declared range").all()
    edge = slopes.copy()
    edge.loc[:, "slope"] = edge["expected_slope"] + TOL
    edge.loc[:, "slope_se"] = 0.02
    assert set(order_claims(edge, slope_tol=TOL, ci=0.95, max_epsilon=0.25, floor_factor=100)["verdict"]) == {
        claims.INCONCLUSIVE
    }
    assert (slopes["eps_max"] <= 0.25).all()  # the test config's grid lies inside


# ------------------------------------------------------------------ the config contract
# Entry points whose section also holds other jobs' keys; their narrowest honest contract
# (the general ones are in tests/test_contract.py).


def _keywords(func) -> set:
    import inspect

    params = inspect.signature(func).parameters
    assert all(p.default is inspect.Parameter.empty for p in params.values()), f"{func.__name__}: defaults"
    return set(params)


def test_contract_gdm3_takes_the_gdm_job_and_series_orders():
    # rule order_gdm3: the same job section as gdm_error_orders (orders/gdm, its grids replaced
    # by the job's problem and beta, which come from the grid of orders.higher), plus the one key
    # of orders.higher it uses (series_orders; the others are its grid and the limits' section)
    from tests.test_contract import schema_keys

    job = (schema_keys("orders/gdm") - {"problems", "betas"}) | {"problem", "beta"}
    assert _keywords(orders.gdm3_error_orders) == job | {"series_orders"}
    assert "series_orders" in schema_keys("orders/higher")


def test_contract_sgdm_real_takes_its_section_less_enabled():
    # rule order_sgdm_real: orders/sgdm_real for one beta; `enabled` says whether the jobs exist
    # at all (igrm.pipeline.targets.sgdm_real_files) and is not passed
    from igrm.sgdm_real import sgdm_real_error_orders
    from tests.test_contract import schema_keys

    expected = (schema_keys("orders/sgdm_real") - {"betas", "enabled"}) | {"beta"}
    assert _keywords(sgdm_real_error_orders) - {"images", "labels"} == expected


def test_contract_order_claims_takes_the_scalar_keys_of_orders():
    # rule claims_orders: slope_tol, ci, max_epsilon (each passed with lookup); the other keys of
    # orders are the sections of the simulations (gdm, sgdm, sgdm_real, higher), of which the
    # any-order study's floor_factor judges its rows too (docs/modified_flows.md §8.2)
    from tests.test_contract import SCHEMA, schema_keys

    props = SCHEMA["properties"]["orders"]["properties"]
    scalars = {k for k, v in props.items() if "properties" not in v}
    assert scalars == {"slope_tol", "ci", "max_epsilon"}
    assert _keywords(order_claims) - {"slopes_df"} == scalars | {"floor_factor"}
    assert "floor_factor" in schema_keys("orders/higher/any_order")


def test_order_targets_one_file_per_grid_point():
    from igrm.pipeline import targets

    cfg = {
        "orders": {
            "gdm": {"problems": ["lstsq"], "betas": [0.5, 0.90]},
            "sgdm": {"betas": [0.8]},
            "sgdm_real": {"enabled": False, "dataset": "mnist", "betas": [0.5]},
            "higher": {"problems": ["two_factor"], "betas": [0.9], "limits": {"betas": []}},
        },
        "toy": {"sharpness_sweep": {"etas": [0.01, 3e-2]}},
    }
    assert targets.orders_files(cfg, "gdm") == [
        "results/orders/gdm/lstsq_beta0.5.h5",
        "results/orders/gdm/lstsq_beta0.9.h5",
    ]
    assert targets.orders_files(cfg, "sgdm") == ["results/orders/sgdm/beta0.8.h5"]
    assert targets.orders_files(cfg, "sgdm_real") == []
    assert targets.orders_files(cfg, "higher") == ["results/orders/gdm3/two_factor_beta0.9.h5"]
    assert targets.sweep_files(cfg) == [
        "results/toy/sharpness_sweep/eta0.01.h5",
        "results/toy/sharpness_sweep/eta0.03.h5",
    ]
    cfg["orders"]["sgdm_real"]["enabled"] = True
    assert targets.orders_files(cfg, "sgdm_real") == ["results/orders/sgdm_real/mnist_beta0.5.h5"]
    assert targets.sgdm_real_data(cfg) == "resources/data/mnist.h5"
    job = targets.sgdm_real_job({"orders": {"sgdm_real": {"enabled": True, "betas": [0.5], "seed": 0}}})
    assert job(type("W", (), {"beta": "0.5"})) == {"beta": 0.5, "seed": 0}


def test_optional_figures_are_built_only_when_their_study_runs():
    """The any-order figures are in the one figure list but `all` and the results page take
    them only when the config runs their study (the default does not: +0 jobs)."""
    import yaml

    from igrm.pipeline import targets
    from igrm.pipeline.config import with_defaults

    from .conftest import REPO

    default = schema_defaults()
    assert set(targets.OPTIONAL_FIGURES) <= set(default["figures"])
    assert targets.built_figures(default) == [f for f in default["figures"] if not f.startswith("orders_any_order")]
    preset = with_defaults(yaml.safe_load((REPO / "presets" / "higher_order.yaml").read_text()))
    assert targets.built_figures(preset) == default["figures"]
    preset["orders"]["higher"]["any_order"]["problems"] = ["sigmoid"]  # no polynomial loss: no loss figure
    preset["orders"]["higher"]["any_order_limits"]["orders"] = []
    built = targets.built_figures(preset)
    assert "orders_any_order" in built and not {"orders_any_order_loss", "orders_any_order_limits"} & set(built)
