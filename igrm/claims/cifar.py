"""Claim rows of the CIFAR stage (results/claims/cifar.csv): the paper's three
observations and the explicit IGR-M baseline, each tested with a bootstrap CI over seeds.

Verdict rule (fixed before any measurement): each claim is a signed statistic
(a least-squares slope, or a difference of means) whose paper-predicted sign is
positive. Its ``ci`` (config: 95 %) percentile bootstrap CI (seeds resampled with
replacement within each level: each h, each β, each method; igrm.stats) decides:
entirely above 0 -> reproduces; entirely below 0 -> does not reproduce; otherwise (or
fewer than ``min_seeds`` completed seeds, or too few levels) -> inconclusive. Diverged
runs are counted in every claim's detail but do not enter the accuracy statistics
(their final accuracy does not exist).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..config import num
from ..stats import bootstrap_levels, ci_verdict, percentile_ci, slope_bootstrap
from ..tidy.runs import SETTING, beta_sweep_etas, close, explicit_groups, select_finals, setting_tag
from . import INCONCLUSIVE, frame, row

EXPECTED = "> 0 (95% bootstrap CI entirely above 0)"
TOLERANCE = "CI above 0: reproduces; below 0: does not; straddles 0 or too few seeds: inconclusive"
PAPER = "Ghosh et al. ICLR 2023, slides 'Some prevalent observations in deep learning'"


def _levels(g: pd.DataFrame, by: str, value: str):
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


def _slope_row(cid, claim, source, xs, ys, ndiv, c, unit, xfmt, transform=None) -> dict:
    n_div = sum(ndiv)
    counts = ", ".join(f"{xfmt(x)}: n={len(v)}" + (f" (+{d} div.)" if d else "") for x, v, d in zip(xs, ys, ndiv))
    keep = [(x, v) for x, v in zip(xs, ys) if len(v)]
    n_min = min((len(v) for _, v in keep), default=0)
    if len(keep) < 2 or n_min < int(c["min_seeds"]):
        why = (f"needs >= 2 levels with completed runs and >= {c['min_seeds']} completed seeds at each; "
               f"have {counts or 'none'}")
        return row(cid, claim, source, EXPECTED, math.nan, TOLERANCE, INCONCLUSIVE, detail=why)
    kx = [transform(x) if transform else x for x, _ in keep]
    point, draws = slope_bootstrap(kx, [v for _, v in keep], int(c["bootstrap"]), int(c["bootstrap_seed"]))
    lo, hi = percentile_ci(draws, float(c["ci"]))
    from scipy.stats import spearmanr

    allx = np.concatenate([np.full(len(v), x) for x, v in keep])
    ally = np.concatenate([v for _, v in keep])
    rho = float(spearmanr(allx, ally).statistic) if np.ptp(ally) > 0 else math.nan
    means = ", ".join(f"{xfmt(x)}: {np.mean(v):.4f}" for x, v in keep)
    detail = (f"OLS slope {point:.4g} {unit}, {int(c['ci'] * 100)}% bootstrap CI [{lo:.4g}, {hi:.4g}] "
              f"({int(c['bootstrap'])} resamples of seeds within each level, seed {int(c['bootstrap_seed'])}); "
              f"Spearman ρ {rho:.3f}; means {means}; seeds {counts}"
              + (f"; {n_div} diverged runs excluded" if n_div else ""))
    return row(cid, claim, source, EXPECTED, point, TOLERANCE, ci_verdict(lo, hi),
               uncertainty=(hi - lo) / 2, detail=detail)


def cifar_claims(*, epochs: pd.DataFrame, finals: pd.DataFrame, spread_window: int | None, eta: float | None,
                 dataset: str | None, model: str | None, bootstrap: int, bootstrap_seed: int, ci: float,
                 min_seeds: int, explicit_against: str) -> pd.DataFrame:
    """Claims rows (igrm.claims.COLUMNS) per setting (dataset, model[, width, batch]):

    - ``cifar/obs1_acc_rises_with_h/<ds>/<tag>``: slope of final test accuracy of plain
      SGD (β = 0) against log10 h (accuracy per decade of h).
    - ``cifar/obs2_spread_falls_with_beta/<ds>/<tag>/eta<η>``: slope of −(std of test
      accuracy over the last N epochs) against β at fixed η (positive = spread falls).
    - ``cifar/obs3_acc_rises_with_beta/<ds>/<tag>/eta<η>``: slope of final test
      accuracy against β at fixed η (SGD+M).
    - ``cifar/explicit_ge_gd/<ds>/<tag>/eta<η>_beta<β>``: mean final accuracy of the
      explicit IGR-M baseline minus that of plain GD/SGD (β = 0) at the same η.

    The verdict of each row follows :func:`igrm.stats.ci_verdict` (module docstring).
    """
    c = {"bootstrap": bootstrap, "bootstrap_seed": bootstrap_seed, "ci": ci, "min_seeds": min_seeds}
    f = select_finals(finals=finals, epochs=epochs, spread_window=spread_window, dataset=dataset, model=model)
    rows: list[dict] = []
    for key, g in f.groupby(SETTING, sort=True):
        ds, mdl, width, bs = key
        tag = f"{ds}/{setting_tag(mdl, width, bs)}"
        where = f"{ds}, {setting_tag(mdl, width, bs)}"
        # ---- obs 1
        g0 = g[(g["method"] == "sgdm") & (g["beta"] == 0.0)]
        if len(g0):
            xs, ys, nd = _levels(g0, "h", "final_test_acc")
            rows.append(_slope_row(
                f"cifar/obs1_acc_rises_with_h/{tag}",
                f"plain SGD (β=0): final test accuracy rises with the learning rate h ({where})",
                PAPER + ", observation 1", xs, ys, nd, c, "accuracy per decade of h", lambda x: f"h={x:g}",
                transform=math.log10))
        # ---- obs 2 and 3, per η with a β sweep
        sg = g[g["method"] == "sgdm"]
        for eta_k in beta_sweep_etas(sg, eta=eta):
            ge = sg[close(sg["eta"], eta_k)]
            xs, ys, nd = _levels(ge, "beta", "last_std_test_acc")
            wins = sorted(set(ge.loc[ge["status"] == "completed", "spread_window"].astype(int)))
            r = _slope_row(
                f"cifar/obs2_spread_falls_with_beta/{tag}/eta{num(eta_k)}",
                f"SGD+M: the spread (std over the last N={','.join(map(str, wins))} epochs) of test accuracy "
                f"falls as β rises, η={eta_k:g} ({where}); measured: slope of −spread vs β",
                PAPER + ", observation 2", xs, [-v for v in ys], nd, c, "(−std of accuracy) per unit β",
                lambda x: f"β={x:g}")
            rows.append(r)
            xs, ys, nd = _levels(ge, "beta", "final_test_acc")
            rows.append(_slope_row(
                f"cifar/obs3_acc_rises_with_beta/{tag}/eta{num(eta_k)}",
                f"SGD+M: final test accuracy rises with β at fixed effective learning rate η={eta_k:g} ({where})",
                PAPER + ", observation 3", xs, ys, nd, c, "accuracy per unit β", lambda x: f"β={x:g}"))
    # ---- explicit baseline vs plain GD
    for key, fam, g_ex, g_mom, g_plain in explicit_groups(f, eta=eta, explicit_against=explicit_against):
        ds, mdl, width, bs, eta_k, beta = key
        cid = f"cifar/explicit_ge_gd/{ds}/{setting_tag(mdl, width, bs)}/eta{num(eta_k)}_beta{num(beta)}"
        plain_name = "GD" if fam == "gdm" else "SGD"
        claim = (f"explicit IGR-M baseline (β={beta:g}) reaches at least plain {plain_name}'s final test accuracy "
                 f"at the same η={eta_k:g} ({ds}, {setting_tag(mdl, width, bs)})")
        src = "docs/theory.md (T29)–(T30), (T42); Ghosh et al. ICLR 2023"
        ve = g_ex.loc[g_ex["status"] == "completed", "final_test_acc"].to_numpy(dtype=float)
        vp = g_plain.loc[g_plain["status"] == "completed", "final_test_acc"].to_numpy(dtype=float)
        ve, vp = ve[np.isfinite(ve)], vp[np.isfinite(vp)]
        d_ex = int((g_ex["status"] == "diverged").sum())
        d_pl = int((g_plain["status"] == "diverged").sum())
        counts = (f"explicit n={len(ve)}" + (f" (+{d_ex} div.)" if d_ex else "")
                  + f", plain {plain_name} n={len(vp)}" + (f" (+{d_pl} div.)" if d_pl else ""))
        if min(len(ve), len(vp)) < int(c["min_seeds"]):
            rows.append(row(cid, claim, src, EXPECTED, math.nan, TOLERANCE, INCONCLUSIVE,
                            detail=f"needs >= {c['min_seeds']} completed seeds of each; have {counts}"))
            continue
        point = float(ve.mean() - vp.mean())
        draws = bootstrap_levels([ve, vp], lambda r: r[0].mean(axis=1) - r[1].mean(axis=1),
                                 int(c["bootstrap"]), int(c["bootstrap_seed"]))
        lo, hi = percentile_ci(draws, float(c["ci"]))
        vm = g_mom.loc[g_mom["status"] == "completed", "final_test_acc"].to_numpy(dtype=float)
        mom_txt = (f"; heavy-ball {'GD+M' if fam == 'gdm' else 'SGD+M'} β={beta:g}: {np.nanmean(vm):.4f} (n={len(vm)})"
                   if len(vm) else "")
        rows.append(row(
            cid, claim, src, EXPECTED, point, TOLERANCE, ci_verdict(lo, hi), uncertainty=(hi - lo) / 2,
            detail=(f"mean difference {point:.4g} (explicit {ve.mean():.4f} − plain {vp.mean():.4f}), "
                    f"{int(c['ci'] * 100)}% bootstrap CI [{lo:.4g}, {hi:.4g}] ({int(c['bootstrap'])} resamples, seeds "
                    f"resampled within each method, seed {int(c['bootstrap_seed'])}); {counts}{mom_txt}; "
                    "'≥' is tested as CI above 0 (equality cannot be shown)")))
    return frame(rows)
