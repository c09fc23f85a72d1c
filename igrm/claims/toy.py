"""Claims rows of the toy stage (tolerances: config ``toy.claims``, docs/toy.md)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import FAILS, INCONCLUSIVE, REPRODUCES, frame, row, within
from ..config import num
from ..orders import loglog_slope


def toy_claims(sweep_df: pd.DataFrame, finals_df: pd.DataFrame | None, *, spearman_max, flow2_rel_tol,
               order_tol) -> pd.DataFrame:
    """Claims rows for the toy problems; keywords: the ``toy.claims`` config section
    (tolerances fixed before measuring, docs/toy.md). ``sweep_df``: the sharpness sweep
    (:func:`igrm.tidy.toy.sharpness_sweep_table`); ``finals_df`` (the two-factor end points,
    or None) is not used by any row yet.

    - ``toy/flatter_minima/eta<η>``: limit sharpness falls with β at fixed η
      (Spearman ρ(β, sharpness) ≤ ``spearman_max``), one row per η.
    - ``toy/flow2_closer_than_flow1``: flow (2)'s limit predicts GD+M's better than
      flow (1)'s at every (η, β) of the sweep.
    - ``toy/limit_matches_flow2/eta<η>``: max over β of |S_GD+M / S_flow(2) − 1| ≤
      ``flow2_rel_tol`` (a quantitative check of flow (2), one row per η).
    - ``toy/igr_order_beta0``: at β = 0 (GD, IGR) the limit-sharpness error of flow (2)
      falls like η² (expected slope 2 of log|err| vs log η, ± ``order_tol``).
    """
    from scipy.stats import spearmanr

    rows = []
    ok = sweep_df[np.isfinite(sweep_df["sharpness_gdm"])]
    n_div = int((sweep_df["diverged_step"] >= 0).sum())
    div_note = f"; {n_div} diverged runs excluded" if n_div else ""

    smax = float(spearman_max)
    for eta, g in ok.groupby("eta", sort=True):
        g = g.sort_values("beta")
        rho = float(spearmanr(g["beta"], g["sharpness_gdm"]).statistic) if len(g) > 2 else math.nan
        verdict = (INCONCLUSIVE if not math.isfinite(rho)
                   else REPRODUCES if rho <= smax else FAILS)
        detail = "limit sharpness by β: " + ", ".join(
            f"{b:g}: {s:.3f}" for b, s in zip(g["beta"], g["sharpness_gdm"])) + div_note
        rows.append(row(f"toy/flatter_minima/eta{num(eta)}",
                                f"larger β finds flatter minima at fixed effective learning rate η={eta:g} (toy 1)",
                                "slides: two-factor toy figure; docs/theory.md (T6), (T10)",
                                -1.0, rho, f"Spearman ρ ≤ {smax:g}", verdict, detail=detail))

    err2 = np.abs(ok["rel_err"].to_numpy())
    err1 = np.abs(ok["rel_err_flow1"].to_numpy())
    frac = float(np.mean(err2 < err1)) if err2.size else math.nan
    rows.append(row(
        "toy/flow2_closer_than_flow1",
        "flow (2) predicts GD+M's limit point better than flow (1) (toy 1 sweep)",
        "docs/theory.md (T5), (T6)", 1.0, frac, "every (η, β)",
        INCONCLUSIVE if not math.isfinite(frac) else
        (REPRODUCES if frac == 1.0 else FAILS),
        detail=(f"fraction of {err2.size} (η, β) with |err vs flow (2)| < |err vs flow (1)|; "
                f"median |rel err| flow (2) {np.median(err2):.3g}, flow (1) {np.median(err1):.3g}"
                if err2.size else "")))

    tol = float(flow2_rel_tol)
    for eta, g in ok.groupby("eta", sort=True):
        e2 = np.abs(g["rel_err"].to_numpy())
        i = int(np.argmax(e2))
        inside = g[np.abs(g["rel_err"]) <= tol]
        rows.append(row(
            f"toy/limit_matches_flow2/eta{num(eta)}",
            f"GD+M converges where flow (2) predicts, η={eta:g} (limit-point sharpness, toy 1)",
            "docs/theory.md (T6) (O(h²) close)", 0.0, float(e2[i]), tol,
            within(float(e2[i]), 0.0, tol),
            detail=(f"max |S_GD+M/S_flow(2) − 1| at β={g['beta'].iloc[i]:g}; vs flow (1) "
                    f"{np.max(np.abs(g['rel_err_flow1'])):.3g}; within tolerance up to β="
                    f"{inside['beta'].max() if len(inside) else math.nan:g}; "
                    f"expansion parameter η·S0/(1−β) up to {eta * g['sharpness_init'].iloc[0] / (1 - g['beta'].max()):.3g}"
                    if "sharpness_init" in g else "")))

    g0 = ok[ok["beta"] == 0.0].sort_values("eta")
    otol = float(order_tol)
    if len(g0) >= 2:
        fit2 = loglog_slope(g0["eta"].to_numpy(), np.abs(g0["rel_err"].to_numpy()))
        fit1 = loglog_slope(g0["eta"].to_numpy(), np.abs(g0["rel_err_flow1"].to_numpy()))
        s2, se2 = float(fit2[0]), float(fit2[1])
        s1 = float(fit1[0])
        rows.append(row(
            "toy/igr_order_beta0",
            "GD (β=0): the limit-point error of the IGR flow (2) is O(η²) (flow (1): O(η))",
            "Barrett & Dherin 2021; docs/theory.md (T9)", 2.0, s2, otol, within(s2, 2.0, otol),
            uncertainty=se2,
            detail=f"log-log slope over η = {', '.join(f'{e:g}' for e in g0['eta'])}; flow (1) slope {s1:.3f}"))
    else:
        rows.append(row("toy/igr_order_beta0",
                                "GD (β=0): the limit-point error of the IGR flow (2) is O(η²)",
                                "Barrett & Dherin 2021; docs/theory.md (T9)", 2.0, math.nan, otol,
                                INCONCLUSIVE, detail="needs β = 0 and at least two η in the sweep"))
    return frame(rows)
