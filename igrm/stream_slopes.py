"""Order-slope intervals that include the between-stream variance (docs/mechanism.md (S9)).

The SGD+M error orders are fitted to the RMS over S sample streams of each h's global error.
The regression SE of that fit measures only the curve's lack of straightness for *these*
streams: over independent stream sets the fitted order scatters 2–4× more. Each stream is
an independent replicate of the whole h sweep (every h sees the same stream), so its own
log-log slope b_s is one draw of the order; the interval

    b̄ ± t_{1−α/2, S−1} · s_b/√S

(b̄, s_b the mean and SD of the S per-stream slopes) covers the mean per-stream order at its
nominal level when the b_s are normal, whatever their spread, and the RMS curve's order
differs from it by the curvature of log-mean-square vs mean-log (reported beside it).

- :func:`per_stream_slopes`: b_s from the (S, H) error array;
- :func:`stream_interval`: the t-interval above;
- :func:`coverage`: its coverage simulated at a design (S streams, H step sizes) with
  per-stream random slopes (normal or heavy-tailed) and lack-of-fit noise.
"""

from __future__ import annotations

import math

import numpy as np

from .orders import loglog_slope
from .stats import tquantile


def per_stream_slopes(h, errors) -> np.ndarray:
    """Least-squares slope of log(error_s) on log(h) for each stream (row) of ``errors`` (S, H)."""
    return np.array([loglog_slope(h, e)[0] for e in np.atleast_2d(np.asarray(errors, float))])


def stream_interval(slopes, level: float) -> dict:
    """Mean per-stream slope with its t-interval on S−1 df (docs/mechanism.md (S9)): ``estimate``,
    ``se`` = s_b/√S, ``df``, ``lo``, ``hi`` (NaN below 2 finite slopes)."""
    b = np.asarray(slopes, float)
    b = b[np.isfinite(b)]
    S = b.size
    if S < 2:
        return {
            "estimate": float(b.mean()) if S else math.nan,
            "se": math.nan,
            "df": S - 1,
            "lo": math.nan,
            "hi": math.nan,
        }
    se = float(b.std(ddof=1) / math.sqrt(S))
    hw = float(tquantile(1 - (1 - float(level)) / 2, S - 1) * se)
    m = float(b.mean())
    return {"estimate": m, "se": se, "df": S - 1, "lo": m - hw, "hi": m + hw}


def coverage(
    *, streams: int, n_h: int, level: float, reps: int, slope_sd: float, noise_sd: float, tails: str, seed: int
) -> dict:
    """Coverage of :func:`stream_interval` by simulation: per replicate, S streams with
    log error_s(h) = a_s + (p + u_s) log h + e_sh over n_h log-spaced h in [5e−3, 8e−2],
    p = 2, u_s ~ slope_sd·N(0,1) (``tails`` = 'normal') or slope_sd·t₃/√3 ('t3'), a_s ~ N(0,1),
    e_sh ~ noise_sd·N(0,1). The target is p (the mean per-stream order). Returns the coverage
    of the stream interval and, for comparison, of the naive interval of the RMS curve's
    order (its regression SE, n_h − 2 df), with their Monte-Carlo SEs."""
    rng = np.random.default_rng(int(seed))
    h = np.geomspace(5e-3, 8e-2, int(n_h))
    x = np.log(h)
    hit_s = hit_n = 0
    tq = tquantile(1 - (1 - float(level)) / 2, int(n_h) - 2)
    for _ in range(int(reps)):
        u = rng.standard_normal(streams) if tails == "normal" else rng.standard_t(3, streams) / math.sqrt(3)
        a = rng.standard_normal(streams)
        loge = a[:, None] + (2.0 + slope_sd * u)[:, None] * x[None, :] + noise_sd * rng.standard_normal((streams, n_h))
        iv = stream_interval(per_stream_slopes(h, np.exp(loge)), level)
        hit_s += iv["lo"] <= 2.0 <= iv["hi"]
        slope, se, _ = loglog_slope(h, np.sqrt(np.mean(np.exp(2 * loge), axis=0)))
        hit_n += slope - tq * se <= 2.0 <= slope + tq * se
    cov_s, cov_n = hit_s / reps, hit_n / reps
    return {
        "stream": cov_s,
        "stream_mc_se": math.sqrt(cov_s * (1 - cov_s) / reps),
        "naive": cov_n,
        "naive_mc_se": math.sqrt(cov_n * (1 - cov_n) / reps),
    }
