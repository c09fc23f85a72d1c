"""Claims rows of the gradient-noise stage (results/claims/noise.csv; docs/noise.md §7):
Obs-1 and Obs-2 of the slides, measured against the exact theory (igrm/noise_theory.py) and
against the slides' factors, from the tidy tables of igrm/tidy/noise.py."""

from __future__ import annotations

import math

import pandas as pd
from scipy.stats import binom

from . import FAILS, INCONCLUSIVE, REPRODUCES, frame, row


def noise_claims(ratios: pd.DataFrame, regularisation: pd.DataFrame, *, ci_level: float,
                 slides_rel_tol: float) -> pd.DataFrame:
    """Claims rows (docs/noise.md §7), per (point, sampler):
    noise/variance_ratio_theory/<point>/<sampler>: how many (β, k) CIs miss the exact theory
      (reproduces when misses ≤ the 99% binomial quantile at 1−ci_level);
    noise/variance_ratio_slides/<point>/<sampler>: measured ratio at the largest k vs (1−β)/(1+β);
    noise/reg_ratio_theory/<point>/<sampler>: CIs of E[IGRM]/E[IGR] − exact theory that miss 0;
    noise/reg_ratio_slides/<point>/<sampler>[/force]: measured ratio at the largest k vs 1/(1−β)
      as written (same h) and normalised to the force (×(1−β)); relative tolerance slides_rel_tol.
    ratios, regularisation: the tables of igrm.tidy.noise (noise_ratios, noise_regularisation)."""
    level = float(ci_level)
    tol = float(slides_rel_tol)
    rat, reg = ratios, regularisation
    rows = []
    for (point, s), d in rat.groupby(["point", "sampler"], sort=False):
        tag = f"{point or 'point'}/{s}"
        miss = (d["theory"] < d["lo"]) | (d["theory"] > d["hi"])
        n, m = len(d), int(miss.sum())
        allowed = int(binom.ppf(0.99, n, 1 - level))
        worst = d.loc[d["z"].abs().idxmax()]
        dep = d[d["k"] == d["k"].max()]
        rows.append(row(
            f"noise/variance_ratio_theory/{tag}",
            f"Obs-1: tr Cov((1−β)∇G_k)/tr Cov(g) equals the exact {s} theory at every (β, k)",
            "slides Obs-1; docs/noise.md §2", f"{n} CIs cover theory", float(n - m),
            f"misses ≤ {allowed} of {n}", REPRODUCES if m <= allowed else FAILS,
            detail=(f"{m} of {n} {level:.0%} CIs miss; worst z {worst['z']:.2f} at β={worst['beta']:g}, k={worst['k']}; "
                    + "; ".join(f"β={r.beta:g}: {r.ratio:.4g} [{r.lo:.4g}, {r.hi:.4g}] vs {r.theory:.4g}"
                                + (f" (iid {r.theory_iid:.4g})" if s == "epoch" else "")
                                for r in dep.itertuples()))))
        kmax = d["k"].max()
        dk = d[(d["k"] == kmax) & (d["beta"] > 0)]
        rel = (dk["ratio"] / dk["slides"] - 1).abs()
        inside = ((dk["slides"] >= dk["lo"]) & (dk["slides"] <= dk["hi"])) | (rel <= tol)
        worst_i = rel.idxmax() if len(rel) else None
        rows.append(row(
            f"noise/variance_ratio_slides/{tag}",
            f"slides: Cov(G_k) = (1−β)/(1+β) Cov(E_k) (k={kmax}, {s} mini-batches)",
            "slides Obs-1", "(1−β)/(1+β)", float(rel.max()) if len(rel) else math.nan,
            f"rel ≤ {tol:g} or inside CI", REPRODUCES if len(rel) and inside.all() else
            (INCONCLUSIVE if not len(rel) else FAILS),
            detail=(f"max |measured/slides − 1| at β={dk.loc[worst_i, 'beta']:g}; " if worst_i is not None else "")
            + "; ".join(f"β={r.beta:g}: {r.ratio:.4g} vs {r.slides:.4g}" for r in dk.itertuples())))
    for (point, s), d in reg.groupby(["point", "sampler"], sort=False):
        tag = f"{point or 'point'}/{s}"
        miss = (d["diff_lo"] > 0) | (d["diff_hi"] < 0)
        n, m = len(d), int(miss.sum())
        allowed = int(binom.ppf(0.99, n, 1 - level))
        mu, tr = float(d["mean_sq_norm"].iloc[0]), float(d["trace_cov"].iloc[0])
        rows.append(row(
            f"noise/reg_ratio_theory/{tag}",
            f"E[IGRM_s]/E[IGR_s] equals the exact finite-k expression (a‖m‖² + b trΣ)/(‖m‖² + trΣ), {s}",
            "docs/theory.md (T37)–(T38); docs/noise.md §3", f"{n} CIs of (measured − theory) cover 0", float(n - m),
            f"misses ≤ {allowed} of {n}", REPRODUCES if m <= allowed else FAILS,
            detail=f"‖m‖² = {mu:.4g}, trΣ = {tr:.4g} (‖m‖²/trΣ = {mu / tr:.3g}); {m} of {n} miss"))
        kmax = d["k"].max()
        dk = d[(d["k"] == kmax) & (d["beta"] > 0)]
        for suffix, col, name in (("", "igrm_over_igr", "same h, G as written"),
                                  ("/force", "force_normalised", "same h, relative to the force (1−β)G_k")):
            lo_c, hi_c = ("lo", "hi") if col == "igrm_over_igr" else ("force_normalised_lo", "force_normalised_hi")
            rel = (dk[col] / dk["slides"] - 1).abs()
            inside = ((dk["slides"] >= dk[lo_c]) & (dk["slides"] <= dk[hi_c])) | (rel <= tol)
            rows.append(row(
                f"noise/reg_ratio_slides/{tag}{suffix}",
                f"slides Obs-2: E(IGRM_s) = E(IGR_s)/(1−β) ({name}, k={kmax}, {s})",
                "slides Obs-2", "1/(1−β)", float(rel.max()) if len(rel) else math.nan,
                f"rel ≤ {tol:g} or inside CI",
                (REPRODUCES if inside.all() else FAILS) if len(rel) else INCONCLUSIVE,
                detail="; ".join(f"β={r.beta:g}: {getattr(r, col):.4g} vs {r.slides:.4g}" for r in dk.itertuples())
                + f"; ‖m‖²/trΣ = {mu / tr:.3g} (noise-dominated limit ×(1−β): 1/(1−β))"))
    return frame(rows)
