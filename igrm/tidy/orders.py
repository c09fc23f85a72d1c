"""Tidy tables of the error-order stage (CSV under results/tidy/) from the result files of
:mod:`igrm.orders` (``(arrays, attrs)`` as :func:`igrm.pipeline.io.read_h5` gives them); the fitted
orders of a table are :func:`igrm.orders.fit_slopes` (statistics, with the science)."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..orders import DET_FLOWS, SGDM_FLOWS, fit_slopes


def orders_tables(results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(errors, slopes) of one family's result files (gdm, sgdm, sgdm_real, or higher = gdm3): the long
    error table and the fitted slope of each of its (problem, β, comparison, flow, window)."""
    frames = [f for f in (tidy_orders(a, t) for a, t in results) if len(f)]
    errors = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return errors, fit_slopes(errors)


TIDY_COLUMNS = ["problem", "beta", "comparison", "flow", "window", "h", "eps", "error", "error_std",
                "n_streams", "reference_error"]


def _label(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def tidy_orders(arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (comparison, flow, window, h) of a gdm, gdm3 or sgdm result.

    Columns: problem, beta, comparison, flow, window, h, eps, error, error_std (sgdm: std
    across streams of the per-stream error; NaN otherwise), n_streams, reference_error.
    For ``sgdm`` the error is the RMS over streams.
    """
    kind = _label(attrs.get("kind", "gdm" if "errors" in arrays else "sgdm"))
    problem = _label(attrs.get("problem", "two_factor"))
    beta = float(attrs.get("beta", math.nan))
    h = np.asarray(arrays["h"], dtype=np.float64)
    eps = np.asarray(arrays.get("eps", np.full(h.shape, np.nan)), dtype=np.float64)
    rows = []

    def add(comp, flow, window, err, std=None, ns=1, ref=None):
        for j in range(len(h)):
            rows.append({"problem": problem, "beta": beta, "comparison": comp, "flow": flow, "window": window,
                         "h": h[j], "eps": eps[j], "error": float(err[j]),
                         "error_std": math.nan if std is None else float(std[j]), "n_streams": ns,
                         "reference_error": math.nan if ref is None else float(ref[j])})

    if kind == "gdm":
        comps = [_label(v) for v in arrays["comparisons"]]
        flows = [_label(v) for v in arrays["flows"]]
        for ci, comp in enumerate(comps):
            for fi, flow in enumerate(flows):
                ref = arrays["reference_error"][ci, fi]
                add(comp, flow, "all", arrays["errors"][ci, fi], ref=ref)
                add(comp, flow, "late", arrays["errors_late"][ci, fi], ref=ref)
    elif kind == "gdm3":      # the O(h³) study (docs/modified_flows.md §7)
        for fi, flow in enumerate(_label(v) for v in arrays["flows"]):
            add("manifold3", flow, "all", arrays["errors"][fi], ref=arrays["reference_error"][fi])
        if "shifted3_errors" in arrays:  # from rest vs flow (3) from x_0 + Δ₂ (T94), t ≥ t_burn
            add("shifted3", "flow (3)", "late", arrays["shifted3_errors"], ref=arrays["shifted3_reference_error"])
        # the linear series, orders R (docs/modified_flows.md §7.5), run in the lstsq job
        for ri, R in enumerate(np.asarray(arrays.get("series_orders", [])).astype(int)):
            add("series", f"order {R}", "all", arrays["series_errors"][ri], ref=arrays["series_reference_error"])
    elif kind == "limits":    # limit sharpness of GD+M vs the flows' (docs/modified_flows.md §7.6)
        Bt = np.asarray(arrays["beta"], dtype=np.float64)
        flows = [_label(v) for v in arrays["flows"]]
        rows_h = np.asarray(arrays["h"], dtype=np.float64)
        for b in dict.fromkeys(Bt.tolist()):
            m = Bt == b
            for fi, flow in enumerate(flows):
                if b == 0.0 and flow == "flow (3)":   # Δ₂ = 0 at β = 0: the same lane as "from x_0 + Δ₂"
                    continue
                for j in np.flatnonzero(m):
                    rows.append({"problem": problem, "beta": float(b), "comparison": "limit", "flow": flow,
                                 "window": "all", "h": rows_h[j], "eps": float(arrays["eps"][j]),
                                 "error": float(arrays["errors"][fi, j]), "error_std": math.nan, "n_streams": 1,
                                 "reference_error": float(arrays["reference_error"][fi, j])})
    elif kind in ("sgdm", "sgdm_real"):   # sgdm_real: igrm.sgdm_real (check_* NaN on unchecked streams)
        for flow, key, chk in ((SGDM_FLOWS[0], "err_full", "check_full"), (SGDM_FLOWS[1], "err_noreg", "check_noreg")):
            e = np.asarray(arrays[key], dtype=np.float64)  # (S, H)
            add("sgdm", flow, "all", np.sqrt(np.mean(e * e, axis=0)), std=e.std(axis=0, ddof=1) if len(e) > 1 else None,
                ns=e.shape[0], ref=np.nanmax(arrays[chk], axis=0))
        for i, (flow, key) in enumerate(zip(DET_FLOWS, ("det_err_full", "det_err_noreg", "det_err_flow2", "det_err_flow1"))):
            add("sgdm_deterministic", flow, "all", arrays[key], ref=arrays["det_check"][i])
    else:
        raise ValueError(f"unknown result kind {kind!r}")
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)
