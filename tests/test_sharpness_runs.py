"""Flatness vs β on networks (igrm.tidy.runs sharpness points, igrm.claims.sharpness_runs,
igrm.figures.sharpness_runs): planted final sharpness that falls with β exactly as flow (2)'s
first-order prediction (reproduces), that rises (does not), a drop ratio far from the
prediction (does not), runs outside the expansion's range (out-of-range rows), unconverged
λ_max (inconclusive), and the figure."""

import math

import numpy as np
import pytest

from igrm.claims import FAILS, INCONCLUSIVE, OUT_OF_RANGE, REPRODUCES
from igrm.claims.sharpness_runs import flow2_drop_ratio, sharpness_claims
from igrm.figures.sharpness_runs import plot_sharpness_runs
from igrm.figures.style import save
from igrm.pipeline.config import schema_defaults
from igrm.tidy.runs import POINT_COLUMNS, tidy_runs
from tests.test_cifar import csv, fake_run

BETAS = (0.0, 0.5, 0.8, 0.9)
A = schema_defaults("train/analysis")
F = schema_defaults("train/flatness")


def _q(b):
    return b / (1 - b)


def _run(beta, seed, *, s_end, trace_end, gn_end, eta=0.1, converged=True, epochs=8, loss_end=0.01):
    arrays, attrs, cfg = fake_run(
        beta=beta,
        eta=eta,
        seed=seed,
        final=0.8,
        spread=0.01,
        epochs=epochs,
        sharpness=(s_end * 1.5, s_end),
        converged=converged,
    )
    arrays.update(
        {
            "sharpness/trace": np.array([trace_end * 2, trace_end]),
            "sharpness/trace_se": np.array([0.1, 0.1]),
            "sharpness/trace_probes": np.array([3, 3]),
            "sharpness/grad_norm_sq": np.array([gn_end * 3, gn_end]),
            "sharpness/loss": np.array([1.0, loss_end]),  # converged by (S8) unless loss_end > 0.05
        }
    )
    return arrays, {**attrs, "config": cfg}


def _grid(slope, *, scale=1.0, seeds=4, noise=0.01, converged=True, ratio_power=1.0, eta=0.1, loss_end=0.01):
    """Final S(β) = S0 + slope · q(β)^ratio_power · scale (+ seed noise), per quantity;
    q(β)^1 is flow (2)'s first-order shape (docs/theory.md (T66))."""
    rng = np.random.default_rng(0)
    out = []
    for b in BETAS:
        for s in range(seeds):
            shift = slope * _q(b) ** ratio_power
            e = lambda: noise * rng.standard_normal()
            out.append(
                _run(
                    b,
                    s,
                    s_end=(0.02 + shift * 1e-3 + 1e-4 * e()) * scale,
                    trace_end=(1.0 + shift * 0.05 + e()) * scale,
                    gn_end=0.5 + shift * 0.02 + 0.1 * e(),
                    converged=converged,
                    eta=eta,
                    loss_end=loss_end,
                )
            )
    t = csv(tidy_runs(out, spread_window=5))
    return t


def _claims(t, **over):
    kw = {
        "eta": None,
        "dataset": None,
        "model": None,
        "ci": A["ci"],
        "min_seeds": A["min_seeds"],
        "max_epsilon": A["max_epsilon"],
        "ratio_margin": A["ratio_margin"],
        **{k: F[k] for k in ("n_levels", "max_bracket_ratio", "converged_fraction")},
        **over,
    }
    return sharpness_claims(finals=t["finals"], points=t["sharpness"], **kw).set_index("id")


def test_tidy_points_and_finals():
    t = _grid(-1.0)
    p, f = t["sharpness"], t["finals"]
    assert list(p.columns) == POINT_COLUMNS and len(p) == 2 * len(f)
    r = f.iloc[0]
    last = p[(p["run_id"] == r["run_id"]) & (p["epoch"] == 8)].iloc[0]
    for col in ("lambda_max", "trace", "trace_se", "grad_norm_sq", "epsilon"):
        assert r[f"final_{col}"] == pytest.approx(last[col])
    assert bool(r["final_converged"])


def test_falls_and_ratio_reproduce_when_planted_as_flow2_predicts():
    c = _claims(_grid(-1.0))
    base = "sharpness_runs/falls_with_beta/cifar10/resnet18/sgdm/eta0.1"
    for q in ("trace", "lambda_max", "grad_norm_sq"):
        assert c.loc[f"{base}/{q}", "verdict"] == REPRODUCES, c.loc[f"{base}/{q}", "detail"]
    rid = "sharpness_runs/ratio_vs_flow2/cifar10/resnet18/sgdm/eta0.1/trace"
    assert c.loc[rid, "verdict"] == REPRODUCES, c.loc[rid, "detail"]
    assert abs(c.loc[rid, "measured"]) < 0.1
    assert flow2_drop_ratio(0.5, 0.9) == pytest.approx(1 / 9) and flow2_drop_ratio(0.8, 0.9) == pytest.approx(4 / 9)


def test_rising_sharpness_and_a_wrong_ratio_do_not_reproduce():
    c = _claims(_grid(+1.0))
    assert c.loc["sharpness_runs/falls_with_beta/cifar10/resnet18/sgdm/eta0.1/trace", "verdict"] == FAILS
    # drops linear in β instead of in β/(1−β): D(0.5)/D(0.9) = 0.56, prediction 0.11
    c = _claims(_grid(-1.0, ratio_power=0.25))
    assert c.loc["sharpness_runs/ratio_vs_flow2/cifar10/resnet18/sgdm/eta0.1/trace", "verdict"] == FAILS


def test_unconverged_lambda_max_is_inconclusive_and_the_ratio_unestablished():
    c = _claims(_grid(-1.0, converged=False))
    base = "sharpness_runs/falls_with_beta/cifar10/resnet18/sgdm/eta0.1"
    assert c.loc[f"{base}/lambda_max", "verdict"] == INCONCLUSIVE
    assert "lower bounds" in c.loc[f"{base}/lambda_max", "detail"]
    assert c.loc[f"{base}/trace", "verdict"] == REPRODUCES
    assert c.loc["sharpness_runs/ratio_vs_flow2/cifar10/resnet18/sgdm/eta0.1/trace", "verdict"] == INCONCLUSIVE


def test_out_of_range_runs_get_labelled_rows():
    """λ_max ~ 20 at η = 0.1: ε = η|λ|/(1−β) = 2–20, above the real-root bound (T51)."""
    c = _claims(_grid(-1.0, scale=1000.0))
    rid = "sharpness_runs/ratio_vs_flow2/cifar10/resnet18/sgdm/eta0.1/trace/out_of_range"
    assert c.loc[rid, "verdict"] == OUT_OF_RANGE
    assert "ε" in c.loc[rid, "detail"] and math.isfinite(c.loc[rid, "measured"])
    assert "sharpness_runs/ratio_vs_flow2/cifar10/resnet18/sgdm/eta0.1/trace" not in c.index


def test_too_few_seeds_inconclusive():
    c = _claims(_grid(-1.0, seeds=2))
    for rid in (
        "sharpness_runs/falls_with_beta/cifar10/resnet18/sgdm/eta0.1/trace",
        "sharpness_runs/ratio_vs_flow2/cifar10/resnet18/sgdm/eta0.1/trace",
    ):
        assert c.loc[rid, "verdict"] == INCONCLUSIVE, rid


def test_plot_writes_pdf_and_png(tmp_path):
    t = _grid(-1.0, seeds=3)
    paths = [tmp_path / "s.pdf", tmp_path / "s.png"]
    save(
        plot_sharpness_runs(finals=t["finals"], points=t["sharpness"], eta=None, dataset=None, model=None, ci=0.95),
        paths,
    )
    assert all(p.stat().st_size > 1000 for p in paths)


def test_unconverged_runs_leave_the_final_comparison_and_two_points_match_no_loss_level():
    """docs/mechanism.md (S8): runs whose measured loss fell only to 0.3 of its start are not
    converged: the final rows are out-of-range findings with the loss ratios; (S7): with two
    sharpness points per run (initialisation and end) every matched-loss level is
    interpolated across the whole run, an out-of-range row."""
    c = _claims(_grid(-1.0, loss_end=0.3))
    base = "sharpness_runs/falls_with_beta/cifar10/resnet18/sgdm/eta0.1"
    for q in ("trace", "lambda_max", "grad_norm_sq"):
        assert c.loc[f"{base}/{q}/out_of_range", "verdict"] == OUT_OF_RANGE
        assert "0.3–0.3" in c.loc[f"{base}/{q}/out_of_range", "detail"]
    ml = c[c.index.str.startswith("sharpness_runs/matched_loss/")]
    assert len(ml) == 3 * F["n_levels"] and (ml["verdict"] == OUT_OF_RANGE).all()
    assert f"{base}/trace" not in c.index
