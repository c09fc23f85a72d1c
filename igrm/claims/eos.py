"""Claim rows of the edge-of-stability study (results/claims/eos.csv; docs/mechanism.md
(S1)–(S8)): which explanation of momentum's flatness the full-batch runs support, where.

- ``eos/at_edge/<tag>/beta<β>``: Cohen et al.'s claim, final λ_max·h/(2(1+β)) = 1 within
  ``edge_margin`` while at the edge ((S3)); out of range for runs that never reached it;
- ``eos/flow2/<tag>/beta<β>``: flow (2)'s range at the end, ε = hλ_max/(1−β)² ((S3): at the
  edge ε ≥ 2, always outside);
- ``eos/matched_loss/<tag>/<quantity>/level<j>``: −(value) vs β at a common train-loss level
  ((S6), (S7)), the seed-level slope of igrm.claims.cifar.slope_row; out of range where some
  run's bracket is wider than ``max_bracket_ratio``;
- ``eos/final/<tag>/<quantity>``: the same at the last record, only where every run
  converged ((S8)).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..eos import edge_summary, eos_ratio
from ..flatness import by_level, common_levels
from ..validity import epsilon_bound
from . import FAILS, INCONCLUSIVE, OUT_OF_RANGE, REPRODUCES, frame, row
from .cifar import slope_row

SOURCE = "Cohen et al. ICLR 2021 (GD+M sharpness hovers at 2(1+β)/h); docs/mechanism.md (S1)–(S8)"
QUANTITIES = {"lambda_max": "λ_max", "trace": "tr H", "grad_norm_sq": "‖∇E‖²"}


def _edge_row(tag: str, beta: float, g: pd.DataFrame, margin: float, window: float) -> dict:
    """(S3) over the seeds of one (setting, β)."""
    h = float(g["h"].iloc[0])
    per = []
    for seed, gs in g.groupby("seed", sort=True):
        r = eos_ratio(lam=gs.sort_values("step")["lambda_max"].to_numpy(), beta=beta, h=h)
        per.append((int(seed), edge_summary(ratio=r, window=window, margin=margin), float(r[np.isfinite(r)][-1])))
    at = [(s, e) for s, e, _ in per if e["reached"]]
    text = "; ".join(
        f"seed {s}: {'reached' if e['reached'] else 'not reached'}, final-window r {e['lo']:.3f}–{e['hi']:.3f} "
        f"(mean {e['mean']:.3f}, {e['n']} records), last r {last:.3f}"
        for s, e, last in per
    )
    cid = f"eos/at_edge/{tag}/beta{beta:g}"
    claim = f"full-batch GD+M's λ_max hovers at the stability limit 2(1+β)/h once there ({tag}, β={beta:g}, h={h:g})"
    detail = f"λ_EoS = 2(1+β)/h = {2 * (1 + beta) / h:.4g} ((S1)); r = λ_max·h/(2(1+β)) ((S2)); {text}"
    if not at:
        mean_last = float(np.mean([last for _, _, last in per]))
        return row(
            cid + "/out_of_range",
            claim + " — runs that never reached the edge",
            SOURCE,
            "r = 1 at the edge",
            mean_last,
            f"judged only once r ≥ {1 - margin:g} before the final window",
            OUT_OF_RANGE,
            detail=f"not at the edge: no record before the final window reached r ≥ {1 - margin:g}; {detail}",
        )
    means = [e["mean"] for _, e in at]
    lo, hi = min(e["lo"] for _, e in at), max(e["hi"] for _, e in at)
    if all(1 - margin <= e["lo"] and e["hi"] <= 1 + margin for _, e in at):
        verdict = REPRODUCES
    elif any(abs(m - 1) > margin for m in means):
        verdict = FAILS
    else:
        verdict = INCONCLUSIVE
    if len(at) < len(per):
        detail += f"; judged on the {len(at)} of {len(per)} seeds that reached the edge"
    return row(
        cid,
        claim,
        SOURCE,
        1.0,
        float(np.mean(means)),
        f"every final-window r in [1 − {margin:g}, 1 + {margin:g}]",
        verdict,
        uncertainty=float(max(hi - np.mean(means), np.mean(means) - lo)),
        detail=detail + f"; window range over judged seeds [{lo:.3f}, {hi:.3f}]",
    )


def _flow2_row(tag: str, beta: float, g: pd.DataFrame, max_epsilon: float) -> dict:
    h = float(g["h"].iloc[0])
    last = g[g["step"] == g["step"].max()]
    eps = h * last["lambda_max"].abs().to_numpy(dtype=float) / (1 - beta) ** 2
    bound = epsilon_bound(beta=beta, max_epsilon=max_epsilon)
    cid = f"eos/flow2/{tag}/beta{beta:g}"
    claim = f"flow (2) describes full-batch GD+M's final sharpness ({tag}, β={beta:g}, h={h:g})"
    detail = (
        f"final ε = hλ_max/(1−β)² per seed: {', '.join(f'{e:.3g}' for e in eps)}; bound min(max_epsilon, "
        f"1/(1+√β)²) = {bound:.3g}; at the edge ε = 2(1+β)/(1−β)² = {2 * (1 + beta) / (1 - beta) ** 2:.3g} ((S3))"
    )
    if np.nanmax(eps) > bound:
        return row(
            cid + "/out_of_range",
            claim + " — outside flow (2)'s range",
            SOURCE,
            "flow (2) limit sharpness",
            float(np.nanmax(eps)),
            f"judged only with ε ≤ {bound:.3g}",
            OUT_OF_RANGE,
            detail=f"not judged: ε above the bound; {detail}",
        )
    return row(
        cid,
        claim,
        SOURCE,
        "flow (2) limit sharpness",
        float(np.nanmax(eps)),
        f"ε ≤ {bound:.3g}",
        INCONCLUSIVE,
        detail=f"inconclusive: in range, but flow (2)'s limit on this network is not computed ((S3)); {detail}",
    )


def _slope(cid, claim, frame_, column, label, c, where):
    xs, ys, nd = [], [], []
    for b, gb in frame_.groupby("beta", sort=True):
        v = gb[column].to_numpy(dtype=float)
        xs.append(float(b)), ys.append(v[np.isfinite(v)]), nd.append(0)
    return slope_row(cid, claim, SOURCE, xs, [-v for v in ys], nd, c, f"(−{label}) per unit β", lambda x: f"β={x:g}")


def _matched_rows(tag: str, g: pd.DataFrame, c: dict) -> list[dict]:
    """(S6)–(S7): one row per (quantity, level); the level's range from every run's bracket."""
    runs = [gs.sort_values("step") for _, gs in g.groupby(["beta", "seed"], sort=True)]
    levels = common_levels(losses=[r["loss"].to_numpy() for r in runs], n_levels=int(c["n_levels"]))
    if not len(levels):
        return []
    rows = []
    keyed = [(r["beta"].iloc[0], r["seed"].iloc[0], r) for r in runs]
    for j, level, vj, widest in by_level(runs=keyed, quantities=list(QUANTITIES), levels=levels):
        for q, label in QUANTITIES.items():
            cid = f"eos/matched_loss/{tag}/{q}/level{j}"
            claim = (
                f"{label} at equal train loss {level:.4g} falls as β rises ({tag}); measured: slope of −{label} vs β"
            )
            if not widest <= float(c["max_bracket_ratio"]):
                rows.append(
                    row(
                        cid + "/out_of_range",
                        claim + " — interpolated across too wide a bracket",
                        SOURCE,
                        "slope < 0",
                        math.nan,
                        f"judged only with every bracket ≤ {c['max_bracket_ratio']:g}",
                        OUT_OF_RANGE,
                        detail=f"widest loss bracket around the level {widest:.3g} ((S7))",
                    )
                )
                continue
            r = _slope(cid, claim, vj, q, label, c, tag)
            r["detail"] += f"; loss level {level:.4g} ((S6)), widest bracket {widest:.3g} ((S7))"
            rows.append(r)
    return rows


def _final_rows(tag: str, g: pd.DataFrame, c: dict) -> list[dict]:
    """(S8): the last record, judged only where every run converged."""
    first = g[g["step"] == g["step"].min()].set_index(["beta", "seed"])["loss"]
    last = g[g["step"] == g["step"].max()].set_index(["beta", "seed"])
    frac = (last["loss"] / first).to_numpy(dtype=float)
    ok = bool(np.all(frac <= float(c["converged_fraction"])))
    rows = []
    for q, label in QUANTITIES.items():
        cid = f"eos/final/{tag}/{q}"
        claim = f"the final {label} falls as β rises ({tag}); measured: slope of −{label} vs β"
        txt = f"final/initial loss per run {np.nanmin(frac):.3g}–{np.nanmax(frac):.3g} (converged: ≤ {c['converged_fraction']:g}, (S8))"
        if not ok:
            rows.append(
                row(
                    cid + "/out_of_range",
                    claim + " — runs not converged",
                    SOURCE,
                    "slope < 0",
                    math.nan,
                    f"judged only where every run converged ({txt})",
                    OUT_OF_RANGE,
                    detail=f"not judged: {txt}",
                )
            )
            continue
        r = _slope(cid, claim, last.reset_index(), q, label, c, tag)
        r["detail"] += f"; {txt}"
        rows.append(r)
    return rows


def eos_claims(
    *,
    table: pd.DataFrame,
    ci: float,
    min_seeds: int,
    max_epsilon: float,
    edge_margin: float,
    edge_window: float,
    n_levels: int,
    max_bracket_ratio: float,
    converged_fraction: float,
) -> pd.DataFrame:
    """The rows of the module docstring for every setting of the tidy EoS ``table``
    (igrm.eos.eos_table). Diverged runs are left out of every row and named."""
    c = {
        "ci": ci,
        "min_seeds": min_seeds,
        "n_levels": n_levels,
        "max_bracket_ratio": max_bracket_ratio,
        "converged_fraction": converged_fraction,
    }
    rows = []
    for tag, g in table.groupby("setting", sort=True):
        g = g[~g["diverged"].astype(bool)]
        for beta, gb in g.groupby("beta", sort=True):
            rows.append(_edge_row(tag, float(beta), gb, edge_margin, edge_window))
            rows.append(_flow2_row(tag, float(beta), gb, max_epsilon))
        rows += _matched_rows(tag, g, c)
        rows += _final_rows(tag, g, c)
    return frame(rows)
