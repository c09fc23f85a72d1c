"""Claim rows of the CIFAR stage (results/claims/cifar.csv): the paper's three
observations and the explicit IGR-M baseline, each tested with a t-interval over seeds.

Verdict rule (fixed before any measurement; igrm.stats, docs/theory.md (T47)–(T50)):
each claim is a signed statistic whose paper-predicted sign is positive: an OLS slope
of the per-seed values on the level (t-interval with the residual variance on N−2 df,
(T48)) or a difference of two means (Welch's t-interval, (T47)), at level ``ci``
(config: 95 %). Entirely above 0 -> reproduces; entirely below 0 -> does not reproduce;
otherwise -> inconclusive. Fewer than ``min_seeds`` (default 3) completed seeds at some
level (or fewer than two levels) -> inconclusive whatever the interval. Every
inconclusive row states its minimum detectable effect at its n and the seeds per level
that would detect the observed effect ((T49)). ``measured`` is the slope or difference,
``uncertainty`` the interval's half-width t_{1−α/2,df}·SE. Diverged runs are counted
in every claim's detail but do not enter the accuracy statistics (their final accuracy
does not exist).

Range of validity (declared before the runs, docs/theory.md (T63), docs/igrm_baseline.md
"Range of validity"): the explicit-baseline rows judge only the explicit runs whose
measured sharpness keeps ε = h|λ_max|/(1−β)² ≤ min(max_epsilon, 1/(1+√β)²) and
2μ|λ_max| ≤ max_penalty_curvature at every measured point, every measurement converged.
Runs above either threshold (a lower bound of |λ_max| suffices, (T60)) get a row of their
own, ``.../out_of_range``, with verdict "out of range" (a finding, never a failure),
stating λ_max, 2μλ_max, ε, the stability number and their final accuracy and loss. The
SGD+M rows (observations 1 and 3) are empirical, not expansion claims: their detail
reports the ε of the runs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..pipeline.config import num
from ..stats import (
    POWER,
    SEEDS_CAP,
    ci_verdict,
    mde,
    pooled_sd,
    seeds_needed_diff,
    seeds_needed_slope,
    slope_t_levels,
    welch_t,
)
from ..tidy.runs import SETTING, beta_sweep_etas, close, explicit_groups, select_finals, setting_tag
from ..validity import epsilon_bound, in_declared_range
from . import INCONCLUSIVE, OUT_OF_RANGE, frame, row

EXPECTED = "> 0 (95% t-interval over seeds entirely above 0)"
TOLERANCE = (
    "t-interval above 0: reproduces; below 0: does not; straddles 0, or fewer than min_seeds "
    "completed seeds per level: inconclusive (with MDE and seeds needed)"
)
PAPER = "Ghosh et al. ICLR 2023, slides 'Some prevalent observations in deep learning'"


def seed_levels(g: pd.DataFrame, by: str, value: str):
    """(x levels, completed finite values per level, seeds per level, diverged per level)."""
    xs, ys, ndiv = [], [], []
    for x, gx in g.groupby(by, sort=True):
        ok = gx[(gx["status"] == "completed")]
        v = ok[value].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        xs.append(float(x))
        ys.append(v)
        ndiv.append(int((gx["status"] == "diverged").sum()))
    return xs, ys, ndiv


def _fmt_n(n: int | None) -> str:
    return f"> {SEEDS_CAP}" if n is None else str(n)


def _power_text(effect: float, se: float, df: float, se_how: str, ci: float, needed: int | None, unit: str) -> str:
    """The MDE at this n and the seeds per level that would detect ``effect`` (docs/theory.md (T49))."""
    m = mde(se, df, ci, POWER) if math.isfinite(se) and math.isfinite(df) else math.nan
    if not math.isfinite(m):
        return f"MDE not estimable at this n ({se_how}); seeds per level to detect the observed effect: not estimable"
    eff = f"{abs(effect):.4g}" if math.isfinite(effect) else "n/a"
    return (
        f"MDE at this n (two-sided α={1 - ci:.2g}, power {POWER:g}) = (t_{{{1 - (1 - ci) / 2:.3g},{df:.3g}}} + "
        f"t_{{{POWER:g},{df:.3g}}}) · SE {se:.4g} ({se_how}) = {m:.4g} {unit}; seeds per level to detect "
        f"the observed |effect| {eff}: {_fmt_n(needed)}"
    )


def slope_row(cid, claim, source, xs, ys, ndiv, c, unit, xfmt, transform=None) -> dict:
    n_div = sum(ndiv)
    ci, min_seeds = float(c["ci"]), int(c["min_seeds"])
    counts = ", ".join(f"{xfmt(x)}: n={len(v)}" + (f" (+{d} div.)" if d else "") for x, v, d in zip(xs, ys, ndiv))
    keep = [(x, v) for x, v in zip(xs, ys) if len(v)]
    div_txt = f"; {n_div} diverged runs excluded" if n_div else ""
    if len(keep) < 2:
        why = (
            f"inconclusive: needs >= 2 levels with completed runs and >= {min_seeds} completed seeds at each; "
            f"have {counts or 'none'}; MDE not estimable (no slope without 2 levels){div_txt}"
        )
        return row(cid, claim, source, EXPECTED, math.nan, TOLERANCE, INCONCLUSIVE, detail=why)
    kx = [transform(x) if transform else x for x, _ in keep]
    kv = [v for _, v in keep]
    n_min = min(len(v) for v in kv)
    iv = slope_t_levels(kx, kv, ci)
    point, se, df = float(iv.estimate), float(iv.se), float(iv.df)
    lo, hi = float(iv.lo), float(iv.hi)
    from scipy.stats import spearmanr

    allx = np.concatenate([np.full(len(v), x) for x, v in zip(kx, kv)])
    ally = np.concatenate(kv)
    rho = float(spearmanr(allx, ally).statistic) if np.ptp(ally) > 0 else math.nan
    means = ", ".join(f"{xfmt(x)}: {np.mean(v):.4f}" for x, v in keep)
    sds = [(float(np.std(v, ddof=1)), x) for x, v in keep if len(v) > 1]
    worst = f"fewest seeds: {xfmt(min(keep, key=lambda t: len(t[1]))[0])} (n={n_min})"
    if sds:
        s_max, x_max = max(sds)
        worst += f"; largest seed SD: {xfmt(x_max)} ({s_max:.4g})"
    n_pts = int(sum(len(v) for v in kv))
    if math.isfinite(se):
        resid_sd = se * math.sqrt(float(((allx - allx.mean()) ** 2).sum()))
        stat = (
            f"OLS slope {point:.4g} {unit} over N={n_pts} (level, seed) points, {int(round(ci * 100))}% "
            f"t-interval [{lo:.4g}, {hi:.4g}] = slope ± t_{{{1 - (1 - ci) / 2:.3g},{df:.0f}}}·SE, SE {se:.4g} "
            f"(residual SD {resid_sd:.4g}, df N−2={df:.0f}); uncertainty = CI half-width {hi - point:.4g}"
        )
        se_how, sd_plan = "residual SD of the fit, df N−2", resid_sd
    else:
        stat = f"OLS slope {point:.4g} {unit} over N={n_pts} points; no residual df (N ≤ 2): no interval"
        se_how, sd_plan, lo, hi = "no residual df", math.nan, math.nan, math.nan
        psd, pdf = pooled_sd(kv)
        if pdf:
            sxx = float(((allx - allx.mean()) ** 2).sum())
            se, df, sd_plan = psd / math.sqrt(sxx), float(pdf), psd
            se_how = f"pooled seed-to-seed SD {psd:.4g}, df {pdf}"
    detail = f"{stat}; Spearman ρ {rho:.3f}; means {means}; seeds {counts}; {worst}{div_txt}"
    verdict, why = _seed_verdict(
        lo, hi, n_min < min_seeds, f"needs >= {min_seeds} completed seeds at every level, have {n_min} at the fewest"
    )
    if verdict == INCONCLUSIVE:
        needed = seeds_needed_slope(point, sd_plan, kx, ci, POWER, n_min=max(min_seeds, 2))
        detail = f"{why}; {_power_text(point, se, df, se_how, ci, needed, unit)}; {detail}"
    return row(
        cid,
        claim,
        source,
        EXPECTED,
        point,
        TOLERANCE,
        verdict,
        uncertainty=(hi - lo) / 2 if math.isfinite(hi - lo) else math.nan,
        detail=detail,
    )


def _seed_verdict(lo: float, hi: float, too_few: bool, too_few_text: str) -> tuple[str, str]:
    """(verdict, why) of a seed-level row (docs/theory.md (T50)): inconclusive below the
    minimum seeds, else the interval's side."""
    if too_few:
        return INCONCLUSIVE, f"inconclusive: {too_few_text}"
    verdict = ci_verdict(lo, hi)
    return verdict, ("inconclusive: the interval contains 0" if verdict == INCONCLUSIVE else "")


def _diff_row(cid, claim, src, ve, vp, counts, c, extra) -> dict:
    """Explicit baseline − plain GD/SGD: Welch's t-interval (docs/theory.md (T47))."""
    ci, min_seeds = float(c["ci"]), int(c["min_seeds"])
    if not (len(ve) and len(vp)):
        return row(
            cid,
            claim,
            src,
            EXPECTED,
            math.nan,
            TOLERANCE,
            INCONCLUSIVE,
            detail=(
                f"inconclusive: needs >= {min_seeds} completed seeds of each; have {counts}; "
                "MDE not estimable (a group has no completed run)"
            ),
        )
    iv = welch_t(ve, vp, ci)
    point, se, df = float(iv.estimate), float(iv.se), float(iv.df)
    lo, hi = float(iv.lo), float(iv.hi)
    sd_e = float(np.std(ve, ddof=1)) if len(ve) > 1 else math.nan
    sd_p = float(np.std(vp, ddof=1)) if len(vp) > 1 else math.nan
    if math.isfinite(se):
        stat = (
            f"mean difference {point:.4g} (explicit {ve.mean():.4f} − plain {vp.mean():.4f}), "
            f"{int(round(ci * 100))}% Welch t-interval [{lo:.4g}, {hi:.4g}] = diff ± t_{{{1 - (1 - ci) / 2:.3g},"
            f"{df:.3g}}}·SE, SE {se:.4g} (seed SDs {sd_e:.4g}, {sd_p:.4g}; Welch–Satterthwaite df {df:.3g}); "
            f"uncertainty = CI half-width {hi - point:.4g}"
        )
        se_how, plan = "Welch SE", (sd_e, sd_p)
    else:
        stat = (
            f"mean difference {point:.4g} (explicit {ve.mean():.4f} − plain {vp.mean():.4f}); "
            "a group has < 2 seeds: no Welch interval"
        )
        se_how, plan, lo, hi = "no seed-to-seed SD", (math.nan, math.nan), math.nan, math.nan
        psd, pdf = pooled_sd([ve, vp])
        if pdf:
            se, df = psd * math.sqrt(1 / len(ve) + 1 / len(vp)), float(pdf)
            se_how, plan = f"pooled seed-to-seed SD {psd:.4g}, df {pdf}", (psd, psd)
    detail = f"{stat}; {counts}{extra}; '≥' is tested as CI above 0 (equality cannot be shown)"
    verdict, why = _seed_verdict(
        lo, hi, min(len(ve), len(vp)) < min_seeds, f"needs >= {min_seeds} completed seeds of each; have {counts}"
    )
    if verdict == INCONCLUSIVE:
        needed = seeds_needed_diff(point, *plan, ci, POWER, n_min=max(min_seeds, 2))
        detail = f"{why}; {_power_text(point, se, df, se_how, ci, needed, 'accuracy')}; {detail}"
    return row(
        cid,
        claim,
        src,
        EXPECTED,
        point,
        TOLERANCE,
        verdict,
        uncertainty=(hi - lo) / 2 if math.isfinite(hi - lo) else math.nan,
        detail=detail,
    )


def _eps_note(g: pd.DataFrame, by: str, xfmt) -> str:
    """'; ε = h|λ_max|/(1−β)² ... per level' of the runs of ``g`` (docs/theory.md (T61))."""
    m = g[g["sharpness_points"] > 0]
    if not len(m):
        return "; ε not measured (train.sharpness.points = 0)"
    parts = []
    for x, gx in m.groupby(by, sort=True):
        e = gx["epsilon_max"].to_numpy(dtype=float)
        lo, hi = f"{np.nanmin(e):.3g}", f"{np.nanmax(e):.3g}"
        parts.append(f"{xfmt(x)}: {lo}" + (f"–{hi}" if hi != lo else ""))
    conv = "all converged" if m["sharpness_converged"].all() else "some not converged: lower bounds"
    return (
        f"; ε = h|λ_max|/(1−β)² (max over the measured points, (T61); {conv}) per level: "
        + ", ".join(parts)
        + f"; real-root bound 1/(1+√β)² (T51): {epsilon_bound(beta=float(g['beta'].max()), max_epsilon=math.inf):.3g}"
        + f" at β={g['beta'].max():g}"
    )


def range_class(r, *, max_epsilon: float, max_penalty_curvature: float) -> str:
    """One run's place in the declared range of the explicit-baseline claim (docs/theory.md
    (T63)): 'unmeasured' (no sharpness points), 'out' (ε or 2μλ above its threshold at some
    measured point: a lower bound of |λ_max| suffices, (T60)), 'unestablished' (below both,
    but some measurement did not converge), 'in'."""
    if int(r["sharpness_points"]) == 0:
        return "unmeasured"
    if not in_declared_range(
        epsilon=float(r["epsilon_max"]),
        penalty_curvature=float(r["penalty_curvature_max"]),
        beta=float(r["beta"]),
        max_epsilon=max_epsilon,
        max_penalty_curvature=max_penalty_curvature,
    ):
        return "out"
    return "in" if bool(r["sharpness_converged"]) else "unestablished"


def _run_sharpness(g: pd.DataFrame) -> str:
    """Per seed: λ_max at init and its largest |λ| along the run, 2μλ, ε, stability, and the outcome."""
    out = []
    for _, r in g.sort_values("seed").iterrows():
        res = (
            f"final test acc {r['final_test_acc']:.4f}, final train loss {r['final_train_loss']:.4g}"
            if r["status"] == "completed"
            else f"{r['status']}"
        )
        out.append(
            f"seed {int(r['seed'])}: λ_max {r['sharpness_init']:.4g} at init, max |λ_max| "
            f"{r['sharpness_max']:.4g} over {int(r['sharpness_points'])} points"
            f"{'' if r['sharpness_converged'] else ' (not all converged: lower bound)'}, 2μλ_max "
            f"{r['penalty_curvature_max']:.4g}, ε {r['epsilon_max']:.4g}, η(λ+2μλ²) {r['stability_max']:.4g}; "
            f"{res}"
        )
    return "; ".join(out)


def cifar_claims(
    *,
    epochs: pd.DataFrame,
    finals: pd.DataFrame,
    eta: float | None,
    model: str | None,
    spread_window: int | None,
    dataset: str | None,
    ci: float,
    min_seeds: int,
    explicit_against: str,
    max_epsilon: float,
    max_penalty_curvature: float,
    plateau_max_rise: float,
    ratio_margin: float,
) -> pd.DataFrame:
    """Claims rows (igrm.claims.COLUMNS) per setting (dataset, model[, width, batch]):

    - ``cifar/obs1_acc_rises_with_h/<ds>/<tag>``: slope of final test accuracy of plain
      SGD (β = 0) against log10 h (accuracy per decade of h).
    - ``cifar/obs2_spread_falls_with_beta/<ds>/<tag>/eta<η>``: slope of −(detrended SD of
      test accuracy over the last N epochs, :func:`igrm.tidy.runs.plateau`) against β at
      fixed η (positive = spread falls), over the runs on a plateau (|rise| ≤
      ``plateau_max_rise``); ``.../out_of_range``: the runs still rising.
    - ``cifar/obs3_acc_rises_with_beta/<ds>/<tag>/eta<η>``: slope of final test
      accuracy against β at fixed η (SGD+M).
    - ``cifar/explicit_ge_gd/<ds>/<tag>/eta<η>_beta<β>``: mean final accuracy of the
      explicit IGR-M baseline minus that of plain GD/SGD (β = 0) at the same η, over the
      explicit runs inside the declared range (``max_epsilon``, ``max_penalty_curvature``;
      docs/theory.md (T63)); ``.../out_of_range``: the explicit runs outside it (verdict
      "out of range").

    The verdict of each row follows :func:`igrm.stats.ci_verdict` on its t-interval, and
    ``min_seeds`` (module docstring; docs/theory.md (T47)–(T50)).

    The keywords after the tables are the config section train.analysis (``ratio_margin``:
    the sharpness claims' margin, not used here), ``eta`` (igrm.pipeline.targets.analysis_eta)
    and ``model`` (train.model).
    """
    c = {"ci": ci, "min_seeds": min_seeds}
    f = select_finals(finals=finals, epochs=epochs, spread_window=spread_window, dataset=dataset, model=model)
    rows: list[dict] = []
    for key, g in f.groupby(SETTING, sort=True):
        rows += _obs1_rows(g, key, c)
        rows += _beta_sweep_rows(g, key, c, eta=eta, plateau_max_rise=plateau_max_rise)
    for group in explicit_groups(f, eta=eta, explicit_against=explicit_against):
        rows += _explicit_rows(*group, c, max_epsilon=max_epsilon, max_penalty_curvature=max_penalty_curvature)
    return frame(rows)


def _where(key) -> tuple[str, str]:
    """(claim-id part, text) of a setting (dataset, model, width, batch)."""
    ds, mdl, width, bs = key
    return f"{ds}/{setting_tag(mdl, width, bs)}", f"{ds}, {setting_tag(mdl, width, bs)}"


def _obs1_rows(g: pd.DataFrame, key, c: dict) -> list[dict]:
    """Observation 1 of one setting: plain SGD's final accuracy against log10 h."""
    tag, where = _where(key)
    rows = []
    g0 = g[(g["method"] == "sgdm") & (g["beta"] == 0.0)]
    if len(g0):
        xs, ys, nd = seed_levels(g0, "h", "final_test_acc")
        r1 = slope_row(
            f"cifar/obs1_acc_rises_with_h/{tag}",
            f"plain SGD (β=0): final test accuracy rises with the learning rate h ({where})",
            PAPER + ", observation 1",
            xs,
            ys,
            nd,
            c,
            "accuracy per decade of h",
            lambda x: f"h={x:g}",
            transform=math.log10,
        )
        r1["detail"] += _eps_note(g0, "h", lambda x: f"h={x:g}")
        rows.append(r1)
    return rows


def _beta_sweep_rows(g: pd.DataFrame, key, c: dict, *, eta: float | None, plateau_max_rise: float) -> list[dict]:
    """Observations 2 and 3 of one setting, per η with a β sweep of SGD+M."""
    tag, where = _where(key)
    rows: list[dict] = []
    sg = g[g["method"] == "sgdm"]
    for eta_k in beta_sweep_etas(sg, eta=eta):
        ge = sg[close(sg["eta"], eta_k)]
        done = ge["status"] == "completed"
        flat = done & (ge["plateau_rise"].abs() <= float(plateau_max_rise))
        rising = ge[done & ~flat]
        xs, ys, nd = seed_levels(ge[flat | ~done], "beta", "plateau_spread")
        wins = sorted(set(ge.loc[done, "spread_window"].astype(int)))
        cid = f"cifar/obs2_spread_falls_with_beta/{tag}/eta{num(eta_k)}"
        claim = (
            f"SGD+M: the spread of test accuracy on the plateau (detrended SD over the last "
            f"N={','.join(map(str, wins))} epochs) falls as β rises, η={eta_k:g} ({where}); "
            f"measured: slope of −spread vs β"
        )
        r = slope_row(
            cid,
            claim,
            PAPER + ", observation 2",
            xs,
            [-v for v in ys],
            nd,
            c,
            "(−detrended SD of accuracy) per unit β",
            lambda x: f"β={x:g}",
        )
        r["detail"] += (
            f"; plateau: |rise of the fitted line over the window| ≤ {float(plateau_max_rise):g} "
            f"(train.analysis.plateau_max_rise); {len(rising)} of {int(done.sum())} completed runs "
            f"still rising, left out"
        )
        rows.append(r)
        if len(rising):
            rows.append(
                row(
                    cid + "/out_of_range",
                    claim + " — runs not yet on a plateau",
                    PAPER + ", observation 2",
                    EXPECTED,
                    float(rising["plateau_rise"].abs().max()),
                    f"|rise| ≤ {float(plateau_max_rise):g} over the window",
                    OUT_OF_RANGE,
                    detail="; ".join(
                        f"β={r_.beta:g} seed {int(r_.seed)}: "
                        + (
                            f"rise {r_.plateau_rise:+.3f}, detrended SD {r_.plateau_spread:.4f}"
                            if math.isfinite(r_.plateau_rise)
                            else "window < 3 epochs: no plateau test"
                        )
                        for r_ in rising.itertuples()
                    ),
                )
            )
        xs, ys, nd = seed_levels(ge, "beta", "final_test_acc")
        r3 = slope_row(
            f"cifar/obs3_acc_rises_with_beta/{tag}/eta{num(eta_k)}",
            f"SGD+M: final test accuracy rises with β at fixed effective learning rate η={eta_k:g} ({where})",
            PAPER + ", observation 3",
            xs,
            ys,
            nd,
            c,
            "accuracy per unit β",
            lambda x: f"β={x:g}",
        )
        r3["detail"] += _eps_note(ge, "beta", lambda x: f"β={x:g}")
        rows.append(r3)
    return rows


def _explicit_rows(
    key, fam, g_ex, g_mom, g_plain, c: dict, *, max_epsilon: float, max_penalty_curvature: float
) -> list[dict]:
    """The explicit baseline against plain GD/SGD at its η: the row of the runs inside the
    declared range, and one ``.../out_of_range`` row for those outside it."""
    rows: list[dict] = []
    ds, mdl, width, bs, eta_k, beta = key
    cid = f"cifar/explicit_ge_gd/{ds}/{setting_tag(mdl, width, bs)}/eta{num(eta_k)}_beta{num(beta)}"
    plain_name = "GD" if fam == "gdm" else "SGD"
    claim = (
        f"explicit IGR-M baseline (β={beta:g}) reaches at least plain {plain_name}'s final test accuracy "
        f"at the same η={eta_k:g} ({ds}, {setting_tag(mdl, width, bs)})"
    )
    src = "docs/theory.md (T29)–(T30), (T42), range (T63); Ghosh et al. ICLR 2023"
    cls = g_ex.apply(
        lambda r: range_class(r, max_epsilon=max_epsilon, max_penalty_curvature=max_penalty_curvature), axis=1
    )
    g_out, g_unk = g_ex[cls == "out"], g_ex[cls.isin(["unmeasured", "unestablished"])]
    g_all, g_ex = g_ex, g_ex[cls == "in"]
    bound = epsilon_bound(beta=beta, max_epsilon=max_epsilon)
    range_txt = (
        f"ε = h|λ_max|/(1−β)² ≤ {bound:.3g} (= min(max_epsilon {max_epsilon:g}, 1/(1+√β)²)) and 2μλ_max ≤ "
        f"{max_penalty_curvature:g} at every measured point, converged ((T63))"
    )
    ve = g_ex.loc[g_ex["status"] == "completed", "final_test_acc"].to_numpy(dtype=float)
    vp = g_plain.loc[g_plain["status"] == "completed", "final_test_acc"].to_numpy(dtype=float)
    ve, vp = ve[np.isfinite(ve)], vp[np.isfinite(vp)]
    d_ex = int((g_ex["status"] == "diverged").sum())
    d_pl = int((g_plain["status"] == "diverged").sum())
    counts = (
        f"explicit n={len(ve)}"
        + (f" (+{d_ex} div.)" if d_ex else "")
        + f", plain {plain_name} n={len(vp)}"
        + (f" (+{d_pl} div.)" if d_pl else "")
    )
    vm = g_mom.loc[g_mom["status"] == "completed", "final_test_acc"].to_numpy(dtype=float)
    mom_name = "GD+M" if fam == "gdm" else "SGD+M"
    mom_txt = f"; heavy-ball {mom_name} β={beta:g}: {np.nanmean(vm):.4f} (n={len(vm)})" if len(vm) else ""
    mom_txt += _eps_note(g_mom, "beta", lambda x: f"{mom_name} β={x:g}") if len(g_mom) else ""
    excluded = (
        f"; judged on the {len(g_ex)} of {len(g_all)} explicit runs with {range_txt}"
        + (f"; {len(g_out)} out of range (row {cid}/out_of_range)" if len(g_out) else "")
        + (
            f"; {len(g_unk)} with the range not established (sharpness not measured or not converged): "
            + _run_sharpness(g_unk)
            if len(g_unk)
            else ""
        )
    )
    if len(g_ex):
        r = _diff_row(cid, claim, src, ve, vp, counts, c, mom_txt + excluded)
    else:
        r = row(
            cid,
            claim,
            src,
            EXPECTED,
            math.nan,
            TOLERANCE,
            INCONCLUSIVE,
            detail=f"not judged: no explicit run inside the declared range{excluded}{mom_txt}",
        )
    rows.append(r)
    if len(g_out):
        vo = g_out.loc[g_out["status"] == "completed", "final_test_acc"].to_numpy(dtype=float)
        vo = vo[np.isfinite(vo)]
        diff = float(vo.mean() - vp.mean()) if len(vo) and len(vp) else math.nan
        plain_txt = (
            f"plain {plain_name} {vp.mean():.4f} (n={len(vp)}, final train loss "
            f"{g_plain.loc[g_plain['status'] == 'completed', 'final_train_loss'].mean():.4g})"
            if len(vp)
            else f"no completed plain {plain_name} run"
        )
        rows.append(
            row(
                f"{cid}/out_of_range",
                f"explicit IGR-M baseline (β={beta:g}) vs plain {plain_name} at η={eta_k:g}, explicit runs outside "
                f"the baseline's range of validity (finding; {ds}, {setting_tag(mdl, width, bs)})",
                "docs/theory.md (T45), (T60)–(T63); docs/igrm_baseline.md, Range of validity",
                EXPECTED,
                diff,
                f"judged only with {range_txt}",
                OUT_OF_RANGE,
                detail=(
                    f"not judged: {len(g_out)} explicit run(s) outside the declared range ({range_txt}); "
                    f"measured: {_run_sharpness(g_out)}; mean final test accuracy explicit − plain = "
                    f"{diff:.4g} (explicit {vo.mean() if len(vo) else math.nan:.4f}, n={len(vo)}; {plain_txt})"
                    f"{mom_txt}; the baseline's claim inside its range: rows explicit_study/* "
                    f"(docs/igrm_baseline.md, Inside its range)"
                ),
            )
        )
    return rows
