"""Claims rows of the error-order stage: one per fitted order on its primary window, an
equivalence claim on the fitted order (margin: config ``orders.slope_tol``, fixed before
measuring; docs/theory.md (T46), (T57)), judged where the grid's expansion parameter
ε = hL0/(1−β)² lies inside the declared range ((T45), (T51))."""

from __future__ import annotations

import math

import pandas as pd

from ..stats import ci_verdict, equivalence_t
from . import INCONCLUSIVE, OUT_OF_RANGE, frame, row

_FLOW_TAG = {
    "flow (1)": "flow1",
    "flow (2)": "flow2",
    "SGD+M flow": "sgdm_flow",
    "SGD+M flow without h/4 terms": "sgdm_flow_noreg",
    "flow (3)": "flow3",
    "flow (3) without T term": "flow3_noT",
    "flow (3) from x_0 + Delta_2": "flow3_shifted",
    **{f"order {R}": f"order{R}" for R in range(1, 11)},
    **{f"order-{R} flow": f"flow_order{R}" for R in range(1, 6)},
    **{f"order-{R} flow without its new term": f"flow_order{R}_ablated" for R in range(2, 6)},
    **{f"GD on the order-{R} modified loss": f"gd_loss_order{R}" for R in range(1, 6)},
}
_COMP_TEXT = {
    "naive": "GD+M from rest (x_{-1}=x_0) vs {flow} from x_0",
    "manifold": "GD+M started on the slow manifold to O(h) (M7) vs {flow} from x_0",
    "manifold2": "GD+M started on the slow manifold to O(h^2) (M7) vs {flow} from x_0",
    "shifted": "GD+M from rest vs {flow} from the shifted start x_0 + h b/(1-b)^2 grad E(x_0) (M4), t >= t_burn",
    "sgdm": "SGD+M from rest vs {flow} from x_0 (RMS over sample streams)",
    "sgdm_deterministic": "SGD+M on the constant stream (GD+M) from rest vs {flow} from x_0",
    "manifold3": "GD+M started on the slow manifold to O(h^3) (T88) vs {flow} from x_0",
    "limit": "limit sharpness of GD+M from rest vs the limit of {flow}: |S_flow/S_GD+M - 1|",
    "shifted3": "GD+M from rest vs {flow} from the shifted start x_0 + Delta_2 (T94), t >= t_burn",
    "series": "GD+M on its exact slow manifold vs the {flow} truncation of the exact modified flow (T91)",
    "order_r": "GD+M started on the slow manifold of the flow to matching order (M20) vs the {flow} (M19) from x_0",
    "limit_slow": "limit sharpness of GD+M started on its slow manifold to matching order (M20) vs the limit of the {flow} (M19): |S_flow/S_GD+M - 1|",
    "gd_loss": "GD+M started on its slow manifold to matching order (M20) vs {flow} (M23), step h, from x_0",
}
#: the part of the claim id and the source of each comparison beyond the paper's
_PART = {
    "manifold3": "higher",
    "series": "higher",
    "shifted3": "higher",
    "limit": "higher",
    "order_r": "any_order",
    "gd_loss": "any_order",
    "limit_slow": "any_order",
}
_SOURCE = {
    "gdm": "docs/theory.md (T5), (T6); docs/modified_flows.md §2-3",
    "sgdm": "docs/theory.md (T19); docs/modified_flows.md §4",
    "higher": "docs/theory.md (T86)-(T95); docs/modified_flows.md §7 (beyond the paper)",
    "any_order": "docs/modified_flows.md §8 (M18)-(M24) (beyond the paper)",
}


#: ablations that must lose the order of the full flow: (comparison, flow) -> the full order
#: (docs/theory.md (T93)); each gets a second row "loses_order" beside its equivalence row
LOSES_ORDER = {
    ("manifold3", "flow (3) without T term"): 3,
    **{("order_r", f"order-{R} flow without its new term"): R for R in range(2, 6)},
}


def beta_tag(beta: float) -> str:
    """Canonical β in ids: 0.9 -> 'beta0.9', 0.50 -> 'beta0.5'."""
    return f"beta{float(beta):g}"


def _floor_text(r, part: str, floor_factor: float) -> tuple[bool, str]:
    """(floored, text) of an any-order row (docs/modified_flows.md §8.2, (M25)): floored when
    its reference's floor is not ``floor_factor`` × under the error at every h
    (min_h error/reference error < floor_factor); rows without a measured floor (gd_loss, the
    paper's parts) are never floored and say nothing."""
    ratio = float(getattr(r, "min_error_floor_ratio", math.nan))
    if part != "any_order" or not math.isfinite(ratio):
        return False, ""
    if ratio >= floor_factor:
        return False, f"; reference floor min_h error/floor {ratio:.3g} >= {floor_factor:g}"
    return True, (
        f"; NOT JUDGED: the reference floor is only {ratio:.3g}x under the error at some h (min_h error/floor; "
        f"declared >= {floor_factor:g}, orders.higher.any_order.floor_factor): the fitted order may be the floor's"
    )


def order_claims(slopes_df: pd.DataFrame, *, slope_tol, ci, max_epsilon, floor_factor) -> pd.DataFrame:
    """One claims row per (problem, β, comparison, flow) on its primary window.

    ``slopes_df``: :func:`igrm.orders.fit_slopes`. The order's interval is p̂ ± t_{n−2}·SE at
    level ``ci`` (SE from the residuals of the log-log fit: its lack of straightness); the
    verdict is the equivalence rule of igrm.stats.equivalence_verdict with margin
    ``slope_tol`` (config ``orders.slope_tol``): inside → reproduces, wholly outside → does not
    reproduce, else inconclusive (docs/theory.md (T46), (T57)). SGD+M rows (``stream_slope``
    finite) use the mean per-stream order with its t-interval over streams instead, which
    includes the between-stream variance (docs/mechanism.md (S9), igrm.stream_slopes). A grid whose largest ε exceeds
    min(``max_epsilon``, 1/(1+√β)²) (the real-root bound (T51)) is out of the expansion's
    range: its row says "out of range" with the measured slope. An any-order row (§8) whose
    reference floor is not ``floor_factor`` × under its errors (config
    ``orders.higher.any_order.floor_factor``) is inconclusive, the reason in its detail.
    """
    tol = float(slope_tol)
    rows = []
    for r in slopes_df[slopes_df["primary"]].itertuples(index=False):
        part = "sgdm" if r.comparison.startswith("sgdm") else _PART.get(r.comparison, "gdm")
        cid = f"order/{part}/{r.problem}/{beta_tag(r.beta)}/{r.comparison}/{_FLOW_TAG.get(r.flow, r.flow)}"
        verdict, hw = equivalence_t(r.slope, r.slope_se, r.n_points - 2, r.expected_slope, tol, ci)
        estimate, stream_txt = float(r.slope), ""
        sse = float(getattr(r, "stream_slope_se", math.nan))
        if math.isfinite(sse):
            # SGD+M: the interval over streams includes the between-stream variance (docs/mechanism.md (S9))
            naive = f"[{r.slope - hw:.3f}, {r.slope + hw:.3f}]"
            estimate, df_s = float(r.stream_slope), float(r.stream_df)
            verdict, hw = equivalence_t(estimate, sse, df_s, r.expected_slope, tol, ci)
            stream_txt = (
                f"order = mean of the {int(df_s) + 1} per-stream log-log slopes {estimate:.3f}, {float(ci):.0%} "
                f"t-interval over streams [{estimate - hw:.3f}, {estimate + hw:.3f}] ({int(df_s)} df; SE "
                f"{sse:.3g} includes the between-stream variance, (S9)); the RMS curve's order {r.slope:.3f} with "
                f"its regression interval {naive} (conditional on these streams, not used); "
            )
        bound = min(float(max_epsilon), 1.0 / (1.0 + math.sqrt(r.beta)) ** 2)
        eps_max = float(getattr(r, "eps_max", math.nan))
        in_range = not math.isfinite(eps_max) or eps_max <= bound
        floored, floor_txt = _floor_text(r, part, float(floor_factor))
        if not in_range:
            verdict = OUT_OF_RANGE
        elif floored:
            verdict = INCONCLUSIVE
        text = _COMP_TEXT[r.comparison].replace("{flow}", r.flow)
        what = "error" if r.comparison.startswith("limit") else "global error"
        claim = f"{text}: {what} O(h^{r.expected_slope:g}) ({r.problem}, beta={r.beta:g})"
        source = _SOURCE[part]
        if r.problem.startswith("logreg_"):  # the real-data study (igrm/sgdm_real.py)
            source += "; docs/theory.md (T96)-(T99); docs/modified_flows.md §4.5"
        detail = (
            f"log-log fit over {r.n_points} step sizes h in [{r.h_min:.3g}, {r.h_max:.3g}], window {r.window}; "
            + (
                stream_txt
                or f"{float(ci):.0%} interval of the order [{r.slope - hw:.3f}, {r.slope + hw:.3f}] (t, {r.n_points - 2} df); "
            )
            + f"eps = hL0/(1-beta)^2 <= {eps_max:.3g} "
            + (
                f"(inside the declared range <= {bound:.3g}); "
                if in_range
                else f"OUTSIDE the declared range <= {bound:.3g}: not judged; "
            )
            + f"smallest error {r.min_error:.3g}, largest reference error {r.max_reference_error:.2g}"
            + floor_txt
        )
        rows.append(
            row(
                cid,
                claim,
                source,
                float(r.expected_slope),
                estimate,
                f"±{tol:g} (equivalence)",
                verdict,
                uncertainty=float(hw),
                detail=detail,
            )
        )
        full = LOSES_ORDER.get((r.comparison, r.flow))
        if full is not None:
            # (T93): the ablation loses the order iff its interval lies wholly below full − tol
            lost = ci_verdict(full - tol - (estimate + hw), full - tol - (estimate - hw)) if in_range else OUT_OF_RANGE
            lost = INCONCLUSIVE if in_range and floored else lost
            rows.append(
                row(
                    f"{cid}/loses_order",
                    f"{text}: the ablation loses the order, slope < {full - tol:g} ({r.problem}, beta={r.beta:g})",
                    source,
                    f"< {full - tol:g}",
                    float(r.slope),
                    f"{tol:g} below order {full}",
                    lost,
                    uncertainty=float(hw),
                    detail=detail,
                )
            )
    return frame(rows)
