"""Claim rows of the CIFAR stage (results/claims/cifar.csv): the paper's three
observations and the explicit IGR-M baseline, each tested with a t-interval over seeds.

Observations 1–3 (docs/observations.md, docs/theory.md (T150)–(T153)): one OLS slope per
seed over its levels (a seed's runs share its initialisation and data order), the mean
slope × the grid's range with a t-interval on n − 1 df (valid under seed × level
interaction), judged by the three-way rule with the margin declared in the config
(train.analysis.obs1_margin, obs2_margin_ratio, obs3_margin): above 0 and reaching the
margin -> reproduces; below 0, or inside ±margin (TOST) -> does not reproduce; else
inconclusive with the seeds per level that decide ((T152)). Each row leads with its setting.
The explicit baseline: Welch's t-interval ((T47)), entirely above 0 -> reproduces, below ->
does not reproduce, else inconclusive with its MDE and the seeds needed ((T49), (T50)).
Fewer than ``min_seeds`` (default 3) completed seeds at some level (or fewer than two
levels) -> inconclusive whatever the interval. ``measured`` is the statistic, ``uncertainty``
the interval's half-width. Diverged runs are counted in every claim's detail but do not
enter the accuracy statistics (their final accuracy does not exist).

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
    margin_verdict,
    mde,
    pooled_sd,
    seed_slope_t,
    seed_slopes,
    seeds_needed_diff,
    seeds_needed_paired,
    seeds_to_decide,
    simulate_seed_design,
    welch_t,
)
from ..tidy.runs import SETTING, beta_sweep_etas, close, explicit_groups, select_finals, setting_tag
from ..validity import epsilon_bound, in_declared_range
from . import INCONCLUSIVE, OUT_OF_RANGE, REPRODUCES, frame, row

EXPECTED = "> 0 (95% t-interval over seeds entirely above 0)"
TOLERANCE = (
    "t-interval above 0: reproduces; below 0: does not; straddles 0, or fewer than min_seeds "
    "completed seeds per level: inconclusive (with MDE and seeds needed)"
)
PAPER = "Ghosh et al. ICLR 2023, slides 'Some prevalent observations in deep learning'"


def seed_levels(g: pd.DataFrame, by: str, value: str):
    """(x levels, completed finite values per level as a Series indexed by seed, seeds per
    level, diverged per level). The seed index pairs a seed's runs across the levels (they
    share its initialisation and data order): :func:`slope_row` fits one slope per seed."""
    xs, ys, ndiv = [], [], []
    for x, gx in g.groupby(by, sort=True):
        ok = gx[(gx["status"] == "completed")]
        v = pd.Series(ok[value].to_numpy(dtype=float), index=ok["seed"].to_numpy(dtype=int))
        xs.append(float(x))
        ys.append(v[np.isfinite(v.to_numpy())])
        ndiv.append(int((gx["status"] == "diverged").sum()))
    return xs, ys, ndiv


def _fmt_n(n: int | None) -> str:
    return f"> {SEEDS_CAP}" if n is None else str(n)


def seed_table(ys) -> tuple[np.ndarray, list[int]]:
    """(n_seeds, k) table of the per-level values, NaN where a seed has no completed run; a
    level given as a plain array is indexed by position (seed i = the i-th value)."""
    series = [v if isinstance(v, pd.Series) else pd.Series(np.asarray(v, float)) for v in ys]
    seeds = sorted(set().union(*(set(v.index) for v in series))) if series else []
    tab = np.full((len(seeds), len(series)), np.nan)
    pos = {s: i for i, s in enumerate(seeds)}
    for j, v in enumerate(series):
        for s_, val in v.items():
            tab[pos[s_], j] = float(val)
    return tab, seeds


def slope_row(
    cid, claim, source, xs, ys, ndiv, c, unit, xfmt, transform=None, *, margin=None, effect_text=None, setting=""
) -> dict:
    """A seed-level slope claim row (docs/theory.md (T150)–(T152)): one OLS slope per seed over
    its levels (``ys[j]``: the seeds' values at ``xs[j]``, a Series indexed by seed), the mean
    slope with its t-interval on n − 1 df (valid under seed × level interaction).

    ``margin`` None: the statistic is the mean slope (``unit`` per unit x) and the verdict the
    interval's side ((T50)). ``margin`` δ > 0 (declared in the config): the statistic is the
    fitted change across the grid, slope × (x_max − x_min), in ``unit``, judged by
    :func:`igrm.stats.margin_verdict` ((T151)); an inconclusive row states the seeds per level
    that decide with power 0.8 ((T152)). ``effect_text(lo, est, hi)`` renders the statistic in
    the claim's own units for the detail (default: the numbers). ``setting`` leads the detail."""
    ci, min_seeds = float(c["ci"]), int(c["min_seeds"])
    n_div = sum(ndiv)
    counts = ", ".join(f"{xfmt(x)}: n={len(v)}" + (f" (+{d} div.)" if d else "") for x, v, d in zip(xs, ys, ndiv))
    keep = [(x, v) for x, v in zip(xs, ys) if len(v)]
    div_txt = f"; {n_div} diverged runs excluded" if n_div else ""
    lead = f"setting: {setting}; " if setting else ""
    expected, tolerance = _expected(margin, unit)
    if len(keep) < 2:
        why = (
            f"inconclusive: needs >= 2 levels with completed runs and >= {min_seeds} completed seeds at each; "
            f"have {counts or 'none'}; no slope without 2 levels{div_txt}"
        )
        return row(cid, claim, source, expected, math.nan, tolerance, INCONCLUSIVE, detail=lead + why)
    kx = np.array([transform(x) if transform else x for x, _ in keep])
    tab, _ = seed_table([v for _, v in keep])
    span = float(np.ptp(kx)) if margin is not None else 1.0
    b = seed_slopes(kx, tab) * span
    iv = seed_slope_t(kx, tab, ci)
    point, se, df = float(iv.estimate) * span, float(iv.se) * span, float(iv.df)
    lo, hi = point - float(iv.half_width) * span, point + float(iv.half_width) * span
    n_seeds = int(np.isfinite(b).sum())
    n_min = min(len(v) for _, v in keep)
    sd_b = float(np.nanstd(b, ddof=1)) if n_seeds > 1 else math.nan
    show = effect_text or (lambda lo_, e_, hi_: f"{e_:.4g} [{lo_:.4g}, {hi_:.4g}]")
    what = "fitted change across the grid (slope × range)" if margin is not None else "mean per-seed slope"
    stat = (
        f"{what} {show(lo, point, hi)} {unit}, {int(round(ci * 100))}% t-interval over n={n_seeds} seeds "
        f"(one OLS slope per seed over its levels, t_{{{1 - (1 - ci) / 2:.3g},{df:.0f}}}·SE, SE {se:.4g}, "
        f"SD of the per-seed values {sd_b:.4g}, df n−1; uncertainty = CI half-width {(hi - lo) / 2:.4g}); "
        "per-seed values " + ", ".join(f"{v:.4g}" for v in b[np.isfinite(b)])
    )
    means = ", ".join(f"{xfmt(x)}: {np.mean(v):.4f}" for x, v in keep)
    incomplete = int((np.isfinite(tab).sum(1) < len(keep)).sum())
    inc_txt = f"; {incomplete} seeds miss a level (slope over their other levels)" if incomplete else ""
    detail = f"{stat}; means {means}; seeds {counts}{inc_txt}{div_txt}{_coverage_text(kx, n_seeds, sd_b, span, ci)}"
    too_few = n_min < min_seeds or n_seeds < min_seeds
    if too_few:
        verdict, why = INCONCLUSIVE, f"inconclusive: needs >= {min_seeds} completed seeds at every level, have {n_min}"
    elif margin is None:
        verdict, why = _seed_verdict(lo, hi, False, "")
    else:
        verdict, why = margin_verdict(lo, hi, float(margin)), ""
        if verdict == INCONCLUSIVE:
            why = "inconclusive: the interval contains 0 and reaches the margin"
    if verdict == INCONCLUSIVE:
        detail = f"{why}; {_needed_text(point, sd_b, margin, ci, min_seeds)}; {detail}"
    elif margin is not None:
        detail = f"{_decided_text(verdict, lo, hi, float(margin))}; {detail}"
    return row(
        cid,
        claim,
        source,
        expected,
        point,
        tolerance,
        verdict,
        uncertainty=(hi - lo) / 2 if math.isfinite(hi - lo) else math.nan,
        detail=lead + detail,
    )


def _coverage_text(kx, n_seeds: int, sd_b: float, span: float, ci: float) -> str:
    """Coverage of this row's interval simulated at its own design (docs/theory.md (T153)):
    its levels and seeds, an additive seed effect and a seed × level interaction whose slope
    SD is the observed per-seed SD (run noise 0: the interaction carries all of it)."""
    if n_seeds < 2 or not (math.isfinite(sd_b) and sd_b > 0):
        return ""
    sim = simulate_seed_design(
        kx, n_seeds, slope=0.0, noise_sd=0.0, seed_sd=sd_b, interaction_sd=sd_b / span, level=ci, reps=2000
    )
    return (
        f"; coverage simulated at this design ({n_seeds} seeds × {len(kx)} levels, seed × level interaction, "
        f"2000 replicates, (T153)): per-seed interval {sim['per_seed']:.3f}, pooled OLS (T48) {sim['pooled_ols']:.3f}"
    )


def _expected(margin, unit: str) -> tuple[str, str]:
    """(expected, tolerance) texts of a slope row with or without a declared margin."""
    if margin is None:
        return EXPECTED, TOLERANCE
    m = float(margin)
    return (
        f"> 0, at least the smallest effect of interest {m:g} {unit} (declared before the run)",
        f"95% interval above 0 and reaching {m:g}: reproduces; below 0, or inside ±{m:g} (TOST): does not "
        "reproduce; else inconclusive with the seeds that decide (docs/theory.md (T151))",
    )


def _decided_text(verdict: str, lo: float, hi: float, m: float) -> str:
    if verdict == REPRODUCES:
        return f"reproduces: interval [{lo:.4g}, {hi:.4g}] above 0 and reaching the margin {m:g}"
    if hi < 0:
        return f"does not reproduce: interval [{lo:.4g}, {hi:.4g}] below 0 (the opposite direction)"
    return f"does not reproduce: interval [{lo:.4g}, {hi:.4g}] inside ±{m:g} (the effect is below the margin, TOST)"


def _needed_text(effect: float, sd: float, margin, ci: float, min_seeds: int) -> str:
    """Seeds per level that would decide (with margin: (T152)) or detect the observed effect ((T49))."""
    if not math.isfinite(sd):
        return "seeds per level that would decide: not estimable (fewer than 2 per-seed slopes)"
    if margin is not None:
        n = seeds_to_decide(sd, float(margin), ci, POWER, n_min=max(min_seeds, 2))
        return (
            f"seeds per level that decide either way with power {POWER:g} at the margin (true effect δ → "
            f"reproduces, 0 → does not), at the per-seed SD {sd:.4g}: {_fmt_n(n) if n else '> 200'}"
        )
    n = seeds_needed_paired(effect, sd, ci, n_min=max(min_seeds, 2))
    return f"seeds per level to detect the observed |slope| {abs(effect):.4g} (power {POWER:g}): {_fmt_n(n)}"


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
            f"seed {int(r['seed'])}: λ_max {r['sharpness_init']:.4g} at init, max spectral radius "
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
    accuracy: str,
    obs1_margin: float,
    obs2_margin_ratio: float,
    obs3_margin: float,
) -> pd.DataFrame:
    """Claims rows (igrm.claims.COLUMNS) per setting (dataset, model[, width, batch]):

    - ``cifar/obs1_acc_rises_with_h/<ds>/<tag>``: plain SGD (β = 0), test accuracy (the
      ``accuracy`` statistic: ``last_mean`` over the last N epochs, or ``final``) against
      log10 h: the fitted change across the h grid, judged against ``obs1_margin``.
    - ``cifar/obs2_spread_falls_with_beta/<ds>/<tag>/eta<η>``: the detrended SD of test
      accuracy over the last N epochs (:func:`igrm.tidy.runs.plateau`) on a log scale against
      β at fixed η, over the runs that levelled off (|rise| ≤ ``plateau_max_rise``): the fitted
      ratio spread(β_max)/spread(β_min), judged against ``obs2_margin_ratio`` (< 1);
      ``.../out_of_range``: the runs that never levelled off.
    - ``cifar/obs3_acc_rises_with_beta/<ds>/<tag>/eta<η>``: test accuracy against β at fixed η
      (SGD+M): the fitted change across the β grid, judged against ``obs3_margin``.
    - ``cifar/explicit_ge_gd/<ds>/<tag>/eta<η>_beta<β>``: mean final accuracy of the
      explicit IGR-M baseline minus that of plain GD/SGD (β = 0) at the same η, over the
      explicit runs inside the declared range (docs/theory.md (T63)); ``.../out_of_range``.

    Observations 1–3: one OLS slope per seed, t-interval over seeds, the three-way rule with
    the declared margin (docs/theory.md (T150)–(T152); docs/observations.md). The keywords after
    the tables are the config section train.analysis, ``eta``
    (igrm.pipeline.targets.analysis_eta) and ``model`` (train.model).
    """
    c = {"ci": ci, "min_seeds": min_seeds}
    margins = {"obs1": obs1_margin, "obs2": math.log(1 / obs2_margin_ratio), "obs3": obs3_margin}
    acc_col = {"last_mean": "last_mean_test_acc", "final": "final_test_acc"}[accuracy]
    f = select_finals(finals=finals, epochs=epochs, spread_window=spread_window, dataset=dataset, model=model)
    rows: list[dict] = []
    for key, g in f.groupby(SETTING, sort=True):
        rows += _obs1_rows(g, key, c, acc_col, margins["obs1"])
        rows += _beta_sweep_rows(
            g, key, c, eta=eta, plateau_max_rise=plateau_max_rise, acc_col=acc_col, margins=margins
        )
    for group in explicit_groups(f, eta=eta, explicit_against=explicit_against):
        rows += _explicit_rows(*group, c, max_epsilon=max_epsilon, max_penalty_curvature=max_penalty_curvature)
    return frame(rows)


def _where(key) -> tuple[str, str]:
    """(claim-id part, text) of a setting (dataset, model, width, batch)."""
    ds, mdl, width, bs = key
    return f"{ds}/{setting_tag(mdl, width, bs)}", f"{ds}, {setting_tag(mdl, width, bs)}"


ACC_TEXT = {
    "last_mean_test_acc": "mean test accuracy over the last {w} epochs",
    "final_test_acc": "final test accuracy",
}


def setting_text(g: pd.DataFrame, key, levels: str) -> str:
    """The setting a row was decided in: dataset, model, seeds per level, epochs, η / h, batch."""
    ds, mdl, width, bs = key
    done = g[g["status"] == "completed"]
    n = done.groupby(levels)["seed"].nunique()
    n_txt = f"{n.min()}" if len(n) and n.min() == n.max() else (f"{n.min()}–{n.max()}" if len(n) else "0")
    ep = sorted(set(done["epochs_run"].astype(int))) if len(done) else []
    return (
        f"{ds}, {mdl} ×{float(width):g}, batch {int(bs)}, {n_txt} seeds per level, "
        f"{'/'.join(map(str, ep)) or '?'} epochs at constant lr"
    )


def _acc_label(acc_col: str, g: pd.DataFrame) -> str:
    wins = sorted(set(g.loc[g["status"] == "completed", "spread_window"].astype(int)))
    return ACC_TEXT[acc_col].format(w=",".join(map(str, wins)) or "N")


def _obs1_rows(g: pd.DataFrame, key, c: dict, acc_col: str, margin: float) -> list[dict]:
    """Observation 1 of one setting: plain SGD's test accuracy against log10 h."""
    tag, where = _where(key)
    rows = []
    g0 = g[(g["method"] == "sgdm") & (g["beta"] == 0.0)]
    if g0["h"].nunique() >= 2:
        xs, ys, nd = seed_levels(g0, "h", acc_col)
        lo_h, hi_h = g0["h"].min(), g0["h"].max()
        setting = setting_text(g0, key, "h") + f", plain SGD h = {lo_h:g}…{hi_h:g}"
        r1 = slope_row(
            f"cifar/obs1_acc_rises_with_h/{tag}",
            f"plain SGD (β=0): {_acc_label(acc_col, g0)} rises with the learning rate h ({setting})",
            PAPER + ", observation 1",
            xs,
            ys,
            nd,
            c,
            f"accuracy from h={lo_h:g} to h={hi_h:g}",
            lambda x: f"h={x:g}",
            transform=math.log10,
            margin=margin,
            effect_text=lambda lo, e, hi: f"{100 * e:+.2f} pp [{100 * lo:+.2f}, {100 * hi:+.2f}]",
            setting=setting,
        )
        r1["detail"] += _eps_note(g0, "h", lambda x: f"h={x:g}")
        rows.append(r1)
    return rows


def _ratio_text(lo: float, e: float, hi: float) -> str:
    """−log ratio interval → spread ratio (β_max over β_min) with its interval."""
    return (
        f"ratio {math.exp(-e):.3g} [{math.exp(-hi):.3g}, {math.exp(-lo):.3g}] (−log ratio {e:.3g} [{lo:.3g}, {hi:.3g}])"
    )


def _beta_sweep_rows(
    g: pd.DataFrame, key, c: dict, *, eta: float | None, plateau_max_rise: float, acc_col: str, margins: dict
) -> list[dict]:
    """Observations 2 and 3 of one setting, per η with a β sweep of SGD+M."""
    tag, where = _where(key)
    rows: list[dict] = []
    sg = g[g["method"] == "sgdm"]
    for eta_k in beta_sweep_etas(sg, eta=eta):
        ge = sg[close(sg["eta"], eta_k)].copy()
        done = ge["status"] == "completed"
        flat = done & (ge["plateau_rise"].abs() <= float(plateau_max_rise))
        rising = ge[done & ~flat]
        with np.errstate(divide="ignore"):
            ge["log_spread"] = np.log(ge["plateau_spread"].to_numpy(dtype=float))
        xs, ys, nd = seed_levels(ge[flat | ~done], "beta", "log_spread")
        wins = sorted(set(ge.loc[done, "spread_window"].astype(int)))
        b_lo, b_hi = ge["beta"].min(), ge["beta"].max()
        setting = setting_text(ge[flat | ~done], key, "beta") + f", SGD+M η={eta_k:g}, β = {b_lo:g}…{b_hi:g}"
        cid = f"cifar/obs2_spread_falls_with_beta/{tag}/eta{num(eta_k)}"
        claim = (
            f"SGD+M: the epoch-to-epoch spread of test accuracy once the curve has levelled off (detrended SD "
            f"over the last N={','.join(map(str, wins))} epochs) falls as β rises ({setting}); measured: the "
            f"fitted ratio spread(β={b_hi:g})/spread(β={b_lo:g})"
        )
        r = slope_row(
            cid,
            claim,
            PAPER + ", observation 2",
            xs,
            [-v for v in ys],
            nd,
            c,
            f"(−log spread) from β={b_lo:g} to β={b_hi:g}",
            lambda x: f"β={x:g}",
            margin=margins["obs2"],
            effect_text=_ratio_text,
            setting=setting,
        )
        r["detail"] += (
            f"; margin: ratio ≤ {math.exp(-margins['obs2']):.3g} (−log ratio ≥ {margins['obs2']:.3g}, "
            f"train.analysis.obs2_margin_ratio); levelled off: |rise of the fitted line over the window| ≤ "
            f"{float(plateau_max_rise):g} (train.analysis.plateau_max_rise); {len(rising)} of {int(done.sum())} "
            f"completed runs never levelled off, left out (row {cid}/out_of_range)"
        )
        rows.append(r)
        if len(rising):
            rows.append(_rising_row(cid, claim, rising, plateau_max_rise))
        xs, ys, nd = seed_levels(ge, "beta", acc_col)
        setting3 = setting_text(ge, key, "beta") + f", SGD+M η={eta_k:g}, β = {b_lo:g}…{b_hi:g}"
        r3 = slope_row(
            f"cifar/obs3_acc_rises_with_beta/{tag}/eta{num(eta_k)}",
            f"SGD+M: {_acc_label(acc_col, ge)} rises with β at fixed effective learning rate η={eta_k:g} ({setting3})",
            PAPER + ", observation 3",
            xs,
            ys,
            nd,
            c,
            f"accuracy from β={b_lo:g} to β={b_hi:g}",
            lambda x: f"β={x:g}",
            margin=margins["obs3"],
            effect_text=lambda lo, e, hi: f"{100 * e:+.2f} pp [{100 * lo:+.2f}, {100 * hi:+.2f}]",
            setting=setting3,
        )
        r3["detail"] += _eps_note(ge, "beta", lambda x: f"β={x:g}")
        rows.append(r3)
    return rows


def _rising_row(cid: str, claim: str, rising: pd.DataFrame, plateau_max_rise: float) -> dict:
    """The obs-2 runs that never levelled off: their own row, verdict 'out of range'."""
    return row(
        cid + "/out_of_range",
        claim + " — runs that never levelled off",
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
                else "window < 3 epochs: no levelling-off test"
            )
            for r_ in rising.itertuples()
        ),
    )


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
