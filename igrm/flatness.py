"""Flatness compared at matched training loss (docs/mechanism.md (S6), (S7)).

Sharpness changes along training (progressive sharpening, or the fall from a sharp
initialisation), so comparing runs of different β at the same step or epoch confounds β
with training progress. Instead every run's sharpness records (λ_max, tr H, ‖∇E‖²) are read
at common levels of the loss they were measured on, by the first-crossing linear
interpolation of the explicit study (:func:`igrm.explicit_study.at_loss_level`,
docs/theory.md (T73)); no second procedure.

- :func:`common_levels`: levels every run reaches and starts above (S6);
- :func:`at_levels`: one run's values at those levels, each with the loss ratio of the
  two records around its crossing (the range check of (S7));
- :func:`by_level`: every run's values at each level, with the level's widest bracket (the
  matched-loss claim rows, igrm.claims.eos and igrm.claims.sharpness_runs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .explicit_study import at_loss_level


def common_levels(*, losses: Sequence[Sequence[float]], n_levels: int) -> np.ndarray:
    """``n_levels`` loss levels, log-spaced strictly inside (ℓ_lo, ℓ_hi) (docs/mechanism.md
    (S6)): ℓ_hi = the smallest first record over the runs (every run starts above it),
    ℓ_lo = the largest lowest record (every run reaches it). Empty if ℓ_lo ≥ ℓ_hi (some
    run never gets below where another starts) or a run has no finite record."""
    firsts, lows = [], []
    for loss in losses:
        v = np.asarray(loss, float)
        v = v[np.isfinite(v)]
        if not v.size:
            return np.array([])
        firsts.append(v[0])
        lows.append(v.min())
    hi, lo = min(firsts), max(lows)
    if not (lo < hi) or lo <= 0 or int(n_levels) < 1:
        return np.array([])
    return np.exp(np.linspace(math.log(hi), math.log(lo), int(n_levels) + 2)[1:-1])


def at_levels(*, loss: Sequence[float], values: Mapping[str, Sequence[float]], levels: Sequence[float]) -> dict:
    """One run's ``values`` at every level (first crossing, linear between the two records
    around it: :func:`igrm.explicit_study.at_loss_level`, (T73)), as arrays over ``levels``,
    plus ``bracket``: loss[i−1]/loss[i] of those two records (1 when the first record is
    already at or below the level; NaN where the level is not reached) (docs/mechanism.md (S7))."""
    loss = np.asarray(loss, float)
    s = np.arange(loss.size, dtype=float)
    out = {k: np.full(len(levels), np.nan) for k in values}
    bracket = np.full(len(levels), np.nan)
    for j, level in enumerate(levels):
        r = at_loss_level(s=s, loss=loss, level=float(level), values=values)
        for k in values:
            out[k][j] = r[k]
        if math.isfinite(r["s"]):
            i = int(math.ceil(r["s"]))
            bracket[j] = 1.0 if i == 0 else float(loss[i - 1] / loss[i])
    return {**out, "bracket": bracket}


def by_level(*, runs: Sequence[tuple], quantities: Sequence[str], levels: Sequence[float]) -> list[tuple]:
    """Per level j of ``levels``: (j, level, one row per run with its beta, seed, ``level`` j,
    ``bracket`` and each of ``quantities`` at the level (:func:`at_levels`, (S6)), the widest
    bracket over the runs ((S7): the level is judged only if every run's is narrow).
    ``runs``: (β, seed, records) with the records in order, a ``loss`` column and one per
    quantity."""
    vals = []
    for beta, seed, r in runs:
        a = at_levels(loss=r["loss"].to_numpy(), values={q: r[q].to_numpy() for q in quantities}, levels=levels)
        for j in range(len(levels)):
            vals.append(
                {"beta": beta, "seed": seed, "level": j, "bracket": a["bracket"][j]} | {q: a[q][j] for q in quantities}
            )
    v = pd.DataFrame(vals)
    out = []
    for j, level in enumerate(levels):
        vj = v[v["level"] == j]
        out.append((j, level, vj, float(vj["bracket"].max())))
    return out
