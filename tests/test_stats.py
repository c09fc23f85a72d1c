"""igrm.stats: the seed-level intervals (docs/theory.md (T47)–(T50)) against closed forms,
their coverage simulated at the seed counts the configs use, the old percentile bootstrap's
undercoverage at those counts, the MDE and the seeds needed."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from igrm import stats
from igrm.claims import FAILS, INCONCLUSIVE, REPRODUCES

REPS = 4000  # coverage replications (Monte-Carlo SE of a 95 % coverage: 0.0034)
LEVEL = 0.95


# ---------------------------------------------------------------- closed forms
def test_welch_matches_the_textbook_formula_and_scipy():
    a = np.array([0.61, 0.64, 0.60, 0.66])
    b = np.array([0.58, 0.63, 0.55])
    iv = stats.welch_t(a, b, LEVEL)
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    assert iv.estimate == pytest.approx(a.mean() - b.mean())
    assert iv.se == pytest.approx(math.sqrt(va + vb))
    assert iv.df == pytest.approx(df)
    assert iv.half_width == pytest.approx(sps.t.ppf(0.975, df) * math.sqrt(va + vb))
    res = sps.ttest_ind(a, b, equal_var=False)
    lo, hi = res.confidence_interval(LEVEL)
    assert (iv.lo, iv.hi) == pytest.approx((lo, hi))
    # too few seeds: no interval
    assert math.isnan(stats.welch_t(a, b[:1], LEVEL).se)


def test_welch_two_seeds_is_wide_not_the_bootstrap_width():
    """The issue's example size: 2 seeds per method. The t-interval (which contains 0) is over four times the
    percentile bootstrap's, which is what made 2 seeds look decisive."""
    a, b = np.array([0.60, 0.80]), np.array([0.95, 1.05])
    iv = stats.welch_t(a, b, LEVEL)
    boot = _boot_diff(a[None], b[None], 4000, np.random.default_rng(0))
    blo, bhi = np.quantile(boot, [0.025, 0.975])
    assert bhi < 0 < iv.hi and (iv.hi - iv.lo) > 4 * (bhi - blo)


def test_slope_matches_scipy_linregress():
    rng = np.random.default_rng(1)
    x = np.repeat([0.0, 0.5, 0.7, 0.9], 3)
    y = 0.5 + 0.2 * x + rng.normal(0, 0.02, x.size)
    iv = stats.slope_t(x, y, LEVEL)
    lr = sps.linregress(x, y)
    assert iv.estimate == pytest.approx(lr.slope)
    assert iv.se == pytest.approx(lr.stderr)
    assert iv.df == x.size - 2
    assert iv.half_width == pytest.approx(sps.t.ppf(0.975, x.size - 2) * lr.stderr)
    lv = stats.slope_t_levels([0.0, 0.5, 0.7, 0.9], [y[0:3], y[3:6], y[6:9], y[9:12]], LEVEL)
    assert (lv.lo, lv.hi) == pytest.approx((iv.lo, iv.hi))
    # batched rows = one fit per row
    yy = np.stack([y, 2 * y])
    b = stats.slope_t(x, yy, LEVEL)
    assert b.estimate == pytest.approx([lr.slope, 2 * lr.slope]) and b.se == pytest.approx([lr.stderr, 2 * lr.stderr])
    assert math.isnan(stats.slope_t([0.0, 1.0], [0.1, 0.3], LEVEL).se)  # N = 2: no residual df


def test_ci_rule():
    assert stats.ci_verdict(0.01, 0.2) == REPRODUCES
    assert stats.ci_verdict(-0.2, -0.01) == FAILS
    assert stats.ci_verdict(-0.01, 0.2) == INCONCLUSIVE
    assert stats.ci_verdict(math.nan, 0.2) == INCONCLUSIVE


# ---------------------------------------------------------------- coverage
def _boot_diff(a, b, n_boot, rng):
    """The old rule (percentile bootstrap, seeds resampled within each group), batched:
    a (R, na), b (R, nb) -> (R, n_boot) draws of mean(a*) − mean(b*)."""
    ia = rng.integers(0, a.shape[1], (a.shape[0], n_boot, a.shape[1]))
    ib = rng.integers(0, b.shape[1], (b.shape[0], n_boot, b.shape[1]))
    ra = np.take_along_axis(a[:, None, :], ia, axis=2).mean(axis=2)
    rb = np.take_along_axis(b[:, None, :], ib, axis=2).mean(axis=2)
    return ra - rb


def _boot_slope(xs, y, n_per, n_boot, rng):
    """The old rule for a slope: seeds resampled within each level (y is (R, k·n_per),
    level-major), the OLS slope of every resample -> (R, n_boot)."""
    R, N = y.shape
    k = N // n_per
    idx = rng.integers(0, n_per, (R, n_boot, k, n_per)) + (np.arange(k) * n_per)[None, None, :, None]
    res = np.take_along_axis(y[:, None, :], idx.reshape(R, n_boot, N), axis=2)
    xc = xs - xs.mean()
    return (res - res.mean(axis=2, keepdims=True)) @ xc / (xc @ xc)


def _covers(lo, hi, truth):
    return float(np.mean((lo <= truth) & (truth <= hi)))


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("sd_b", [1.0, 3.0], ids=["equal_sd", "sd_ratio3"])
def test_welch_coverage_at_the_seeds_in_use(n, sd_b):
    rng = np.random.default_rng(100 + n + int(sd_b))
    a = rng.normal(0.7, 1.0, (REPS, n))
    b = rng.normal(0.6, sd_b, (REPS, n))
    iv = stats.welch_t(a, b, LEVEL)
    cov = _covers(iv.lo, iv.hi, 0.1)
    assert 0.93 <= cov <= 0.97, cov


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("levels", [[0.0, 0.9], [0.0, 0.5, 0.7, 0.9]], ids=["2_levels", "4_levels"])
def test_slope_coverage_at_the_seeds_in_use(n, levels):
    rng = np.random.default_rng(200 + n + len(levels))
    xs = np.repeat(levels, n)
    y = 0.5 + 0.2 * xs + rng.normal(0, 0.03, (REPS, xs.size))
    iv = stats.slope_t(xs, y, LEVEL)
    cov = _covers(iv.lo, iv.hi, 0.2)
    assert 0.93 <= cov <= 0.97, cov


@pytest.mark.parametrize("n", [2, 3])
def test_percentile_bootstrap_undercovers_at_few_seeds(n):
    """The rule the t-intervals replaced: at 2–3 seeds its nominal 95 % interval covers far
    less often, so the coverage tests above would catch a regression to it."""
    rng = np.random.default_rng(300 + n)
    reps = 2000
    a, b = rng.normal(0.7, 1.0, (reps, n)), rng.normal(0.6, 1.0, (reps, n))
    d = _boot_diff(a, b, 400, rng)
    lo, hi = np.quantile(d, 0.025, axis=1), np.quantile(d, 0.975, axis=1)
    cov_diff = _covers(lo, hi, 0.1)
    xs = np.repeat([0.0, 0.5, 0.7, 0.9], n)
    y = 0.5 + 0.2 * xs + rng.normal(0, 0.03, (reps, xs.size))
    s = _boot_slope(xs, y, n, 400, rng)
    cov_slope = _covers(np.quantile(s, 0.025, axis=1), np.quantile(s, 0.975, axis=1), 0.2)
    assert cov_diff < 0.9 and cov_slope < 0.9, (cov_diff, cov_slope)


# ---------------------------------------------------------------- MDE and seeds needed
def test_mde_formula():
    assert stats.mde(0.01, 4, LEVEL) == pytest.approx((sps.t.ppf(0.975, 4) + sps.t.ppf(0.8, 4)) * 0.01)
    assert math.isnan(stats.mde(0.01, math.nan, LEVEL))


def test_seeds_needed_diff_is_the_first_n_whose_mde_reaches_the_effect():
    sa, sb, eff = 0.01, 0.02, 0.015
    n = stats.seeds_needed_diff(eff, sa, sb, LEVEL)

    def m(k):
        return stats.mde(math.sqrt((sa**2 + sb**2) / k), (k - 1) * (sa**2 + sb**2) ** 2 / (sa**4 + sb**4), LEVEL)

    assert n is not None and m(n) <= eff < m(n - 1)
    assert stats.seeds_needed_diff(eff, sa, sb, LEVEL, n_min=n + 3) == n + 3
    assert stats.seeds_needed_diff(1e-6, sa, sb, LEVEL) is None  # > cap
    assert stats.seeds_needed_diff(0.0, sa, sb, LEVEL) is None
    # power at that n, simulated: the Welch interval excludes 0 about 80 % of the time
    rng = np.random.default_rng(5)
    iv = stats.welch_t(rng.normal(eff, sa, (REPS, n)), rng.normal(0, sb, (REPS, n)), LEVEL)
    assert 0.7 <= float(np.mean(iv.lo > 0)) <= 0.95


def test_seeds_needed_slope_is_the_first_n_whose_mde_reaches_the_effect():
    x, sd, eff = [0.0, 0.5, 0.7, 0.9], 0.03, 0.05
    n = stats.seeds_needed_slope(eff, sd, x, LEVEL)
    sxx1 = float(((np.array(x) - np.mean(x)) ** 2).sum())

    def m(k):
        return stats.mde(sd / math.sqrt(k * sxx1), 4 * k - 2, LEVEL)

    assert n is not None and n > 2 and m(n) <= eff < m(n - 1)
    rng = np.random.default_rng(6)
    xs = np.repeat(x, n)
    iv = stats.slope_t(xs, eff * xs + rng.normal(0, sd, (REPS, xs.size)), LEVEL)
    assert 0.7 <= float(np.mean(iv.lo > 0)) <= 0.95
    assert stats.seeds_needed_slope(eff, math.nan, x, LEVEL) is None


def test_pooled_sd():
    s, df = stats.pooled_sd([np.array([1.0, 3.0]), np.array([5.0]), np.array([0.0, 2.0, 4.0])])
    assert df == 1 + 2 and s == pytest.approx(math.sqrt((2 + 8) / 3))
    assert stats.pooled_sd([np.array([1.0]), np.array([2.0])]) == (pytest.approx(math.nan, nan_ok=True), 0)


# ----------------------------------------------------------------- ratios, equivalence, joint tests
def test_fieller_is_the_set_of_ratios_the_t_test_does_not_reject():
    """Independent check of Fieller's interval (T54): R is inside iff the one-sample t test
    of num − R·den against 0 (scipy) does not reject at α; the end points are where it is on
    the edge."""
    from scipy import stats

    from igrm.stats import fieller

    rng = np.random.default_rng(0)
    num = rng.normal(2.0, 0.4, size=(8, 3))
    den = rng.normal(4.0, 0.3, size=(8, 3)) + 0.5 * (num - 2.0)
    f = fieller(num, den, 0.95)
    for c in range(3):
        p = lambda R: stats.ttest_1samp(num[:, c] - R * den[:, c], 0.0).pvalue
        assert np.isclose(p(f.lo[c]), 0.05, atol=1e-9) and np.isclose(p(f.hi[c]), 0.05, atol=1e-9)
        assert p(f.estimate[c]) > 0.99 and p(f.lo[c] - 1e-3) < 0.05 and p(f.hi[c] + 1e-3) < 0.05


def test_fieller_unbounded_when_the_denominator_is_not_significant():
    from igrm.stats import fieller

    rng = np.random.default_rng(1)
    f = fieller(rng.normal(1.0, 0.1, size=(6, 1)), rng.normal(0.0, 1.0, size=(6, 1)), 0.95)
    assert np.isnan(f.lo).all() and np.isnan(f.hi).all()


@pytest.mark.parametrize("G", [6, 8])
def test_fieller_coverage_at_the_groups_in_use(G):
    """Fieller is exact for normal replicates: coverage at the config's G = 8 (and 6), with a
    noisy correlated denominator where the delta method is not exact."""
    from igrm.stats import fieller

    rng = np.random.default_rng(G)
    num = rng.normal(1.0, 0.5, size=(G, REPS))
    den = 2.0 + 0.6 * rng.normal(size=(G, REPS)) + 0.4 * (num - 1.0)
    f = fieller(num, den, 0.95)
    cover = np.nanmean((f.lo <= 0.5) & (0.5 <= f.hi))
    assert 0.935 <= cover <= 0.965, cover


def test_signflip_p_value_by_brute_force_and_its_size_under_dependence():
    """(T55): the p-value equals the fraction of all 2^G sign patterns whose max |t| reaches the
    observed one (computed here with an explicit loop), and under a null with strongly
    dependent cells (a shared component) the test rejects at about its level."""
    import itertools

    from igrm.stats import signflip_max_t

    rng = np.random.default_rng(2)
    d = rng.normal(size=(6, 4)) + 0.3
    t, obs, p = signflip_max_t(d)
    count = 0
    for signs in itertools.product([-1.0, 1.0], repeat=6):
        x = np.asarray(signs)[:, None] * d
        count += np.max(np.abs(x.mean(0) / (x.std(0, ddof=1) / np.sqrt(6)))) >= obs - 1e-12
    assert np.isclose(p, count / 64) and np.isclose(obs, np.abs(t).max())
    rej = []
    for r in range(1000):
        shared = rng.normal(size=(8, 1))
        rej.append(signflip_max_t(shared + 0.3 * rng.standard_t(3, size=(8, 21)), seed=r)[2] <= 0.05)
    assert np.mean(rej) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 1000), np.mean(rej)


def test_signflip_detects_a_planted_deviation_in_one_cell():
    from igrm.stats import signflip_max_t

    rng = np.random.default_rng(3)
    d = rng.normal(size=(8, 21))
    d[:, 7] += 3.0
    t, obs, p = signflip_max_t(d)
    assert np.argmax(np.abs(t)) == 7 and p <= 1 / 64


def test_equivalence_rule():
    """(T57): inside the margin everywhere → reproduces; a simultaneous interval wholly outside
    → does not reproduce; a wide or unbounded interval → inconclusive."""
    from igrm.stats import equivalence_verdict

    m = 0.1
    assert equivalence_verdict([-0.05, -0.02], [0.04, 0.09], [-0.08, -0.05], [0.07, 0.12], m) == REPRODUCES
    assert equivalence_verdict([-0.05, 0.15], [0.04, 0.30], [-0.08, 0.12], [0.07, 0.33], m) == FAILS
    assert equivalence_verdict([-0.05, 0.05], [0.04, 0.30], [-0.08, 0.02], [0.07, 0.33], m) == INCONCLUSIVE
    assert equivalence_verdict([-0.3], [0.3], [-0.4], [0.4], m) == INCONCLUSIVE  # too wide to tell
    assert equivalence_verdict([np.nan], [np.nan], [np.nan], [np.nan], m) == INCONCLUSIVE
    # a significant but tiny deviation is still equivalent within the declared margin
    assert equivalence_verdict([0.01], [0.03], [0.005], [0.035], m) == REPRODUCES


def test_bonferroni_intervals_hold_simultaneously_under_dependence():
    """(T56): 21 dependent cells (shared component), Fieller at the Bonferroni level: all 21
    cover together in ≥ 95 % of replicates."""
    from igrm.stats import bonferroni_level, fieller

    rng = np.random.default_rng(4)
    G, C, reps = 8, 21, 2000
    shared = rng.normal(size=(G, reps, 1))
    num = 1.0 + 0.3 * (shared + rng.normal(size=(G, reps, C)))
    den = 2.0 + 0.1 * rng.normal(size=(G, reps, 1)) + 0 * num
    f = fieller(num, den, bonferroni_level(0.95, C))
    together = np.all((f.lo <= 0.5) & (0.5 <= f.hi), axis=-1).mean()
    assert together >= 0.95, together
