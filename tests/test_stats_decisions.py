"""igrm.stats, decisions with a declared margin (docs/theory.md (T150)–(T153)): per-seed slopes
against numpy's polyfit, the three-way rule on planted effects, the verdict probabilities
(power) against a Monte-Carlo simulation, and the coverage of the per-seed interval simulated
at the default config's design with additive and interacting seed effects."""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from igrm import stats
from igrm.stats import FAILS, INCONCLUSIVE, REPRODUCES

LEVEL = 0.95
BETAS = [0.0, 0.5, 0.8, 0.9]


def test_seed_slopes_match_polyfit_per_seed_with_missing_levels():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(5, 4))
    y[1, 2] = np.nan  # a diverged run: the seed's slope over its other three levels
    y[3, 1:] = np.nan  # one level left: no slope
    b = stats.seed_slopes(BETAS, y)
    for i in (0, 1, 2, 4):
        ok = np.isfinite(y[i])
        assert b[i] == pytest.approx(np.polyfit(np.asarray(BETAS)[ok], y[i, ok], 1)[0])
    assert math.isnan(b[3])
    iv = stats.seed_slope_t(BETAS, y, LEVEL)
    good = b[np.isfinite(b)]
    assert iv.df == len(good) - 1
    assert iv.estimate == pytest.approx(good.mean())
    assert iv.se == pytest.approx(good.std(ddof=1) / math.sqrt(len(good)))


@pytest.mark.parametrize(
    ("lo", "hi", "verdict"),
    [
        (0.2, 3.0, REPRODUCES),  # above 0, reaches the margin
        (-0.4, 0.6, FAILS),  # inside ±1: smaller than the smallest effect of interest (TOST)
        (0.1, 0.9, FAILS),  # positive but shown smaller than the margin
        (-2.0, -0.1, FAILS),  # the opposite side
        (-0.5, 1.5, INCONCLUSIVE),  # wide: contains 0 and reaches the margin
        (-1.2, 0.5, INCONCLUSIVE),
        (math.nan, 1.0, INCONCLUSIVE),
    ],
)
def test_margin_verdict_cases(lo, hi, verdict):
    assert stats.margin_verdict(lo, hi, 1.0) == verdict


def _planted(effect, sd, n, rng):
    """n seeds × the β grid with a planted per-seed effect over the grid (mean ``effect``,
    SD ``sd`` across seeds) plus run noise; returns the interval of the effect over the grid."""
    x = np.asarray(BETAS)
    per_seed = rng.normal(effect, sd, (n, 1)) / np.ptp(x)
    y = 0.7 + per_seed * x + rng.normal(0, 0.002, (n, x.size)) + rng.normal(0, 0.01, (n, 1))
    iv = stats.seed_slope_t(x, y, LEVEL)
    return iv.lo * np.ptp(x), iv.hi * np.ptp(x)


def test_planted_effects_decide_as_declared():
    """margin 1 pp: a true 0.2 pp effect with 12 seeds -> does not reproduce (TOST); a 3 pp
    effect -> reproduces; the same 0.2 pp with 3 noisy seeds -> inconclusive."""
    rng = np.random.default_rng(7)
    assert stats.margin_verdict(*_planted(0.002, 0.004, 12, rng), 0.01) == FAILS
    assert stats.margin_verdict(*_planted(0.03, 0.004, 12, rng), 0.01) == REPRODUCES
    assert stats.margin_verdict(*_planted(0.002, 0.02, 3, rng), 0.01) == INCONCLUSIVE
    assert stats.margin_verdict(*_planted(-0.03, 0.004, 6, rng), 0.01) == FAILS


@pytest.mark.parametrize(("effect", "n"), [(1.0, 3), (1.0, 8), (0.0, 8), (0.5, 12), (-0.3, 5)])
def test_decision_probabilities_match_simulation(effect, n):
    """The quadrature of (T152) against 40 000 simulated interval decisions (MC SE ≤ 0.0025)."""
    sd, margin = 1.0, 1.0
    rng = np.random.default_rng(n)
    d = rng.normal(effect, sd, (40000, n))
    iv = stats.Interval(d.mean(1), d.std(1, ddof=1) / math.sqrt(n), n - 1.0, LEVEL)
    verdicts = np.array([stats.margin_verdict(lo, hi, margin) for lo, hi in zip(iv.lo, iv.hi)])
    p = stats.decision_probabilities(effect, sd, n, margin, LEVEL)
    for v in (REPRODUCES, FAILS, INCONCLUSIVE):
        assert p[v] == pytest.approx(np.mean(verdicts == v), abs=0.012), v


def test_seeds_to_decide_is_the_first_n_with_power():
    sd, margin = 1.0, 1.0
    n = stats.seeds_to_decide(sd, margin, LEVEL)
    both = lambda k: min(
        stats.decision_probabilities(margin, sd, k, margin, LEVEL)[REPRODUCES],
        stats.decision_probabilities(0.0, sd, k, margin, LEVEL)[FAILS],
    )
    assert both(n) >= 0.8 > both(n - 1)
    # halving the noise needs about a quarter of the seeds
    assert stats.seeds_to_decide(sd / 2, margin, LEVEL) < n / 2
    assert stats.seeds_to_decide(math.nan, margin, LEVEL) is None


def _default_design():
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())["train"]
    return cfg


@pytest.mark.parametrize(("seed_sd", "interaction"), [(0.02, 0.0), (0.02, 0.03), (0.005, 0.03), (0.0, 0.05)])
def test_per_seed_interval_covers_at_the_default_design(seed_sd, interaction):
    """Coverage at config.yaml's seeds and grids, additive seed effect and seed × level
    interaction (4000 designs: MC SE 0.0034). The pooled OLS interval of (T48) falls below
    nominal when the interaction dominates the additive seed effect, which is why the claims
    use the per-seed one."""
    cfg = _default_design()
    n = len(cfg["seeds"])
    grids = {"beta": cfg["beta_grid"]["betas"], "lr": np.log10(cfg["lr_grid"]["lrs"])}
    for name, x in grids.items():
        sim = stats.simulate_seed_design(
            x, n, slope=0.02, noise_sd=0.005, seed_sd=seed_sd, interaction_sd=interaction, level=LEVEL
        )
        assert sim["per_seed"] >= 0.93, (name, sim)
        if interaction and seed_sd < interaction / 2 and name == "beta":
            assert sim["pooled_ols"] < 0.9, sim


def test_window_rise_is_the_plateau_line():
    from igrm.tidy.runs import plateau

    y = np.random.default_rng(3).normal(size=30).cumsum()
    r = stats.window_rise(y, 10)
    assert np.isnan(r[:9]).all()
    for e in (9, 17, 29):
        assert r[e] == pytest.approx(plateau(y[e - 9 : e + 1])[1])


def test_levelled_off_epoch_on_planted_curves():
    """A saturating curve a(e) = 0.8 (1 − exp(−e/5)): the fitted rise over a 10-epoch window
    falls below 0.05 at an epoch we compute directly, and stays below; a linear rise of 1 pp
    per epoch (9 pp per window) never levels off; noise about a flat line levels off at once."""
    e = np.arange(1, 61)
    sat = 0.8 * (1 - np.exp(-e / 5.0))
    got = stats.levelled_off_epoch(sat, 10, 0.05)
    rises = [np.polyfit(np.arange(10), sat[k - 10 : k], 1)[0] * 9 for k in range(10, 61)]
    first = 10 + next(i for i, v in enumerate(rises) if v <= 0.05)
    assert got == first and 10 < got < 40
    assert stats.levelled_off_epoch(0.5 + 0.01 * e, 10, 0.05) is None
    flat = 0.7 + np.random.default_rng(0).normal(0, 0.005, 60)
    assert stats.levelled_off_epoch(flat, 10, 0.05) == 10
    # a late rise after a flat stretch: levelled off only after it
    late = np.where(e < 30, 0.6, 0.6 + 0.02 * np.minimum(e - 30, 10))
    assert stats.levelled_off_epoch(late, 10, 0.05) > 40
    assert stats.levelled_off_epoch(sat[:5], 10, 0.05) is None
