"""Statistics of the claims: least-squares slopes, the bootstrap over seeds within each
level, percentile intervals and the fixed verdict rule of an interval.

Verdict rule (fixed before any measurement, docs/cifar.md): a claim is a signed
statistic whose paper-predicted sign is positive; its two-sided percentile bootstrap
CI decides: entirely above 0 -> reproduces; entirely below 0 -> does not reproduce;
otherwise (or not finite) -> inconclusive.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .claims import FAILS, INCONCLUSIVE, REPRODUCES


def ols_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of y on x; y may be (B, N) (one slope per row)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    xc = x - x.mean()
    return (y - y.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)


def bootstrap_levels(levels: Sequence[np.ndarray], stat: Callable[[list[np.ndarray]], np.ndarray],
                     n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap distribution of ``stat``: each level's values (its seeds) are
    resampled with replacement, independently per level. ``stat`` gets a list of
    (B, n_level) arrays and returns (B,)."""
    rng = np.random.default_rng(seed)
    res = [np.asarray(v, dtype=float)[rng.integers(0, len(v), size=(n_boot, len(v)))] for v in levels]
    return np.asarray(stat(res), dtype=float)


def slope_bootstrap(x_levels: Sequence[float], y_levels: Sequence[np.ndarray], n_boot: int, seed: int):
    """OLS slope of y on x over every (level, seed) point, and its bootstrap draws."""
    xs = np.concatenate([np.full(len(v), x) for x, v in zip(x_levels, y_levels)])

    def stat(res):
        return ols_slope(xs, np.concatenate(res, axis=1))

    point = float(ols_slope(xs, np.concatenate([np.asarray(v, float) for v in y_levels])))
    return point, bootstrap_levels(y_levels, stat, n_boot, seed)


def percentile_ci(draws: np.ndarray, level: float) -> tuple[float, float]:
    """Two-sided percentile interval of bootstrap ``draws`` at ``level`` (e.g. 0.95)."""
    a = (1 - level) / 2
    return float(np.quantile(draws, a)), float(np.quantile(draws, 1 - a))


def ci_verdict(lo: float, hi: float) -> str:
    """The fixed verdict rule (paper's side = positive)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    if lo > 0:
        return REPRODUCES
    if hi < 0:
        return FAILS
    return INCONCLUSIVE
