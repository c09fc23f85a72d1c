"""Claims rows of the error-order stage: one per fitted order on its primary window
(tolerance: config ``orders.slope_tol``, fixed before measuring)."""

from __future__ import annotations

import math

import pandas as pd

from . import INCONCLUSIVE, frame, row, within

_FLOW_TAG = {"flow (1)": "flow1", "flow (2)": "flow2", "SGD+M flow": "sgdm_flow",
             "SGD+M flow without h/4 terms": "sgdm_flow_noreg"}
_COMP_TEXT = {
    "naive": "GD+M from rest (x_{-1}=x_0) vs {flow} from x_0",
    "manifold": "GD+M started on the slow manifold to O(h) (M7) vs {flow} from x_0",
    "manifold2": "GD+M started on the slow manifold to O(h^2) (M7) vs {flow} from x_0",
    "shifted": "GD+M from rest vs {flow} from the shifted start x_0 + h b/(1-b)^2 grad E(x_0) (M4), t >= t_burn",
    "sgdm": "SGD+M from rest vs {flow} from x_0 (RMS over sample streams)",
    "sgdm_deterministic": "SGD+M on the constant stream (GD+M) from rest vs {flow} from x_0",
}


def beta_tag(beta: float) -> str:
    """Canonical β in ids: 0.9 -> 'beta0.9', 0.50 -> 'beta0.5'."""
    return f"beta{float(beta):g}"


def order_claims(slopes_df: pd.DataFrame, *, slope_tol) -> pd.DataFrame:
    """One claims row per (problem, β, comparison, flow) on its primary window.

    ``slopes_df``: :func:`igrm.orders.fit_slopes`. Verdict: |slope − expected| ≤ ``slope_tol``
    (config ``orders.slope_tol``, fixed before any measurement) via :func:`igrm.claims.within`;
    a fit whose standard error exceeds the tolerance is inconclusive.
    """
    tol = float(slope_tol)
    rows = []
    for r in slopes_df[slopes_df["primary"]].itertuples(index=False):
        part = "sgdm" if r.comparison.startswith("sgdm") else "gdm"
        cid = f"order/{part}/{r.problem}/{beta_tag(r.beta)}/{r.comparison}/{_FLOW_TAG.get(r.flow, r.flow)}"
        verdict = within(r.slope, r.expected_slope, tol)
        if math.isfinite(r.slope_se) and r.slope_se > tol:
            verdict = INCONCLUSIVE
        text = _COMP_TEXT[r.comparison].replace("{flow}", r.flow)
        claim = f"{text}: global error O(h^{r.expected_slope:g}) ({r.problem}, beta={r.beta:g})"
        source = ("docs/theory.md (T19); docs/modified_flows.md §4" if part == "sgdm"
                  else "docs/theory.md (T5), (T6); docs/modified_flows.md §2-3")
        detail = (f"log-log fit over {r.n_points} step sizes h in [{r.h_min:.3g}, {r.h_max:.3g}], window {r.window}; "
                  f"smallest error {r.min_error:.3g}, largest reference error {r.max_reference_error:.2g}")
        rows.append(row(cid, claim, source, float(r.expected_slope), float(r.slope), tol, verdict,
                                uncertainty=float(r.slope_se), detail=detail))
    return frame(rows)

