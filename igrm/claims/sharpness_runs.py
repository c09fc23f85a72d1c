"""Claim rows of the mechanism behind observations 2 and 3 on the trained networks
(results/claims/sharpness_runs.csv): does the final sharpness fall with β at fixed η, and
is the size of that fall what flow (2)'s regulariser strength predicts (docs/cifar.md,
"Flatness vs β"; docs/theory.md (T64)–(T69)).

Sharpness of a run's last point (igrm.train, docs/training.md "Sharpness along a run"):
λ_max by Lanczos or power iteration (a lower bound of |λ_max| unless converged, (T60), (T66)), Hutchinson's
tr H (unbiased, (T64)) and ‖∇E‖² ((T65)), on the run's fixed measurement set.

- ``sharpness_runs/falls_with_beta/<ds>/<tag>/<method>/eta<η>/<quantity>`` (quantity
  ``trace``, ``lambda_max``, ``grad_norm_sq``): the OLS slope of −(final value) on β over
  (level, seed) points, t-interval and verdict by the seed-level rule of
  :mod:`igrm.claims.cifar` ((T48)–(T50), (T69)). The λ_max row is inconclusive whenever a
  final λ_max did not converge: a slope of lower bounds bounds no slope of the values; the
  trace row is then the one that decides.
- ``sharpness_runs/ratio_vs_flow2/<ds>/<tag>/<method>/eta<η>/<quantity>``: the drops
  D(β) = S(0) − S(β), paired by seed (runs of one seed share the initialisation and the
  data subset), as the ratio D(β)/D(β_ref) (β_ref the largest β) against flow (2)'s
  first-order prediction q(β)/q(β_ref), q = β/(1−β) ((T67)); Fieller's interval per β
  ((T54)), the equality verdict with the declared margin ``ratio_margin`` ((T57), (T69)).
  Judged only where every run involved has ε ≤ min(max_epsilon, 1/(1+√β)²) at every
  measured point with λ_max converged ((T68)); ``.../out_of_range`` rows otherwise, with
  the measured ε.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..flatness import by_level, common_levels
from ..pipeline.config import num
from ..stats import bonferroni_level, equivalence_verdict, fieller, replicates_needed
from ..tidy.runs import SETTING, close, select_finals, setting_tag
from ..validity import epsilon_bound
from . import INCONCLUSIVE, OUT_OF_RANGE, frame, row
from .cifar import seed_levels, slope_row

QUANTITIES = {
    "trace": ("final_trace", "tr H"),
    "lambda_max": ("final_lambda_max", "λ_max"),
    "grad_norm_sq": ("final_grad_norm_sq", "‖∇E‖²"),
}
SOURCE = (
    "docs/theory.md (T10), (T64)–(T69); Ghosh et al. ICLR 2023, slides: the stronger implicit regulariser "
    "of SGD+M as the cause of observations 2 and 3"
)
METHODS = {"sgdm": "SGD+M", "gdm": "GD+M (full batch)"}


def flow2_drop_ratio(beta: float, beta_ref: float) -> float:
    """q(β)/q(β_ref), q(β) = β/(1−β) = 2(λ(β) − λ(0))/η: the first-order ratio of the
    sharpness drops D(β)/D(β_ref) at equal η that flow (2)'s regulariser predicts
    (docs/theory.md (T67))."""
    return (beta / (1 - beta)) / (beta_ref / (1 - beta_ref))


def _range(g: pd.DataFrame, points: pd.DataFrame, max_epsilon: float) -> tuple[str, str]:
    """('in' | 'out' | 'unestablished', text) of the runs ``g`` (docs/theory.md (T68)): out if
    some measured point has ε = h ρ/(1−β)² above min(max_epsilon, 1/(1+√β)²), ρ the spectral
    radius max(|λ_max|, |λ_min|) (a lower bound of ρ suffices, (T60)); unestablished if none
    is above but some end of the spectrum did not converge or a run has no measured point."""
    cls, parts = "in", []
    for beta, gb in g.groupby("beta", sort=True):
        p = points[points["run_id"].isin(gb["run_id"])]
        bound = epsilon_bound(beta=float(beta), max_epsilon=max_epsilon)
        if not len(p) or p["run_id"].nunique() < len(gb):
            cls = "out" if cls == "out" else "unestablished"
            parts.append(f"β={beta:g}: not measured")
            continue
        e = p["epsilon"].to_numpy(dtype=float)
        conv = bool(p["converged"].astype(bool).all())
        parts.append(
            f"β={beta:g}: ε {np.nanmin(e):.3g}–{np.nanmax(e):.3g} (bound {bound:.3g}"
            + ("" if conv else "; some spectral radius not converged: lower bounds")
            + ")"
        )
        if np.nanmax(e) > bound:
            cls = "out"
        elif not conv and cls == "in":
            cls = "unestablished"
    return cls, "; ".join(parts)


def _ratio_rows(cid, claim, gk, points, column, label, c) -> list[dict]:
    ci, min_seeds, margin, max_eps = (
        float(c["ci"]),
        int(c["min_seeds"]),
        float(c["ratio_margin"]),
        float(c["max_epsilon"]),
    )
    ok = gk[(gk["status"] == "completed") & np.isfinite(gk[column].astype(float))]
    betas = sorted(set(ok["beta"].astype(float)))
    if 0.0 not in betas or len(betas) < 3:
        return [
            row(
                cid,
                claim,
                SOURCE,
                "ratio = q(β)/q(β_ref)",
                math.nan,
                f"|δ| ≤ {margin:g}",
                INCONCLUSIVE,
                detail=(
                    f"inconclusive: needs completed runs at β=0 and at >= 2 further β; have "
                    f"{', '.join(f'{b:g}' for b in betas) or 'none'}"
                ),
            )
        ]
    b_ref = betas[-1]
    cells = betas[1:-1]
    # seeds completed at every level: the drops are paired by seed
    seeds = sorted(set.intersection(*[set(ok.loc[ok["beta"] == b, "seed"].astype(int)) for b in betas]))
    val = {b: ok[ok["beta"] == b].set_index("seed")[column].astype(float) for b in betas}
    cls, range_txt = _range(gk, points, max_eps)
    pred = {b: flow2_drop_ratio(b, b_ref) for b in cells}
    if not seeds:
        return [
            row(
                cid,
                claim,
                SOURCE,
                "ratio = q(β)/q(β_ref)",
                math.nan,
                f"|δ| ≤ {margin:g}",
                INCONCLUSIVE,
                detail="inconclusive: no seed completed at every β",
            )
        ]
    d_ref = np.array([val[0.0][s] - val[b_ref][s] for s in seeds])
    lvl_s = bonferroni_level(ci, len(cells))
    parts, lo, hi, lo_s, hi_s, deltas = [], [], [], [], [], []
    for b in cells:
        d = np.array([val[0.0][s] - val[b][s] for s in seeds])
        if len(seeds) >= 2:
            iv, ivs = fieller(d, d_ref, ci), fieller(d, d_ref, lvl_s)
            r, l_, h_ = float(iv.estimate), float(iv.lo), float(iv.hi)
            ls, hs = float(ivs.lo), float(ivs.hi)
        else:
            r, l_, h_, ls, hs = float(d.mean() / d_ref.mean()), math.nan, math.nan, math.nan, math.nan
        th = pred[b]
        deltas.append(r / th - 1)
        lo.append(l_ / th - 1), hi.append(h_ / th - 1), lo_s.append(ls / th - 1), hi_s.append(hs / th - 1)
        parts.append(f"β={b:g}: D/D_ref {r:.4g} [{l_:.4g}, {h_:.4g}] vs flow (2) {th:.4g}, δ {r / th - 1:+.3g}")
    means = ", ".join(f"β={b:g}: {np.mean([val[b][s] for s in seeds]):.4g}" for b in betas)
    detail = (
        f"{label} at the last point, means over the {len(seeds)} seeds completed at every β ({means}); "
        f"drops D(β) = {label}(β=0) − {label}(β), paired by seed, reference β_ref={b_ref:g} (mean D_ref "
        f"{d_ref.mean():.4g}); {int(round(ci * 100))}% Fieller intervals ((T54)); "
        + "; ".join(parts)
        + f"; range ((T68)): {range_txt}"
    )
    i = int(np.nanargmax(np.abs(deltas))) if np.isfinite(deltas).any() else 0
    measured = float(deltas[i])
    unc = (hi[i] - lo[i]) / 2 if math.isfinite(hi[i] - lo[i]) else math.nan
    if cls == "out":
        return [
            row(
                cid + "/out_of_range",
                claim + " — runs outside the expansion's range",
                SOURCE,
                "ratio = q(β)/q(β_ref) (first order in ε)",
                measured,
                f"judged only with {range_txt}",
                OUT_OF_RANGE,
                uncertainty=unc,
                detail=f"not judged: some run has ε above the bound min(max_epsilon, 1/(1+√β)²); {detail}",
            )
        ]
    if cls == "unestablished":
        return [
            row(
                cid,
                claim,
                SOURCE,
                "ratio = q(β)/q(β_ref)",
                measured,
                f"|δ| ≤ {margin:g}",
                INCONCLUSIVE,
                uncertainty=unc,
                detail=f"inconclusive: range not established (spectral radius not converged); {detail}",
            )
        ]
    verdict = equivalence_verdict(lo, hi, lo_s, hi_s, margin)
    if len(seeds) < min_seeds:
        verdict = INCONCLUSIVE
        detail = f"inconclusive: {len(seeds)} paired seeds < min_seeds {min_seeds}; {detail}"
    if verdict == INCONCLUSIVE:
        need = replicates_needed(unc, margin - abs(measured), len(seeds)) if math.isfinite(unc) else None
        detail += f"; paired seeds needed ≈ {need if need is not None else 'not estimable'} ((T57))"
    return [
        row(
            cid,
            claim,
            SOURCE,
            "ratio = q(β)/q(β_ref)",
            measured,
            f"every β's {int(round(ci * 100))}% interval of δ = ratio/prediction − 1 inside ±{margin:g}; some "
            f"Bonferroni interval outside: does not reproduce",
            verdict,
            uncertainty=unc,
            detail=detail,
        )
    ]


POINT_QUANTITIES = {"trace": "tr H", "lambda_max": "λ_max", "grad_norm_sq": "‖∇E‖²"}


def _converged(gk: pd.DataFrame, points: pd.DataFrame, fraction: float) -> tuple[bool, str]:
    """(every completed run converged, text) by docs/mechanism.md (S8): the loss of its last
    sharpness point ≤ ``fraction`` × that of its first (the measured E itself); runs without
    a recorded loss (results from before it was recorded) count as not established."""
    ratios = []
    for rid in gk.loc[gk["status"] == "completed", "run_id"]:
        p = points[points["run_id"] == rid].sort_values("epoch")
        loss = p["loss"].to_numpy(dtype=float) if "loss" in p else np.array([])
        ratios.append(loss[-1] / loss[0] if loss.size >= 2 and np.isfinite(loss[[0, -1]]).all() else math.nan)
    r = np.asarray(ratios, float)
    if not r.size or not np.isfinite(r).all():
        return False, "final/initial measured loss not recorded for every run ((S8))"
    return bool((r <= fraction).all()), (
        f"final/initial measured loss per run {r.min():.3g}–{r.max():.3g} (converged: ≤ {fraction:g}, "
        "docs/mechanism.md (S8))"
    )


def _matched_loss_rows(base: str, where: str, gk: pd.DataFrame, points: pd.DataFrame, c: dict) -> list[dict]:
    """Sharpness vs β at common levels of the measured loss (docs/mechanism.md (S6), (S7)):
    per level and quantity the seed-level slope (:func:`igrm.claims.cifar.slope_row`), judged
    only where every run's bracket around the level is ≤ max_bracket_ratio."""
    done = gk[gk["status"] == "completed"]
    runs = []
    for rid, beta, seed in done[["run_id", "beta", "seed"]].itertuples(index=False):
        p = points[points["run_id"] == rid].sort_values("epoch")
        if "loss" in p and len(p) >= 2 and np.isfinite(p["loss"].to_numpy(dtype=float)).all():
            runs.append((float(beta), int(seed), p))
    if len(runs) < 2:
        return []
    levels = common_levels(losses=[p["loss"].to_numpy() for _, _, p in runs], n_levels=int(c["n_levels"]))
    rows = []
    for j, level, vj, widest in by_level(runs=runs, quantities=list(POINT_QUANTITIES), levels=levels):
        vj = vj.assign(status="completed")  # every run here completed (seed_levels reads the status)
        for q, label in POINT_QUANTITIES.items():
            cid = f"{base.replace('falls_with_beta', 'matched_loss')}/{q}/level{j}"
            claim = (
                f"{label} at equal measured train loss {level:.4g} falls as β rises ({where}); measured: slope "
                f"of −{label} vs β"
            )
            if not widest <= float(c["max_bracket_ratio"]):
                rows.append(
                    row(
                        cid + "/out_of_range",
                        claim + " — interpolated across too wide a bracket",
                        SOURCE,
                        "slope > 0 (of −value)",
                        math.nan,
                        f"judged only with every loss bracket ≤ {c['max_bracket_ratio']:g} ((S7))",
                        OUT_OF_RANGE,
                        detail=(
                            f"widest loss ratio of the two sharpness points around the level: {widest:.3g} "
                            f"(points per run: {min(len(p) for _, _, p in runs)}; docs/mechanism.md (S7))"
                        ),
                    )
                )
                continue
            xs, ys, nd = seed_levels(vj, "beta", q)
            r = slope_row(
                cid, claim, SOURCE, xs, [-y for y in ys], nd, c, f"(−{label}) per unit β", lambda x: f"β={x:g}"
            )
            r["detail"] += f"; loss level {level:.4g} ((S6)), widest bracket {widest:.3g} ((S7))"
            rows.append(r)
    return rows


def sharpness_claims(
    *,
    finals: pd.DataFrame,
    points: pd.DataFrame,
    eta: float | None,
    dataset: str | None,
    model: str | None,
    ci: float,
    min_seeds: int,
    max_epsilon: float,
    ratio_margin: float,
    n_levels: int,
    max_bracket_ratio: float,
    converged_fraction: float,
) -> pd.DataFrame:
    """Claim rows (module docstring) per setting, method (SGD+M; full-batch GD+M) and η
    with >= 2 values of β (``eta``: only that η; None: every one). ``points``: the tidy
    sharpness points (igrm.tidy.runs POINT_COLUMNS) of the same runs. ``n_levels``,
    ``max_bracket_ratio``, ``converged_fraction``: config train.flatness (docs/mechanism.md)."""
    c = {
        "ci": ci,
        "min_seeds": min_seeds,
        "ratio_margin": ratio_margin,
        "max_epsilon": max_epsilon,
        "n_levels": n_levels,
        "max_bracket_ratio": max_bracket_ratio,
    }
    f = select_finals(finals=finals, epochs=None, spread_window=None, dataset=dataset, model=model)
    rows: list[dict] = []
    for key, g in f.groupby(SETTING, sort=True):
        ds, mdl, width, bs = key
        tag = f"{ds}/{setting_tag(mdl, width, bs)}"
        for method, name in METHODS.items():
            gm = g[g["method"] == method]
            etas = sorted(set(np.round(gm["eta"].to_numpy(dtype=float), 12)))
            for eta_k in etas:
                if eta is not None and not close([eta_k], eta)[0]:
                    continue
                gk = gm[close(gm["eta"], eta_k)]
                if gk["beta"].nunique() < 2:
                    continue
                where = f"{ds}, {setting_tag(mdl, width, bs)}, {name}, η={eta_k:g}"
                base = f"sharpness_runs/falls_with_beta/{tag}/{method}/eta{num(eta_k)}"
                conv, conv_txt = _converged(gk, points, float(converged_fraction))
                rows += _matched_loss_rows(base, where, gk, points, c)
                for q, (column, label) in QUANTITIES.items():
                    xs, ys, nd = seed_levels(gk, "beta", column)
                    claim = (
                        f"the final {label} of the training loss falls as β rises at fixed η ({where}); "
                        f"measured: slope of −{label} vs β"
                    )
                    r = slope_row(
                        f"{base}/{q}",
                        claim,
                        SOURCE,
                        xs,
                        [-v for v in ys],
                        nd,
                        c,
                        f"(−{label}) per unit β",
                        lambda x: f"β={x:g}",
                    )
                    done = gk[gk["status"] == "completed"]
                    if q == "lambda_max":
                        unconv = int((~done["final_converged"].astype(bool)).sum())
                        if unconv:
                            r["verdict"] = INCONCLUSIVE
                            r["detail"] = (
                                f"inconclusive: {unconv} of {len(done)} final λ_max not converged "
                                "(lower bounds of |λ_max|, (T60)): a slope of lower bounds bounds no "
                                f"slope of the values (the trace row decides) ((T69)); {r['detail']}"
                            )
                    if not conv and r["verdict"] != OUT_OF_RANGE:
                        # (S8): final values of unconverged runs sit at different losses
                        r["id"], r["verdict"] = r["id"] + "/out_of_range", OUT_OF_RANGE
                        r["claim"] += " — runs not converged"
                        r["detail"] = f"not judged at the end: {conv_txt}; {r['detail']}"
                    eps = done.groupby("beta")["final_epsilon"].agg(["min", "max"])
                    if len(eps):
                        r["detail"] += (
                            "; ε = ηρ/(1−β), ρ the spectral radius max(|λ_max|, |λ_min|), at the last point ((T61); an empirical claim, not "
                            "judged by range) per level: "
                            + ", ".join(f"β={b:g}: {lo:.3g}–{hi:.3g}" for b, (lo, hi) in eps.iterrows())
                        )
                    if q == "trace":
                        se = done["final_trace_se"].to_numpy(dtype=float)
                        r["detail"] += (
                            f"; Hutchinson probe se per run (included in the seed scatter): median "
                            f"{np.nanmedian(se):.3g}"
                            if np.isfinite(se).any()
                            else ""
                        )
                    rows.append(r)
                    # a ratio between drops needs β = 0 and two more levels in the design
                    if q != "grad_norm_sq" and (gk["beta"] == 0.0).any() and gk["beta"].nunique() >= 3:
                        rows += _ratio_rows(
                            f"sharpness_runs/ratio_vs_flow2/{tag}/{method}/eta{num(eta_k)}/{q}",
                            f"the drop of the final {label} from β=0, as a ratio between β values, equals flow "
                            f"(2)'s first-order prediction q(β)/q(β_ref), q = β/(1−β) ({where})",
                            gk,
                            points,
                            column,
                            label,
                            c,
                        )
    return frame(rows)
