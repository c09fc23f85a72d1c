"""Tidy tables of the error-order stage (CSV under results/tidy/) from the result files of
:mod:`igrm.orders` (``(arrays, attrs)`` as :func:`igrm.pipeline.io.read_h5` gives them); the fitted
orders of a table are :func:`igrm.orders.fit_slopes` (statistics, with the science)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..orders import DET_FLOWS, SGDM_FLOWS, fit_slopes, flow_labels, gd_label


def orders_tables(results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(errors, slopes) of one family's result files (gdm, sgdm, sgdm_real, or higher = gdm3): the long
    error table and the fitted slope of each of its (problem, β, comparison, flow, window)."""
    results = list(results)
    frames = [f for f in (tidy_orders(a, t) for a, t in results) if len(f)]
    errors = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return errors, _with_stream_slopes(fit_slopes(errors), results)


def _with_stream_slopes(slopes: pd.DataFrame, results) -> pd.DataFrame:
    """The SGD+M rows' per-stream order (igrm.stream_slopes, docs/mechanism.md (S9)):
    ``stream_slope`` (mean of the S per-stream log-log slopes), ``stream_slope_se`` (their
    SD/√S) and ``stream_df`` (S − 1); NaN for every other row."""
    from ..stream_slopes import per_stream_slopes

    slopes = slopes.assign(stream_slope=np.nan, stream_slope_se=np.nan, stream_df=np.nan)
    for arrays, attrs in results:
        if _label(attrs.get("kind", "")) not in ("sgdm", "sgdm_real"):
            continue
        for flow, key in zip(SGDM_FLOWS, ("err_full", "err_noreg")):
            b = per_stream_slopes(arrays["h"], arrays[key])
            b = b[np.isfinite(b)]
            at = (
                (slopes["problem"] == _label(attrs.get("problem", "two_factor")))
                & np.isclose(slopes["beta"].astype(float), float(attrs.get("beta", np.nan)))
                & (slopes["comparison"] == "sgdm")
                & (slopes["flow"] == flow)
            )
            if b.size >= 2:
                slopes.loc[at, ["stream_slope", "stream_slope_se", "stream_df"]] = [
                    float(b.mean()),
                    float(b.std(ddof=1) / np.sqrt(b.size)),
                    float(b.size - 1),
                ]
    return slopes


TIDY_COLUMNS = [
    "problem",
    "beta",
    "comparison",
    "flow",
    "window",
    "h",
    "eps",
    "error",
    "error_std",
    "n_streams",
    "reference_error",
]


def _label(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def tidy_orders(arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (comparison, flow, window, h) of a gdm, gdm3, limits, sgdm or sgdm_real result.

    Columns: problem, beta, comparison, flow, window, h, eps, error, error_std (sgdm: std
    across streams of the per-stream error; NaN otherwise), n_streams, reference_error.
    For ``sgdm`` the error is the RMS over streams.
    """
    kind = _label(attrs.get("kind", "gdm" if "errors" in arrays else "sgdm"))
    if kind not in _KIND_ROWS:
        raise ValueError(f"unknown result kind {kind!r}")
    h = np.asarray(arrays["h"], dtype=np.float64)
    grid = {
        "problem": _label(attrs.get("problem", "two_factor")),
        "beta": float(attrs.get("beta", math.nan)),
        "h": h,
        "eps": np.asarray(arrays.get("eps", np.full(h.shape, np.nan)), dtype=np.float64),
    }
    return pd.DataFrame(_KIND_ROWS[kind](arrays, grid), columns=TIDY_COLUMNS)


def _curve(grid, comp, flow, window, err, std=None, ns=1, ref=None) -> list[dict]:
    """The rows of one error curve over the h grid (``grid``: problem, beta, h, eps)."""
    h, eps = grid["h"], grid["eps"]
    return [
        {
            "problem": grid["problem"],
            "beta": grid["beta"],
            "comparison": comp,
            "flow": flow,
            "window": window,
            "h": h[j],
            "eps": eps[j],
            "error": float(err[j]),
            "error_std": math.nan if std is None else float(std[j]),
            "n_streams": ns,
            "reference_error": math.nan if ref is None else float(ref[j]),
        }
        for j in range(len(h))
    ]


def _gdm_rows(arrays, grid) -> list[dict]:
    rows = []
    flows = [_label(v) for v in arrays["flows"]]
    for ci, comp in enumerate(_label(v) for v in arrays["comparisons"]):
        for fi, flow in enumerate(flows):
            ref = arrays["reference_error"][ci, fi]
            rows += _curve(grid, comp, flow, "all", arrays["errors"][ci, fi], ref=ref)
            rows += _curve(grid, comp, flow, "late", arrays["errors_late"][ci, fi], ref=ref)
    return rows


def _gdm3_rows(arrays, grid) -> list[dict]:
    """The O(h³) study (docs/modified_flows.md §7)."""
    rows = []
    for fi, flow in enumerate(_label(v) for v in arrays["flows"]):
        rows += _curve(grid, "manifold3", flow, "all", arrays["errors"][fi], ref=arrays["reference_error"][fi])
    if "shifted3_errors" in arrays:  # from rest vs flow (3) from x_0 + Δ₂ (T94), t ≥ t_burn
        rows += _curve(
            grid, "shifted3", "flow (3)", "late", arrays["shifted3_errors"], ref=arrays["shifted3_reference_error"]
        )
    # the linear series, orders R (docs/modified_flows.md §7.5), run in the lstsq job
    for ri, R in enumerate(np.asarray(arrays.get("series_orders", [])).astype(int)):
        rows += _curve(
            grid, "series", f"order {R}", "all", arrays["series_errors"][ri], ref=arrays["series_reference_error"]
        )
    return rows


def _limits_rows(arrays, grid) -> list[dict]:
    """Limit sharpness of GD+M vs the flows' (docs/modified_flows.md §7.6, §8.6): one row per
    (β, ε, flow) in window "all" (the fitted grid: every ε, or the ``fitted`` ones) and, where the
    result has a range-of-validity grid (``in_range``, (M27)), one per range ε in window "range"
    (never a primary window: not fitted into claims, only reported)."""
    rows = []
    Bt = np.asarray(arrays["beta"], dtype=np.float64)
    flows = [_label(v) for v in arrays["flows"]]
    comparison = _label(np.asarray(arrays["comparison"]).item()) if "comparison" in arrays else "limit"
    windows = {"all": np.asarray(arrays.get("fitted", np.ones(Bt.size, dtype=bool)), dtype=bool)}
    if "in_range" in arrays:
        windows["range"] = np.asarray(arrays["in_range"], dtype=bool)
    for b in dict.fromkeys(Bt.tolist()):
        for fi, flow in enumerate(flows):
            if b == 0.0 and flow == "flow (3)":  # Δ₂ = 0 at β = 0: the same lane as "from x_0 + Δ₂"
                continue
            for window, j in ((w, j) for w, m in windows.items() for j in np.flatnonzero((Bt == b) & m)):
                rows.append(
                    {
                        "problem": grid["problem"],
                        "beta": float(b),
                        "comparison": comparison,
                        "flow": flow,
                        "window": window,
                        "h": grid["h"][j],
                        "eps": float(arrays["eps"][j]),
                        "error": float(arrays["errors"][fi, j]),
                        "error_std": math.nan,
                        "n_streams": 1,
                        "reference_error": float(arrays["reference_error"][fi, j]),
                    }
                )
    return rows


def _sgdm_rows(arrays, grid) -> list[dict]:
    """sgdm and sgdm_real (igrm.sgdm_real; check_* NaN on unchecked streams): the RMS over
    streams, and the deterministic stream against each flow."""
    rows = []
    for flow, key, chk in ((SGDM_FLOWS[0], "err_full", "check_full"), (SGDM_FLOWS[1], "err_noreg", "check_noreg")):
        e = np.asarray(arrays[key], dtype=np.float64)  # (S, H)
        rows += _curve(
            grid,
            "sgdm",
            flow,
            "all",
            np.sqrt(np.mean(e * e, axis=0)),
            std=e.std(axis=0, ddof=1) if len(e) > 1 else None,
            ns=e.shape[0],
            ref=np.nanmax(arrays[chk], axis=0),
        )
    for i, (flow, key) in enumerate(
        zip(DET_FLOWS, ("det_err_full", "det_err_noreg", "det_err_flow2", "det_err_flow1"))
    ):
        rows += _curve(grid, "sgdm_deterministic", flow, "all", arrays[key], ref=arrays["det_check"][i])
    return rows


def _order_r_rows(arrays, grid) -> list[dict]:
    """GD+M vs the order-R flows and their ablations (docs/modified_flows.md §8)."""
    rows = []
    for ri, R in enumerate(np.asarray(arrays["orders"]).astype(int)):
        for k, flow in enumerate(flow_labels(int(R))):
            err = arrays["errors"][ri, k]
            if np.all(np.isnan(err)):  # R = 1 has no ablation
                continue
            rows += _curve(grid, "order_r", flow, "all", err, ref=arrays["reference_error"][ri, k])
        err = arrays["gd_errors"][ri] if "gd_errors" in arrays else np.full(len(grid["h"]), np.nan)
        if not np.all(np.isnan(err)):  # sigmoid (not a polynomial): none
            rows += _curve(grid, "gd_loss", gd_label(int(R)), "all", err)
    return rows


#: the rows of each result kind (attrs["kind"])
_KIND_ROWS = {
    "gdm": _gdm_rows,
    "gdm3": _gdm3_rows,
    "limits": _limits_rows,
    "sgdm": _sgdm_rows,
    "sgdm_real": _sgdm_rows,
    "order_r": _order_r_rows,
}
