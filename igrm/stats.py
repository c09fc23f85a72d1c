"""Statistics of the seed-level claims (docs/cifar.md "Claims", docs/theory.md (T47)–(T50)):
t-intervals that hold at the few seeds a training grid has, the minimum detectable
effect, the seeds needed, and the fixed verdict rule of an interval.

Rules (fixed before any measurement):

- **Difference of two means** (explicit baseline − plain GD/SGD): Welch's t-interval,
  d̂ ± t_{1−α/2, ν} · SE with SE = √(s_a²/n_a + s_b²/n_b) and the Welch–Satterthwaite
  ν = SE⁴ / ((s_a²/n_a)²/(n_a−1) + (s_b²/n_b)²/(n_b−1)) (docs/theory.md (T47)). Needs
  n_a, n_b ≥ 2.
- **Trend over levels** (obs 1: accuracy vs log10 h; obs 2: −spread vs β; obs 3:
  accuracy vs β): ordinary least squares of every per-seed value on its level x, and
  the t-interval b̂ ± t_{1−α/2, N−2} · s/√Sxx with s² = RSS/(N−2) the residual variance,
  N the number of (level, seed) points and Sxx = Σ (x_i − x̄)² over the points
  (docs/theory.md (T48)). Needs N ≥ 3 and two distinct levels. s includes any lack of
  fit of the straight line, which only widens the interval.
- **Minimum detectable effect** of a two-sided level-α t test with power 0.8:
  MDE = (t_{1−α/2, ν} + t_{0.8, ν}) · SE; the **seeds per level needed** to detect an
  effect d is the smallest integer n with MDE(n) ≤ |d|, SE(n) and ν(n) from the same
  formula with n seeds at every level and the observed SDs; "> cap" when none up to the
  cap (docs/theory.md (T49)).
- **Verdict** (paper's side positive; docs/theory.md (T50)): the interval entirely above
  0 -> reproduces; entirely below 0 -> does not reproduce; otherwise (or not finite) ->
  inconclusive. The caller also makes a row inconclusive below its minimum seeds per level.

No bootstrap: a percentile bootstrap over 2–5 seeds undercovers badly (tests/test_stats.py
measures it), and the t-intervals above are exact for normal seed noise at any n ≥ 2 per
level (the Welch interval up to its df approximation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

#: the verdicts a statistical decision returns (docs/theory.md (T45), (T57)); the claims
#: table only prints them
REPRODUCES = "reproduces"
FAILS = "does not reproduce"
INCONCLUSIVE = "inconclusive"
#: a measurement outside the declared validity range of the theory it would test
#: (docs/theory.md (T45)): reported as a finding, never counted as a failure of the theory
OUT_OF_RANGE = "out of range"
VERDICTS = (REPRODUCES, FAILS, INCONCLUSIVE, OUT_OF_RANGE)

#: power of the minimum detectable effect and of the seeds-needed calculation
POWER = 0.8
#: the seeds-needed search stops here ("> SEEDS_CAP")
SEEDS_CAP = 1000


@dataclass(frozen=True)
class Interval:
    """A t-interval: estimate ± t_{1−α/2, df} · se (arrays for batched input)."""

    estimate: np.ndarray | float
    se: np.ndarray | float
    df: np.ndarray | float
    level: float

    @property
    def half_width(self):
        return tquantile(1 - (1 - self.level) / 2, self.df) * self.se

    @property
    def lo(self):
        return self.estimate - self.half_width

    @property
    def hi(self):
        return self.estimate + self.half_width


def tquantile(p: float, df):
    """Student-t quantile at p with df degrees of freedom; NaN where df is not finite or ≤ 0."""
    df = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        q = student_t.ppf(p, np.where(np.isfinite(df) & (df > 0), df, np.nan))
    return float(q) if q.ndim == 0 else q


def mean_halfwidth(sd, n, level: float):
    """Half-width of the two-sided ``level`` t-interval of a mean of n values with SD ``sd``:
    t_{(1+level)/2, n−1} · sd/√n (docs/theory.md (T47) with one group); NaN where n < 2.
    ``sd`` and ``n`` may be arrays."""
    sd, n = np.asarray(sd, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        hw = np.where(n >= 2, tquantile(0.5 + level / 2, np.where(n >= 2, n - 1, 1)) * sd / np.sqrt(n), np.nan)
    return float(hw) if hw.ndim == 0 else hw


def ols_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of y on x; y may be (B, N) (one slope per row)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    xc = x - x.mean()
    return (y - y.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)


def slope_t(x: np.ndarray, y: np.ndarray, level: float) -> Interval:
    """OLS slope of y on x with its t-interval, residual variance on N−2 df (docs/theory.md
    (T48)). x is (N,), y is (..., N): one slope per leading index. se is NaN for N < 3."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.size
    xc = x - x.mean()
    sxx = float(xc @ xc)
    if n < 2 or sxx <= 0:
        nan = np.full(y.shape[:-1], np.nan) if y.ndim > 1 else math.nan
        return Interval(nan, nan, math.nan, level)
    yc = y - y.mean(axis=-1, keepdims=True)
    b = yc @ xc / sxx
    df = n - 2
    if df < 1:
        se = np.full(np.shape(b), np.nan) if np.ndim(b) else math.nan
    else:
        rss = ((yc - b[..., None] * xc) ** 2).sum(axis=-1) if np.ndim(b) else float(((yc - b * xc) ** 2).sum())
        se = np.sqrt(rss / df / sxx)
    return Interval(b if np.ndim(b) else float(b), se if np.ndim(se) else float(se), float(df), level)


def slope_t_levels(x_levels: Sequence[float], y_levels: Sequence[np.ndarray], level: float) -> Interval:
    """:func:`slope_t` over every (level, seed) point: ``y_levels[j]`` are the seeds at x_j."""
    xs = np.concatenate([np.full(len(v), float(x)) for x, v in zip(x_levels, y_levels)])
    ys = np.concatenate([np.asarray(v, dtype=float) for v in y_levels])
    return slope_t(xs, ys, level)


def welch_t(a: np.ndarray, b: np.ndarray, level: float) -> Interval:
    """mean(a) − mean(b) with Welch's t-interval (Welch–Satterthwaite df; docs/theory.md
    (T47)), along the last axis. se is NaN unless both have ≥ 2 values."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    na, nb = a.shape[-1], b.shape[-1]
    d = a.mean(axis=-1) - b.mean(axis=-1) if na and nb else math.nan
    if na < 2 or nb < 2:
        nan = np.full(np.shape(d), np.nan) if np.ndim(d) else math.nan
        return Interval(d, nan, nan, level)
    va, vb = a.var(axis=-1, ddof=1) / na, b.var(axis=-1, ddof=1) / nb
    se2 = va + vb
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(se2 > 0, se2**2 / (va**2 / (na - 1) + vb**2 / (nb - 1)), na + nb - 2.0)
    out = (d, np.sqrt(se2), df)
    if np.ndim(d) == 0:
        out = tuple(float(v) for v in out)
    return Interval(*out, level)


def pooled_sd(groups: Sequence[np.ndarray]) -> tuple[float, int]:
    """Pooled within-group (seed-to-seed) SD and its df Σ(n_j − 1); (NaN, 0) if no group has 2."""
    df = sum(max(len(g) - 1, 0) for g in groups)
    if df < 1:
        return math.nan, 0
    ss = sum(float(((np.asarray(g, float) - np.mean(g)) ** 2).sum()) for g in groups if len(g) > 1)
    return math.sqrt(ss / df), df


def mde(se, df, level: float, power: float = POWER):
    """Minimum detectable effect of a two-sided level-α t test with the given power:
    (t_{1−α/2, df} + t_{power, df}) · se (docs/theory.md (T49))."""
    return (tquantile(1 - (1 - level) / 2, df) + tquantile(power, df)) * se


def _first_n(effect: float, se_df, level: float, power: float, n_min: int, cap: int) -> int | None:
    """Smallest n in [n_min, cap] with mde(*se_df(n)) ≤ |effect|; None if none (or not finite)."""
    effect = abs(float(effect))
    if not math.isfinite(effect) or effect == 0:
        return None
    ok = lambda n: mde(*se_df(n), level, power) <= effect
    lo = max(int(n_min), 2)
    if not math.isfinite(mde(*se_df(lo), level, power)):
        return None
    if ok(lo):
        return lo
    if not ok(cap):
        return None
    hi = cap  # mde falls with n: bisect on [lo, hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def paired_t(d, level: float) -> Interval:
    """Mean of per-seed paired differences with its t-interval: d̄ ± t_{1−α/2, n−1} s/√n
    (docs/theory.md (T74)). se NaN for n < 2."""
    d = np.asarray(d, float)
    n = d.size
    if n < 2:
        return Interval(float(d.mean()) if n else math.nan, math.nan, math.nan, level)
    return Interval(float(d.mean()), float(d.std(ddof=1) / math.sqrt(n)), float(n - 1), level)


def seeds_needed_paired(effect: float, sd: float, level: float, n_min: int, cap: int = SEEDS_CAP) -> int | None:
    """Smallest n ≥ max(2, n_min) with MDE = (t_{1−α/2,n−1} + t_{0.8,n−1})·sd/√n ≤ |effect|
    ((T49) with the paired SE of (T74)); None above ``cap`` or if not estimable."""
    if not (math.isfinite(effect) and math.isfinite(sd)) or effect == 0:
        return None
    for n in range(max(2, int(n_min)), cap + 1):
        if mde(sd / math.sqrt(n), n - 1, level, POWER) <= abs(effect):
            return n
    return None


def seeds_needed_slope(
    effect: float,
    sd: float,
    x_levels: Sequence[float],
    level: float,
    power: float = POWER,
    n_min: int = 2,
    cap: int = SEEDS_CAP,
) -> int | None:
    """Seeds per level at which the OLS slope's MDE reaches ``effect``: SE(n) = sd/√(n·Sxx₁)
    with Sxx₁ = Σ_j (x_j − x̄)² over the distinct levels, df = n·k − 2 (docs/theory.md (T49)).
    None: more than ``cap`` (or no finite sd)."""
    x = np.asarray(x_levels, dtype=float)
    sxx1 = float(((x - x.mean()) ** 2).sum())
    if not (math.isfinite(sd) and sxx1 > 0):
        return None
    return _first_n(effect, lambda n: (sd / math.sqrt(n * sxx1), n * len(x) - 2), level, power, n_min, cap)


def seeds_needed_diff(
    effect: float, sd_a: float, sd_b: float, level: float, power: float = POWER, n_min: int = 2, cap: int = SEEDS_CAP
) -> int | None:
    """Seeds per group at which Welch's MDE reaches ``effect``: SE(n) = √((s_a² + s_b²)/n),
    Welch–Satterthwaite df(n) = (n−1)(s_a² + s_b²)²/(s_a⁴ + s_b⁴) (docs/theory.md (T49))."""
    if not (math.isfinite(sd_a) and math.isfinite(sd_b)):
        return None
    va, vb = sd_a**2, sd_b**2

    def se_df(n):
        s = va + vb
        return math.sqrt(s / n), ((n - 1) * s * s / (va * va + vb * vb) if s > 0 else 2 * n - 2)

    return _first_n(effect, se_df, level, power, n_min, cap)


def ci_verdict(lo: float, hi: float) -> str:
    """The fixed verdict rule (paper's side = positive; docs/theory.md (T50))."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    if lo > 0:
        return REPRODUCES
    if hi < 0:
        return FAILS
    return INCONCLUSIVE


# ============================================================ ratios of means, equivalence, joint tests
@dataclass(frozen=True)
class RatioInterval:
    """Fieller interval of a ratio of means E[num]/E[den] (docs/theory.md (T54)); lo/hi are
    NaN where the set is unbounded (the denominator's mean is not significantly ≠ 0)."""

    estimate: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    level: float
    df: int


def fieller(num, den, level: float) -> RatioInterval:
    """Ratio of means over axis 0 (G iid replicates, e.g. batch-means groups) with Fieller's
    interval at t_{1−α/2, G−1} (docs/theory.md (T54)): the R with
    (n̄ − R d̄)² ≤ t² · (s_nn − 2R s_nd + R² s_dd)/G. Exact for normal replicates at any
    G ≥ 2 (unlike the delta method, it carries the denominator's noise and is asymmetric)."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    G = num.shape[0]
    if G < 2:
        raise ValueError("Fieller's interval needs at least 2 replicates")
    a, b = num.mean(0), den.mean(0)
    dn, dd = num - a, den - b
    snn, sdd, snd = [(x * y).sum(0) / (G - 1) / G for x, y in ((dn, dn), (dd, dd), (dn, dd))]
    q2 = tquantile(1 - (1 - level) / 2, G - 1) ** 2
    A = b * b - q2 * sdd
    B = a * b - q2 * snd
    C = a * a - q2 * snn
    disc = B * B - A * C
    with np.errstate(invalid="ignore", divide="ignore"):
        R = a / b
        root = np.sqrt(np.where(disc >= 0, disc, np.nan))
        r1, r2 = (B - root) / A, (B + root) / A
        bounded = (A > 0) & (disc >= 0)
        lo = np.where(bounded, np.minimum(r1, r2), np.nan)
        hi = np.where(bounded, np.maximum(r1, r2), np.nan)
    return RatioInterval(R, lo, hi, float(level), G - 1)


def bonferroni_level(level: float, m: int) -> float:
    """Per-cell level whose m intervals hold simultaneously with probability ≥ ``level``
    under ANY dependence between them (union bound; docs/theory.md (T56))."""
    return 1 - (1 - float(level)) / max(int(m), 1)


def _sign_patterns(G: int, n_random: int, rng: np.random.Generator) -> np.ndarray:
    if G <= 16:  # all 2^G patterns: the exact permutation distribution
        return 1 - 2 * ((np.arange(2**G)[:, None] >> np.arange(G)[None]) & 1).astype(float)
    s = rng.choice([-1.0, 1.0], size=(n_random, G))
    s[0] = 1.0
    return s


def signflip_max_t(d, *, n_random: int = 20000, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """Joint test that every cell's mean is 0 (docs/theory.md (T55)). ``d``: (G, C) — G
    independent replicates (groups) of C dependent cells. Statistic max_c |t_c| with
    t_c = mean/(sd/√G); its null distribution is that of the same statistic over the sign
    flips of whole replicate vectors, exact (all 2^G) for G ≤ 16. Valid under any
    dependence between cells, given replicates independent and symmetric about 0 under the
    null. Returns (t per cell, max |t|, p-value)."""
    d = np.asarray(d, float).reshape(np.shape(d)[0], -1)
    G = d.shape[0]
    signs = _sign_patterns(G, n_random, np.random.default_rng(seed))
    flipped = signs[:, :, None] * d[None]  # (S, G, C)
    m = flipped.mean(1)
    s = flipped.std(1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tt = np.abs(m) / (s / math.sqrt(G))
    tt = np.where(np.isfinite(tt), tt, 0.0)
    stat = tt.max(1)
    t_obs = d.mean(0) / (d.std(0, ddof=1) / math.sqrt(G))
    obs = float(np.nanmax(np.abs(t_obs))) if t_obs.size else math.nan
    p = float(np.mean(stat >= obs - 1e-12 * max(obs, 1.0)))
    return t_obs, obs, p


def equivalence_verdict(lo, hi, lo_simul, hi_simul, margin: float) -> str:
    """Verdict of a claim of equality "measured = theory" over one or more cells, from the
    intervals of the relative deviation δ = measured/theory − 1 (docs/theory.md (T57)):
    every cell's interval inside [−margin, margin] → reproduces (an intersection–union
    equivalence test: no multiplicity correction needed); some cell's simultaneous
    (Bonferroni) interval entirely outside it → does not reproduce; else (or an unbounded
    interval) inconclusive. ``margin`` is declared in the config before the run."""
    lo, hi, lo_s, hi_s = (np.atleast_1d(np.asarray(v, float)) for v in (lo, hi, lo_simul, hi_simul))
    m = float(margin)
    if lo.size == 0:
        return INCONCLUSIVE
    if np.any((lo_s > m) | (hi_s < -m)):
        return FAILS
    if np.all(np.isfinite(lo) & np.isfinite(hi)) and np.all((lo >= -m) & (hi <= m)):
        return REPRODUCES
    return INCONCLUSIVE


def replicates_needed(half_width: float, target: float, n: int) -> int | None:
    """Replicates (groups of the same size) at which a half-width ∝ 1/√n falls to ``target``:
    ⌈n (half_width/target)²⌉ (docs/theory.md (T57)); None if not finite or target ≤ 0."""
    if not (math.isfinite(half_width) and math.isfinite(target)) or target <= 0:
        return None
    return max(int(n), math.ceil(n * (half_width / target) ** 2))


def equivalence_t(
    estimate: float, se: float, df: float, expected: float, margin: float, level: float
) -> tuple[str, float]:
    """Equivalence verdict of one estimate with a t-interval estimate ± t_{1−α/2, df}·se
    against expected ± margin ((T46), (T57)); returns (verdict, half-width). No finite
    interval (df < 1 or se not finite) → inconclusive."""
    hw = float(tquantile(1 - (1 - float(level)) / 2, df) * se) if df >= 1 and math.isfinite(se) else math.nan
    lo, hi = estimate - expected - hw, estimate - expected + hw
    return equivalence_verdict(lo, hi, lo, hi, margin), hw


# ============================================================ per-seed slopes, margins, power
# docs/theory.md (T150)–(T153). The runs of one seed share its initialisation and data order
# across the levels, so the (level, seed) points of one seed are not independent and a seed
# may respond to the level differently from another (seed × level interaction). One OLS line
# over all points with N − 2 df ((T48)) then undercovers. The per-seed slope is the unit of
# replication instead: each seed's own OLS slope over its levels, then a one-sample
# t-interval over seeds on n − 1 df, exact for normal seed slopes whatever the interaction.


def seed_slopes(x_levels: Sequence[float], table) -> np.ndarray:
    """Each seed's OLS slope of y on x over the levels it has (docs/theory.md (T150)).
    ``table``: (n_seeds, k) values, NaN where a seed has no completed run at a level; a seed
    with fewer than 2 finite levels gets NaN. Batched: (..., n_seeds, k)."""
    x = np.asarray(x_levels, dtype=float)
    y = np.asarray(table, dtype=float)
    ok = np.isfinite(y)
    w = ok.astype(float)
    cnt = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = (w * x).sum(-1) / cnt
        xc = np.where(ok, x - xm[..., None], 0.0)
        ym = np.where(ok, y, 0.0).sum(-1) / cnt
        yc = np.where(ok, y - ym[..., None], 0.0)
        sxx = (xc * xc).sum(-1)
        b = (xc * yc).sum(-1) / sxx
    return np.where((cnt >= 2) & (sxx > 0), b, np.nan)


def seed_slope_t(x_levels: Sequence[float], table, level: float) -> Interval:
    """Mean of the per-seed slopes with its t-interval b̄ ± t_{1−α/2, n−1}·s_b/√n over the n
    seeds with a slope (docs/theory.md (T150)); se NaN for n < 2. Batched over leading axes."""
    b = seed_slopes(x_levels, table)
    n = np.isfinite(b).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(b, axis=-1) if b.size else np.nan
        sd = np.sqrt(np.nansum((b - np.expand_dims(mean, -1)) ** 2, axis=-1) / (n - 1))
        se = np.where(n >= 2, sd / np.sqrt(n), np.nan)
    df = np.where(n >= 2, n - 1.0, np.nan)
    if np.ndim(mean) == 0:
        return Interval(float(mean), float(se), float(df), level)
    return Interval(mean, se, df, level)


def margin_verdict(lo: float, hi: float, margin: float) -> str:
    """The decision rule with a declared smallest effect of interest δ = ``margin`` > 0
    (paper's side positive; docs/theory.md (T151)), from one two-sided interval [lo, hi]:

    - reproduces: lo > 0 and hi ≥ δ (the effect is on the paper's side and not shown to be
      smaller than δ);
    - does not reproduce: hi < 0 (the opposite side), or −δ < lo and hi < δ (the effect is
      smaller than δ either way: two one-sided tests, TOST, at (1 − level)/2 each);
    - inconclusive: otherwise, or an interval that is not finite.

    An interval of full width below δ always decides."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    m = float(margin)
    if hi < 0 or (lo > -m and hi < m):
        return FAILS
    if lo > 0:
        return REPRODUCES
    return INCONCLUSIVE


def _chi_nodes(df: int, nodes: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature of s/σ ~ χ_df/√df: Gauss–Legendre nodes on its quantile scale (equal mass)."""
    from scipy.stats import chi2

    u, wt = np.polynomial.legendre.leggauss(nodes)
    p = (u + 1) / 2
    return np.sqrt(chi2.ppf(p, df) / df), wt / 2


def decision_probabilities(effect: float, sd: float, n: int, margin: float, level: float) -> dict[str, float]:
    """Probabilities of the three verdicts of :func:`margin_verdict` on the t-interval of a
    mean of n iid normal per-seed effects (mean ``effect``, SD ``sd``) (docs/theory.md (T152)):
    given s, the estimate is N(effect, sd²/n) and the half-width w = t_{1−α/2,n−1}·s/√n, so
    each verdict is a set of estimates; integrated over s ~ sd·χ_{n−1}/√(n−1) by quadrature."""
    from scipy.stats import norm

    if n < 2 or not (sd > 0):
        return {REPRODUCES: math.nan, FAILS: math.nan, INCONCLUSIVE: math.nan}
    r, wt = _chi_nodes(n - 1)
    se = sd / math.sqrt(n)
    w = tquantile(1 - (1 - level) / 2, n - 1) * r * se
    m = float(margin)
    cdf = lambda v: norm.cdf((v - effect) / se)
    p_rep = 1 - cdf(np.maximum(w, m - w))  # est > w and est ≥ m − w
    p_opp = cdf(-w)  # est < −w
    lo_eq, hi_eq = np.maximum(w - m, -w), m - w  # |est| + w < m, not already est < −w
    p_eq = np.where(hi_eq > lo_eq, cdf(hi_eq) - cdf(lo_eq), 0.0)
    rep, fail = float(wt @ p_rep), float(wt @ (p_opp + p_eq))
    return {REPRODUCES: rep, FAILS: fail, INCONCLUSIVE: max(0.0, 1 - rep - fail)}


def seeds_to_decide(sd: float, margin: float, level: float, power: float = POWER, n_min: int = 2, cap: int = 200):
    """Smallest n ≥ max(2, n_min) at which the rule of (T151) decides correctly with probability
    ≥ ``power`` both at a true effect of exactly δ (reproduces) and at 0 (does not reproduce)
    (docs/theory.md (T152)); None above ``cap`` or not estimable."""
    if not (math.isfinite(sd) and sd >= 0 and margin > 0):
        return None
    if sd == 0:  # every seed the same: any interval has width 0 and decides
        return max(2, int(n_min))
    for n in range(max(2, int(n_min)), cap + 1):
        at_d = decision_probabilities(margin, sd, n, margin, level)[REPRODUCES]
        at_0 = decision_probabilities(0.0, sd, n, margin, level)[FAILS]
        if min(at_d, at_0) >= power:
            return n
    return None


def simulate_seed_design(
    x_levels: Sequence[float],
    n_seeds: int,
    *,
    slope: float,
    noise_sd: float,
    seed_sd: float,
    interaction_sd: float,
    level: float,
    reps: int = 4000,
    seed: int = 0,
) -> dict[str, float]:
    """Coverage of the slope intervals at a design (docs/theory.md (T153)): n_seeds seeds, each
    run at every level; y = slope·x + a_i + c_i·(x − x̄) + e, seed effect a_i ~ N(0, seed_sd²)
    (additive), interaction c_i ~ N(0, interaction_sd²), run noise e ~ N(0, noise_sd²).
    Returns the coverage of the true mean slope by the per-seed interval (T150) and by the
    pooled OLS interval (T48), over ``reps`` simulated designs."""
    x = np.asarray(x_levels, dtype=float)
    rng = np.random.default_rng(seed)
    a = rng.normal(0, seed_sd, (reps, n_seeds, 1))
    c = rng.normal(0, interaction_sd, (reps, n_seeds, 1))
    y = slope * x + a + c * (x - x.mean()) + rng.normal(0, noise_sd, (reps, n_seeds, x.size))
    iv = seed_slope_t(x, y, level)
    per_seed = float(np.mean((iv.lo <= slope) & (slope <= iv.hi)))
    pooled = slope_t(np.tile(x, n_seeds), y.reshape(reps, -1), level)
    return {
        "per_seed": per_seed,
        "pooled_ols": float(np.mean((pooled.lo <= slope) & (slope <= pooled.hi))),
    }


def window_rise(values, window: int) -> np.ndarray:
    """Rise of the least-squares line through each trailing window of ``window`` values:
    slope × (window − 1), at every end index ≥ window − 1 (NaN before) (docs/theory.md (T154);
    the same line as igrm.tidy.runs.plateau)."""
    y = np.asarray(values, dtype=float)
    out = np.full(y.shape, np.nan)
    x = np.arange(window, dtype=float) - (window - 1) / 2
    for e in range(window - 1, y.size):
        w = y[e - window + 1 : e + 1]
        out[e] = float(x @ (w - w.mean()) / (x @ x)) * (window - 1)
    return out


def levelled_off_epoch(values, window: int, max_rise: float) -> int | None:
    """First epoch (1-based) from which the curve has levelled off for good (docs/theory.md
    (T154)): the trailing window's fitted rise is ≤ ``max_rise`` there and at every later epoch.
    None if it never does (or the curve is shorter than the window)."""
    r = window_rise(values, window)
    ok = np.isfinite(r) & (r <= max_rise)
    if not ok.size or not ok[-1]:
        return None
    bad = np.flatnonzero(~ok)  # never empty for window ≥ 2: the first window − 1 epochs have no window
    return int(bad[-1] + 2) if bad.size else 1
