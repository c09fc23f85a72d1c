"""Finding rows of the range of validity of the order-R flows' limit sharpness
(docs/modified_flows.md §8.6, (M27)): per β, on the declared range grid
``orders.higher.any_order_limits.range_eps`` (never fitted), the largest ε where some order
still reaches the declared accuracy ``range_tol`` and the ε where one more order stops
helping. They are findings about where the series applies, not claims: verdict "out of
range", ids ending in ``/out_of_range`` (the convention of igrm.claims, never evidence for or
against a claim).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..order_r_limits import order_of_label, range_of_validity
from . import OUT_OF_RANGE, frame, row

SOURCE = "docs/modified_flows.md §8.6 (M24), (M27) (our finding, beyond the paper)"


def _grid(g: pd.DataFrame):
    """(eps, errors (R, n), floors (R, n), orders) of one β's range rows."""
    t = g.assign(R=[order_of_label(f) for f in g["flow"]])
    err = t.pivot_table(index="R", columns="eps", values="error")
    ref = t.pivot_table(index="R", columns="eps", values="reference_error")
    return err.columns.to_numpy(), err.to_numpy(), ref.to_numpy(), err.index.to_numpy()


def _rows(problem: str, beta: float, f: dict, tol: float, eps) -> list[dict]:
    cid = f"order/any_order/{problem}/beta{beta:g}/limit_range"
    grid = f"ε ∈ {{{', '.join(f'{e:g}' for e in eps)}}}"
    at_end = f["accurate_eps"] == f["eps_max"]
    acc = (
        f"some order reaches δ_S ≤ {tol:g} at every ε of the grid (the largest ε is ≥ {f['eps_max']:g})"
        if at_end
        else f"no order reaches δ_S ≤ {tol:g} even at ε = {min(eps):g}"
        if math.isnan(f["accurate_eps"])
        else f"largest ε with some order at δ_S ≤ {tol:g}: {f['accurate_eps']:g} (order {f['accurate_order']:g})"
    )
    gain = (
        f"smallest gain δ_(R−1)/δ_R {f['min_gain']:.3g} (order {f['min_gain_order']:g} at ε = {f['min_gain_eps']:g})"
        if math.isfinite(f["min_gain"])
        else "no gain above the floor"
    )
    stop = (
        f"one more order stops helping at ε = {f['stop_eps']:g} (order {f['stop_order']:g}: δ_R ≥ δ_(R−1))"
        if math.isfinite(f["stop_eps"])
        else f"every added order still helps up to ε = {f['eps_max']:g}"
    )
    what = f"{problem}, β={beta:g}; finding, not a claim: range of validity of the order-R flows' limit sharpness"
    detail = f"declared range grid {grid} (not fitted), declared accuracy range_tol = {tol:g}; {acc}; {stop}; {gain}"
    return [
        row(
            f"{cid}/accurate/out_of_range",
            f"largest ε where some order-R flow predicts GD+M's limit sharpness to δ_S ≤ {tol:g} ({what})",
            SOURCE,
            "finding",
            f["accurate_eps"],
            f"δ_S ≤ {tol:g}",
            OUT_OF_RANGE,
            detail=detail,
        ),
        row(
            f"{cid}/ladder_stops/out_of_range",
            f"smallest ε where one more order stops helping, δ_(R−1)/δ_R ≤ 1 (NaN: none on the grid; {what})",
            SOURCE,
            "finding",
            f["stop_eps"],
            "gain ≤ 1",
            OUT_OF_RANGE,
            detail=detail,
        ),
    ]


def range_claims(errors_df: pd.DataFrame, *, range_tol) -> pd.DataFrame:
    """Two finding rows per (problem, β) of the range-of-validity rows (window "range" of the
    ``limit_slow`` comparison, igrm.tidy.orders) of ``errors_df``; none where there are none."""
    d = errors_df[(errors_df["comparison"] == "limit_slow") & (errors_df["window"] == "range")]
    rows = []
    for (problem, beta), g in d.groupby(["problem", "beta"], sort=True):
        eps, err, ref, Rs = _grid(g)
        f = range_of_validity(eps, err, ref, Rs, float(range_tol))
        rows += _rows(problem, float(beta), f, float(range_tol), np.sort(eps))
    return frame(rows)
