"""Claims rows of the toy stage (tolerances: config ``toy.claims``, docs/toy.md)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..orders import loglog_slope
from ..pipeline.config import num
from ..stats import equivalence_t
from ..toy import epsilon_threshold
from . import FAILS, INCONCLUSIVE, OUT_OF_RANGE, REPRODUCES, frame, row, within


def in_range(df: pd.DataFrame, max_epsilon) -> np.ndarray:
    """Rows whose expansion parameter ε (column ``epsilon``) is at most
    min(max_epsilon, 1/(1+√β)²): where flow (2) applies (docs/theory.md (T52), docs/toy.md)."""
    return df["epsilon"].to_numpy() <= epsilon_threshold(df["beta"].to_numpy(), max_epsilon)


def _range_note(g: pd.DataFrame) -> str:
    return "β, ε: " + ", ".join(f"{b:g}: {e:.3g}" for b, e in zip(g["beta"], g["epsilon"]))


def convergence_slope(eta, mismatch) -> tuple[float, float, int]:
    """Fitted order p of mismatch ∝ η^p (log-log least squares; slope, SE, points used)."""
    return loglog_slope(np.asarray(eta, dtype=np.float64), np.abs(np.asarray(mismatch, dtype=np.float64)))


def toy_claims(
    sweep_df: pd.DataFrame,
    finals_df: pd.DataFrame | None,
    convergence_df: pd.DataFrame | None = None,
    *,
    spearman_max,
    flow2_rel_tol,
    order_tol,
    ci,
    max_epsilon,
) -> pd.DataFrame:
    """Claims rows for the toy problems; keywords: the ``toy.claims`` config section
    (tolerances fixed before measuring, docs/toy.md). ``sweep_df``: the sharpness sweep
    (:func:`igrm.tidy.toy.sharpness_sweep_table`); ``finals_df`` (the two-factor end points,
    or None) is not used by any row yet; ``convergence_df``: the η-convergence study
    (:func:`igrm.tidy.toy.limit_convergence_table`, or None: no rows).

    The flow-(2) limit claims are judged only on points with ε ≤ min(``max_epsilon``,
    1/(1+√β)²) (docs/theory.md (T45), (T51), (T52); docs/toy.md "Range of validity");
    the points outside are reported in their own ``.../out_of_range`` rows, verdict
    "out of range" (a finding, not a failure of the theory).

    - ``toy/flatter_minima/eta<η>``: limit sharpness falls with β at fixed η
      (Spearman ρ(β, sharpness) ≤ ``spearman_max``), one row per η.
    - ``toy/flow2_closer_than_flow1``: flow (2)'s limit predicts GD+M's better than
      flow (1)'s at every in-range (η, β) of the sweep: measured = the largest ratio
      |err vs flow (2)| / |err vs flow (1)| (< 1 reproduces).
    - ``toy/limit_matches_flow2/eta<η>``: max over in-range β of |S_GD+M / S_flow(2) − 1| ≤
      ``flow2_rel_tol`` (a quantitative check of flow (2), one row per η).
    - ``toy/limit_convergence/beta<β>``: at fixed β the mismatch |S_GD+M / S_flow(2) − 1|
      falls like η^2 (docs/theory.md (T53)): fitted log-log slope over the in-range η, its
      t-interval (level ``ci``) inside 2 ± ``order_tol`` ((T46)); inconclusive below 3 points.
    - ``toy/igr_order_beta0``: at β = 0 (GD, IGR) the limit-sharpness error of flow (2)
      falls like η² (slope of log|err| vs log η, the same rule).
    """
    ok = sweep_df[np.isfinite(sweep_df["sharpness_gdm"])]
    n_div = int((sweep_df["diverged_step"] >= 0).sum())
    div_note = f"; {n_div} diverged runs excluded" if n_div else ""
    rows = _flatter_minima_rows(ok, float(spearman_max), div_note)
    rows += _flow2_closer_rows(ok, max_epsilon, div_note)
    rows += _limit_matches_flow2_rows(ok, float(flow2_rel_tol), max_epsilon)
    rows += _igr_order_rows(ok, float(order_tol), ci)
    if convergence_df is not None and len(convergence_df):
        rows += _limit_convergence_rows(convergence_df, float(order_tol), ci, max_epsilon)
    return frame(rows)


def _range_text(max_epsilon) -> str:
    return f"ε ≤ min({float(max_epsilon):g}, 1/(1+√β)²)"


def _flatter_minima_rows(ok: pd.DataFrame, smax: float, div_note: str) -> list:
    """toy/flatter_minima/eta<η>: Spearman ρ(β, limit sharpness) ≤ smax, one row per η."""
    from scipy.stats import spearmanr

    rows = []
    for eta, g in ok.groupby("eta", sort=True):
        g = g.sort_values("beta")
        rho = float(spearmanr(g["beta"], g["sharpness_gdm"]).statistic) if len(g) > 2 else math.nan
        verdict = INCONCLUSIVE if not math.isfinite(rho) else REPRODUCES if rho <= smax else FAILS
        detail = (
            "limit sharpness by β: "
            + ", ".join(f"{b:g}: {s:.3f}" for b, s in zip(g["beta"], g["sharpness_gdm"]))
            + div_note
        )
        rows.append(
            row(
                f"toy/flatter_minima/eta{num(eta)}",
                f"larger β finds flatter minima at fixed effective learning rate η={eta:g} (toy 1)",
                "slides: two-factor toy figure; docs/theory.md (T6), (T10)",
                -1.0,
                rho,
                f"Spearman ρ ≤ {smax:g}",
                verdict,
                detail=detail,
            )
        )
    return rows


def _closer(g: pd.DataFrame) -> tuple[float, str]:
    """The largest ratio |err vs flow (2)| / |err vs flow (1)| over ``g``, and its summary."""
    e2, e1 = np.abs(g["rel_err"].to_numpy()), np.abs(g["rel_err_flow1"].to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.max(e2 / e1)) if e2.size else math.nan
    txt = (
        f"{int(np.sum(e2 < e1))} of {e2.size} (η, β) with |err vs flow (2)| < |err vs flow (1)|; "
        f"median |rel err| flow (2) {np.median(e2):.3g}, flow (1) {np.median(e1):.3g}"
        if e2.size
        else ""
    )
    return ratio, txt


def _flow2_closer_rows(ok: pd.DataFrame, max_epsilon, div_note: str) -> list:
    """toy/flow2_closer_than_flow1 over the in-range sweep points, and its out-of-range finding."""
    inr = in_range(ok, max_epsilon)
    ok_in, ok_out = ok[inr], ok[~inr]
    meps = float(max_epsilon)
    range_txt = _range_text(max_epsilon)
    frac, txt = _closer(ok_in)
    rows = [
        row(
            "toy/flow2_closer_than_flow1",
            "flow (2) predicts GD+M's limit point better than flow (1) (toy 1 sweep)",
            "docs/theory.md (T5), (T6), (T52)",
            "< 1",
            frac,
            f"max |err flow (2)| / |err flow (1)| < 1 over every (η, β) with {range_txt}",
            INCONCLUSIVE if not math.isfinite(frac) else (REPRODUCES if frac < 1.0 else FAILS),
            detail=(
                txt + f"; judged on {range_txt}, {len(ok_out)} points out of range"
                if txt
                else f"no (η, β) with {range_txt}"
            )
            + div_note,
        )
    ]
    if len(ok_out):
        frac_o, txt_o = _closer(ok_out)
        rows.append(
            row(
                "toy/flow2_closer_than_flow1/out_of_range",
                "flow (2) vs flow (1) at the sweep points outside flow (2)'s validity range (finding)",
                "docs/theory.md (T45), (T51), (T52); docs/toy.md",
                "< 1",
                frac_o,
                f"ε > min({meps:g}, 1/(1+√β)²)",
                OUT_OF_RANGE,
                detail=txt_o + f"; ε from {ok_out['epsilon'].min():.3g} to {ok_out['epsilon'].max():.3g}",
            )
        )
    return rows


def _limit_matches_flow2_rows(ok: pd.DataFrame, tol: float, max_epsilon) -> list:
    """toy/limit_matches_flow2/eta<η>: max in-range |S_GD+M/S_flow(2) − 1| ≤ tol, one row per η,
    and one out-of-range finding per η that has β outside the range."""
    meps = float(max_epsilon)
    range_txt = _range_text(max_epsilon)
    rows = []
    for eta, g in ok.groupby("eta", sort=True):
        m = in_range(g, max_epsilon)
        gi, go = g[m], g[~m]
        if len(gi):
            e2 = np.abs(gi["rel_err"].to_numpy())
            i = int(np.argmax(e2))
            inside = gi[np.abs(gi["rel_err"]) <= tol]
            measured, verdict = float(e2[i]), within(float(e2[i]), 0.0, tol)
            detail = (
                f"max |S_GD+M/S_flow(2) − 1| over the {len(gi)} β with {range_txt} (up to β="
                f"{gi['beta'].max():g}, ε up to {gi['epsilon'].max():.3g}) at β={gi['beta'].iloc[i]:g}; "
                f"vs flow (1) {np.max(np.abs(gi['rel_err_flow1'])):.3g}; within tolerance up to β="
                f"{inside['beta'].max() if len(inside) else math.nan:g}; {len(go)} β out of range"
            )
        else:
            measured, verdict = math.nan, INCONCLUSIVE
            detail = f"no β with {range_txt} at this η (smallest ε {g['epsilon'].min():.3g})"
        rows.append(
            row(
                f"toy/limit_matches_flow2/eta{num(eta)}",
                f"GD+M converges where flow (2) predicts, η={eta:g} (limit-point sharpness, toy 1)",
                "docs/theory.md (T6) (O(h²) close), (T52)",
                0.0,
                measured,
                tol,
                verdict,
                detail=detail,
            )
        )
        if len(go):
            e2o = np.abs(go["rel_err"].to_numpy())
            j = int(np.argmax(e2o))
            rows.append(
                row(
                    f"toy/limit_matches_flow2/eta{num(eta)}/out_of_range",
                    f"GD+M vs flow (2) limit at η={eta:g}, β outside flow (2)'s validity range (finding)",
                    "docs/theory.md (T45), (T51), (T52); docs/toy.md",
                    0.0,
                    float(e2o[j]),
                    tol,
                    OUT_OF_RANGE,
                    detail=(
                        f"max |S_GD+M/S_flow(2) − 1| over {len(go)} β with ε > min({meps:g}, 1/(1+√β)²), "
                        f"at β={go['beta'].iloc[j]:g}; rel err by β: "
                        + ", ".join(f"{b:g}: {e:+.3g}" for b, e in zip(go["beta"], go["rel_err"]))
                        + "; "
                        + _range_note(go)
                    ),
                )
            )
    return rows


def _igr_order_rows(ok: pd.DataFrame, otol: float, ci) -> list:
    """toy/igr_order_beta0: at β = 0 the limit-point error of flow (2) is O(η²) (equivalence)."""
    g0 = ok[ok["beta"] == 0.0].sort_values("eta")
    if len(g0) < 2:
        return [
            row(
                "toy/igr_order_beta0",
                "GD (β=0): the limit-point error of the IGR flow (2) is O(η²)",
                "Barrett & Dherin 2021; docs/theory.md (T9)",
                2.0,
                math.nan,
                otol,
                INCONCLUSIVE,
                detail="needs β = 0 and at least two η in the sweep",
            )
        ]
    fit2 = loglog_slope(g0["eta"].to_numpy(), np.abs(g0["rel_err"].to_numpy()))
    fit1 = loglog_slope(g0["eta"].to_numpy(), np.abs(g0["rel_err_flow1"].to_numpy()))
    s2, se2 = float(fit2[0]), float(fit2[1])
    s1 = float(fit1[0])
    verdict, hw = equivalence_t(s2, se2, int(fit2[2]) - 2, 2.0, otol, ci)
    return [
        row(
            "toy/igr_order_beta0",
            "GD (β=0): the limit-point error of the IGR flow (2) is O(η²) (flow (1): O(η))",
            "Barrett & Dherin 2021; docs/theory.md (T9), (T46)",
            2.0,
            s2,
            f"±{otol:g} (equivalence)",
            verdict,
            uncertainty=hw,
            detail=(
                f"log-log slope over η = {', '.join(f'{e:g}' for e in g0['eta'])} (SE {se2:.3g}, "
                f"{int(fit2[2]) - 2} df: {float(ci):.0%} interval ±{hw:.3g}); flow (1) slope {s1:.3f}"
            ),
        )
    ]


def _limit_convergence_rows(convergence_df: pd.DataFrame, otol: float, ci, max_epsilon) -> list:
    """toy/limit_convergence/beta<β>: at fixed β the mismatch falls like η² over the in-range η."""
    rows = []
    cv = convergence_df[np.isfinite(convergence_df["sharpness_gdm"])]
    for beta, g in cv.groupby("beta", sort=True):
        g = g.sort_values("eta")
        m = in_range(g, max_epsilon)
        gi = g[m]
        slope, se, n = convergence_slope(gi["eta"], gi["rel_err"])
        verdict, hw = equivalence_t(slope, se, n - 2, 2.0, otol, ci)
        rows.append(
            row(
                f"toy/limit_convergence/beta{num(beta)}",
                f"at fixed β={beta:g} GD+M's limit sharpness converges to flow (2)'s like η² (toy 1)",
                'docs/theory.md (T53), (T46); docs/toy.md "Range of validity"',
                2.0,
                slope,
                f"±{otol:g} (equivalence)",
                verdict,
                uncertainty=hw,
                detail=(
                    f"log-log slope of |S_GD+M/S_flow(2) − 1| over {n} η in range "
                    f"({', '.join(f'{e:.3g}' for e in gi['eta'])}; ε {', '.join(f'{e:.3g}' for e in gi['epsilon'])}); "
                    f"mismatch {', '.join(f'{abs(e):.3g}' for e in gi['rel_err'])}"
                    + (f"; {int((~m).sum())} η out of range excluded" if (~m).any() else "")
                    + f"; SE {se:.3g}, {n - 2} df"
                    + (
                        "; interval not inside the margin (or fewer than 3 points): inconclusive (T46)"
                        if verdict == INCONCLUSIVE
                        else ""
                    )
                ),
            )
        )
    return rows
