"""Claims rows of the gradient-noise stage (results/claims/noise.csv; docs/noise.md §7):
Obs-1 and Obs-2 of the slides, measured against the exact theory (igrm/noise_theory.py) and
against the slides' factors, from the tidy tables of igrm/tidy/noise.py.

Every row is a claim of equality over a set of (β, k) cells, judged by the equivalence rule
of igrm.stats.equivalence_verdict (docs/theory.md (T57)) on the relative deviation
δ = measured/expected − 1 with the margin declared in the config: `measured` is δ̂ of the
deciding cell (the one whose interval reaches farthest from 0), `uncertainty` its interval's
half-width; the joint sign-flip test of exact equality (T55), the per-cell z and the cells
go to `detail`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..stats import equivalence_verdict, replicates_needed
from . import FAILS, INCONCLUSIVE, OUT_OF_RANGE, REPRODUCES, frame, row


def _fmt(x: float) -> str:
    return f"{x:+.3f}" if math.isfinite(x) else "unbounded"


def _equivalence_row(
    id: str,
    claim: str,
    source: str,
    expected: str,
    cells: pd.DataFrame,
    *,
    margin: float,
    min_groups: int,
    blocks_per_group: int,
    z_note: str,
) -> dict:
    """One equality claim over ``cells`` (columns d, d_lo, d_hi, d_lo_simul, d_hi_simul: the
    relative deviation and its intervals; beta, k; n_groups)."""
    if cells.empty:
        return row(
            id,
            claim,
            source,
            expected,
            math.nan,
            f"|δ| ≤ {margin:g} (equivalence)",
            INCONCLUSIVE,
            detail="no cells to judge",
        )
    G = int(cells["n_groups"].iloc[0])
    reach = np.fmax(cells["d_lo"].abs(), cells["d_hi"].abs()).fillna(np.inf)
    w = cells.loc[reach.idxmax()]
    hw = (w["d_hi"] - w["d_lo"]) / 2 if math.isfinite(w["d_hi"] - w["d_lo"]) else math.inf
    verdict = equivalence_verdict(cells["d_lo"], cells["d_hi"], cells["d_lo_simul"], cells["d_hi_simul"], margin)
    inside = int(((cells["d_lo"] >= -margin) & (cells["d_hi"] <= margin)).sum())
    why = ""
    if G < min_groups:
        verdict = INCONCLUSIVE
        why = (
            f"only {G} groups < noise.min_groups = {min_groups} (the intervals' coverage is validated "
            f"at ≥ {min_groups}); "
        )
    if verdict == INCONCLUSIVE:
        why += f"interval too wide to decide: half-width {hw:.3g} at {G} groups; " + _groups_needed(
            w, hw, margin, G, blocks_per_group
        )
    detail = (
        why + f"{inside} of {len(cells)} cells inside ±{margin:g}; deciding cell β={w['beta']:g}, k={int(w['k'])}: "
        f"δ = {w['d']:+.3f} [{_fmt(w['d_lo'])}, {_fmt(w['d_hi'])}] (simultaneous "
        f"[{_fmt(w['d_lo_simul'])}, {_fmt(w['d_hi_simul'])}]); " + z_note
    )
    return row(
        id,
        claim,
        source,
        expected,
        float(w["d"]),
        f"|δ| ≤ {margin:g} (equivalence)",
        verdict,
        uncertainty=float(hw),
        detail=detail,
    )


def _groups_needed(w, hw: float, margin: float, G: int, blocks_per_group: int) -> str:
    """How many groups would decide the deciding cell at its current estimate (T57): inside
    the margin needs half-width ≤ margin − |δ̂|, outside needs the simultaneous half-width
    ≤ |δ̂| − margin (half-widths ∝ 1/√G)."""
    if not math.isfinite(hw):
        return ""
    d = abs(float(w["d"]))
    hw_s = (w["d_hi_simul"] - w["d_lo_simul"]) / 2
    if d < margin:
        need, side = replicates_needed(hw, margin - d, G), "inside"
    else:
        need, side = replicates_needed(hw_s, d - margin, G) if math.isfinite(hw_s) else None, "outside"
    if not need:
        return ""
    return f"≈ {need} groups ({need * blocks_per_group} blocks) would show it {side} ±{margin:g} at this estimate; "


def _z_note(d: pd.DataFrame) -> str:
    """The joint test of exact equality and the per-cell z (t statistics of measured − theory)."""
    worst = d.loc[d["z"].abs().idxmax()]
    zs = ", ".join(f"{z:+.1f}" for z in d.sort_values(["beta", "k"])["z"])
    return (
        f"exact equality: sign-flip max|z| = {abs(worst['z']):.2f} at β={worst['beta']:g}, k={int(worst['k'])}, "
        f"joint p = {float(d['p_joint'].iloc[0]):.3g}; z by (β, k): {zs}"
    )


def _relative(d: pd.DataFrame, value: str, lo: str, hi: str, lo_s: str, hi_s: str, ref) -> pd.DataFrame:
    """The cells with δ = x/ref − 1 and its intervals (ref > 0: a monotone map)."""
    out = d[["beta", "k", "n_groups"]].copy()
    for src, dst in ((value, "d"), (lo, "d_lo"), (hi, "d_hi"), (lo_s, "d_lo_simul"), (hi_s, "d_hi_simul")):
        out[dst] = d[src] / ref - 1
    return out


def _slides_rows(
    id: str,
    claim: str,
    source: str,
    expected: str,
    d: pd.DataFrame,
    value: str,
    lo: str,
    hi: str,
    lo_s: str,
    hi_s: str,
    range_ref: str | None,
    margin: float,
    note: str,
    **kw,
) -> list[dict]:
    """The slides' k → ∞ factor at the largest k (β > 0). With ``range_ref`` (a column of
    the exact theory in the slides' convention) a cell is in range iff that theory is within
    margin/2 of the slides' factor (docs/noise.md §7: the slides' own assumptions hold there);
    the others form an "out of range" row with what was measured."""
    dk = d[(d["k"] == d["k"].max()) & (d["beta"] > 0)]
    inside = (dk[range_ref] / dk["slides"] - 1).abs() <= margin / 2 if range_ref else pd.Series(True, dk.index)
    cells = _relative(dk[inside], value, lo, hi, lo_s, hi_s, dk.loc[inside, "slides"])
    rows = (
        [_equivalence_row(id, claim, source, expected, cells, margin=margin, z_note=note, **kw)] if len(cells) else []
    )
    out = dk[~inside]
    if len(out):
        rel = out[value] / out["slides"] - 1
        rows.append(
            row(
                f"{id}/out_of_range",
                claim + " — cells where the exact theory says the slides' limit does not apply",
                source,
                expected,
                float(rel.abs().max()),
                f"exact theory within ±{margin / 2:g} of the slides' factor",
                OUT_OF_RANGE,
                detail="; ".join(
                    f"β={r.beta:g}: measured/slides − 1 = {v:+.3f} [{getattr(r, lo) / r.slides - 1:+.3f}, "
                    f"{getattr(r, hi) / r.slides - 1:+.3f}], exact theory/slides − 1 = "
                    f"{getattr(r, range_ref) / r.slides - 1:+.3f}"
                    for r, v in zip(out.itertuples(), rel)
                ),
            )
        )
    return rows


def _drift_note(d: pd.DataFrame) -> str:
    """Along a trajectory (sampler iid_trajectory, docs/noise.md §10): the parameter drift of
    the runs per β, mean ‖θ_end − θ_0‖/‖θ_0‖ over k_max + 1 steps at raw step h."""
    if "drift_rel" not in d or not d["drift_rel"].notna().any():
        return ""
    per = d.drop_duplicates("beta").sort_values("beta")
    return (
        f"along SGD+M runs of {int(d['k'].max()) + 1} steps at h = {float(d['traj_h'].iloc[0]):g} from the point, "
        "fixed-point theory R_iid; parameter drift ‖θ_end − θ_0‖/‖θ_0‖ by β: "
        + ", ".join(f"β={r.beta:g}: {r.drift_rel:.3g}" for r in per.itertuples())
        + "; "
    )


def _obs2_conditions(dk: pd.DataFrame, mu_over_tau: float, margin: float) -> str:
    """The two conditions of the slides' 1/(1−β) (docs/noise.md §9, (T80)) per β at the
    largest k: k(1−β) (≫ 1 needed) and the measured ‖m‖²/trΣ against the largest value at
    which the k → ∞ force-normalised factor is within margin/2 of 1/(1−β),
    (margin/2)(1−β)/(2β − margin/2 (1−β))."""
    parts = []
    for r in dk.itertuples():
        b, half = float(r.beta), margin / 2
        cap = half * (1 - b) / (2 * b - half * (1 - b)) if 2 * b > half * (1 - b) else math.inf
        parts.append(
            f"β={b:g}: k(1−β) = {int(r.k) * (1 - b):.3g}, ‖m‖²/trΣ ≤ {cap:.3g} needed "
            f"({'met' if mu_over_tau <= cap else 'not met'})"
        )
    return "conditions of the slides' factor: " + "; ".join(parts)


def _calibrated(cal: pd.DataFrame, sampler: str, min_coverage: float, bn: bool = False) -> tuple[bool, str]:
    """Whether the simulated coverage at the config's settings (igrm.noise_calibration) is
    at least min_coverage, for the per-cell (mean over cells) and the simultaneous intervals.
    The eval-mode control (sampler epoch_bneval) uses the epoch sampler's simulation; ``bn``:
    the intervals of the BatchNorm rows (measured/corrected theory and the additive share)."""
    design = sampler.removesuffix("_bneval")
    c = cal[cal["sampler"] == design]
    if c.empty:
        return False, f"no coverage simulation for sampler {design}; "
    if bn:
        worst = min(c["cover_bn"].mean(), c["simul_bn"].iloc[0], c["cover_share"].iloc[0])
    else:
        worst = min(
            c["cover_ratio"].mean(), c["cover_igrm_theory"].mean(), c["simul_ratio"].iloc[0], c["simul_igrm"].iloc[0]
        )
    if worst < min_coverage:
        return False, (
            f"intervals not calibrated at these settings: simulated coverage {worst:.3f} < "
            f"noise.calibration.min_coverage = {min_coverage:g}; "
        )
    return True, ""


def _share_row(tag: str, d: pd.DataFrame, *, margin: float, min_groups: int, blocks_per_group: int) -> dict:
    """The additive share ρ = tr Σ_add / tr Σ_b (docs/noise.md §8.2, (T78)) against 1, the
    assumption of the exact without-replacement theory (T35): equivalence on ρ − 1."""
    r = d.iloc[0]
    G = int(r["n_groups"])
    lo, hi = r["share_lo"] - 1, r["share_hi"] - 1
    hw = (hi - lo) / 2 if math.isfinite(hi - lo) else math.inf
    verdict = equivalence_verdict(lo, hi, lo, hi, margin)  # one cell: simultaneous = per-cell
    why = ""
    if G < min_groups:
        verdict, why = INCONCLUSIVE, f"only {G} groups < noise.min_groups = {min_groups}; "
    if verdict == INCONCLUSIVE and math.isfinite(hw):
        w = {"d": r["additive_share"] - 1, "d_lo_simul": lo, "d_hi_simul": hi}
        why += f"interval too wide to decide: half-width {hw:.3g} at {G} groups; " + _groups_needed(
            w, hw, margin, G, blocks_per_group
        )
    mode = r["batchnorm"]
    return row(
        f"noise/additive_share/{tag}",
        f"a mini-batch gradient is a mean of per-example gradients (additive share ρ = 1; BatchNorm in {mode} "
        "mode), the assumption of the exact without-replacement theory",
        "docs/noise.md §2.2 caveat, §8; docs/theory.md (T76), (T78), (T57)",
        "ρ − 1 = 0",
        float(r["additive_share"] - 1),
        f"|ρ − 1| ≤ {margin:g} (equivalence)",
        verdict,
        uncertainty=float(hw),
        detail=why
        + (
            f"ρ̂ = {r['additive_share']:.3f} [{_fmt(r['share_lo'])}, {_fmt(r['share_hi'])}] "
            f"(Fieller, {G} groups): non-additive share 1 − ρ̂ = {1 - r['additive_share']:.3f} of "
            f"tr Σ_b, from the between-epoch-segment variance of the same gradients"
        ),
    )


def noise_claims(
    ratios: pd.DataFrame,
    regularisation: pd.DataFrame,
    calibration: pd.DataFrame,
    *,
    theory_margin: float,
    slides_margin: float,
    min_groups: int,
    n_blocks: int,
    n_groups: int,
    min_coverage: float,
) -> pd.DataFrame:
    """Claims rows (docs/noise.md §7), per (point, sampler), each an equivalence claim:
    noise/variance_ratio_theory/<point>/<sampler>: tr Cov((1−β)∇G_k)/tr Cov(g) = the exact
      theory at every (β, k), margin theory_margin;
    noise/variance_ratio_slides/<point>/<sampler>: = (1−β)/(1+β) at the largest k (β > 0),
      margin slides_margin, judged where the exact theory is within margin/2 of it;
    noise/reg_ratio_theory/<point>/<sampler>: E[IGRM_s]/E[IGR_s] = the exact finite-k
      expression (T37) at every (β, k), margin theory_margin;
    noise/reg_ratio_slides/<point>/<sampler>[/force]: = 1/(1−β) at the largest k, as written
      (same h) and normalised to the force (×(1−β); judged where the exact theory is within
      margin/2), margin slides_margin;
    noise/interval_coverage/<sampler>: the simulated coverage of the intervals at the config's
      settings (calibration); below min_coverage every row of that sampler is inconclusive.
    ratios, regularisation, calibration: the tables of igrm.tidy.noise; the keywords are
    config keys of section ``noise`` (n_blocks / n_groups: blocks per group, for the groups a
    decision would need; min_coverage: noise.calibration.min_coverage)."""
    kw = dict(min_groups=int(min_groups), blocks_per_group=int(n_blocks) // int(n_groups))
    claims = variance_claims(
        ratios, theory_margin=float(theory_margin), slides_margin=float(slides_margin), **kw
    ) + regularisation_claims(
        regularisation, theory_margin=float(theory_margin), slides_margin=float(slides_margin), **kw
    )
    return frame(coverage_rows(calibration, min_coverage) + gated_by_coverage(claims, calibration, min_coverage))


def coverage_rows(calibration: pd.DataFrame, min_coverage: float) -> list[dict]:
    """noise/interval_coverage/<sampler>: the simulated coverage of the intervals (igrm.noise_calibration)."""
    rows = []
    for s, c in calibration.groupby("sampler", sort=False):
        per_cell = float(c["cover_ratio"].mean())
        simul = float(c["simul_ratio"].iloc[0])
        level = float(c["ci_level"].iloc[0])
        n = int(c["replicates"].iloc[0])
        ok, _ = _calibrated(calibration, s, min_coverage)
        rows.append(
            row(
                f"noise/interval_coverage/{s}",
                f"the noise intervals ({level:.0%}) cover at the config's settings ({s} sampler, simulated)",
                "docs/noise.md §4.4; docs/theory.md (T54)–(T56)",
                f"≥ {min_coverage:g}",
                per_cell,
                f"mean per-cell and simultaneous coverage ≥ {min_coverage:g}",
                REPRODUCES if ok else FAILS,
                uncertainty=1.96 * math.sqrt(per_cell * (1 - per_cell) / n),
                detail=(
                    f"{n} simulated jobs, {int(c['n_groups'].iloc[0])} groups, block_len {int(c['block_len'].iloc[0])}: "
                    f"per-cell coverage of the ratio {per_cell:.3f} (worst cell {c['cover_ratio'].min():.3f}), "
                    f"of E[IGRM]/theory {c['cover_igrm_theory'].mean():.3f}; simultaneous {simul:.3f} (ratio), "
                    f"{float(c['simul_igrm'].iloc[0]):.3f} (IGRM); joint-test size {float(c['reject_ratio'].iloc[0]):.3f} "
                    f"/ {float(c['reject_igrm'].iloc[0]):.3f} at nominal {1 - level:.2g}; "
                    f"max |bias| of the ratio {c['bias_ratio'].abs().max():.3g}"
                    + (
                        f"; BatchNorm rows (§8): per-cell coverage of measured/corrected {c['cover_bn'].mean():.3f}, "
                        f"simultaneous {float(c['simul_bn'].iloc[0]):.3f}, of the additive share "
                        f"{float(c['cover_share'].iloc[0]):.3f}"
                        if "cover_bn" in c and c["cover_bn"].notna().any()
                        else ""
                    )
                ),
            )
        )
    return rows


def variance_claims(
    ratios: pd.DataFrame, *, theory_margin: float, slides_margin: float, **kw
) -> list[tuple[str, list[dict]]]:
    """(sampler, rows) of Obs-1 per (point, sampler): against the exact theory, the BatchNorm
    rows where the additive share was measured, and against the slides' factor."""
    claims = []
    for (point, s), d in ratios.groupby(["point", "sampler"], sort=False):
        tag = f"{point or 'point'}/{s}"
        cells = _relative(d, "ratio", "lo", "hi", "lo_simul", "hi_simul", d["theory"])
        claims.append(
            (
                s,
                [
                    _equivalence_row(
                        f"noise/variance_ratio_theory/{tag}",
                        f"Obs-1: tr Cov((1−β)∇G_k)/tr Cov(g) equals the exact {s} theory at every (β, k)",
                        "slides Obs-1; docs/noise.md §2; docs/theory.md (T57)",
                        "measured/theory − 1 = 0",
                        cells,
                        margin=theory_margin,
                        z_note=_drift_note(d) + _z_note(d),
                        **kw,
                    )
                ],
            )
        )
        if np.isfinite(d["additive_share"]).all():
            claims.append((s, _batchnorm_rows(tag, d, margin=theory_margin, **kw)))
        dk = d[(d["k"] == d["k"].max()) & (d["beta"] > 0)]
        claims.append(
            (
                s,
                _slides_rows(
                    f"noise/variance_ratio_slides/{tag}",
                    f"slides: Cov(G_k) = (1−β)/(1+β) Cov(E_k) (k={d['k'].max()}, {s} mini-batches)",
                    "slides Obs-1; docs/theory.md (T57)",
                    "measured/((1−β)/(1+β)) − 1 = 0",
                    d,
                    "ratio",
                    "lo",
                    "hi",
                    "lo_simul",
                    "hi_simul",
                    "theory",
                    slides_margin,
                    ", ".join(
                        f"β={r.beta:g}: {r.ratio:.4g} vs slides {r.slides:.4g} (exact {r.theory:.4g})"
                        for r in dk.itertuples()
                    ),
                    **kw,
                ),
            )
        )
    return claims


def _batchnorm_rows(tag: str, d: pd.DataFrame, *, margin: float, **kw) -> list[dict]:
    """BatchNorm (docs/noise.md §8): the additive share, and R against the corrected theory (T77)."""
    bn_cells = _relative(d, "ratio_bn", "bn_lo", "bn_hi", "bn_lo_simul", "bn_hi_simul", 1.0)
    zb = d.rename(columns={"z": "z_exact", "z_bn": "z", "p_joint": "p_exact", "p_joint_bn": "p_joint"})
    sh = float(d["additive_share"].iloc[0])
    return [
        _share_row(tag, d, margin=margin, **kw),
        dict(
            _equivalence_row(
                f"noise/variance_ratio_bn_corrected/{tag}",
                f"tr Cov((1−β)∇G_k)/tr Cov(g) equals the BatchNorm-corrected theory ρR_epoch + (1−ρ)R_iid at the "
                f"measured additive share at every (β, k) (BatchNorm in {d['batchnorm'].iloc[0]} mode)",
                "docs/noise.md §8; docs/theory.md (T77)–(T79), (T57)",
                "measured/corrected − 1 = 0",
                bn_cells,
                margin=margin,
                z_note=f"ρ̂ = {sh:.3f}; corrected vs exact WOR theory by (β, k): "
                + ", ".join(
                    f"{r.theory_bn:.4g}/{r.theory_epoch:.4g}" for r in d.sort_values(["beta", "k"]).itertuples()
                )
                + "; "
                + _z_note(zb),
                **kw,
            ),
            bn=True,
        ),
    ]


def regularisation_claims(
    regularisation: pd.DataFrame, *, theory_margin: float, slides_margin: float, **kw
) -> list[tuple[str, list[dict]]]:
    """(sampler, rows) of Obs-2 per (point, sampler): against the exact finite-k expression,
    and against the slides' 1/(1−β) as written and normalised to the force."""
    claims = []
    for (point, s), d in regularisation.groupby(["point", "sampler"], sort=False):
        tag = f"{point or 'point'}/{s}"
        mu, tr = float(d["mean_sq_norm"].iloc[0]), float(d["trace_cov"].iloc[0])
        cells = _relative(d, "rel", "rel_lo", "rel_hi", "rel_lo_simul", "rel_hi_simul", 1.0)
        claims.append(
            (
                s,
                [
                    _equivalence_row(
                        f"noise/reg_ratio_theory/{tag}",
                        f"E[IGRM_s]/E[IGR_s] equals the exact finite-k expression (a‖m‖² + b trΣ)/(‖m‖² + trΣ), {s}",
                        "docs/theory.md (T37)–(T38), (T57); docs/noise.md §3",
                        "measured/theory − 1 = 0",
                        cells,
                        margin=theory_margin,
                        z_note=f"‖m‖² = {mu:.4g}, trΣ = {tr:.4g} (‖m‖²/trΣ = {mu / tr:.3g}); " + _z_note(d),
                        **kw,
                    )
                ],
            )
        )
        d = d.assign(force_theory=(1 - d["beta"]) * d["theory"])
        dk = d[(d["k"] == d["k"].max()) & (d["beta"] > 0)]
        for suffix, col, name, ref in (
            ("", "igrm_over_igr", "same h, G as written", None),
            ("/force", "force_normalised", "same h, relative to the force (1−β)G_k", "force_theory"),
        ):
            pre = "" if col == "igrm_over_igr" else f"{col}_"  # the tidy table's interval columns
            claims.append(
                (
                    s,
                    _slides_rows(
                        f"noise/reg_ratio_slides/{tag}{suffix}",
                        f"slides Obs-2: E(IGRM_s) = E(IGR_s)/(1−β) ({name}, k={d['k'].max()}, {s})",
                        "slides Obs-2; docs/noise.md §3.2; docs/theory.md (T57)",
                        "measured·(1−β) − 1 = 0",
                        d,
                        col,
                        f"{pre}lo",
                        f"{pre}hi",
                        f"{pre}lo_simul",
                        f"{pre}hi_simul",
                        ref,
                        slides_margin,
                        "; ".join(f"β={r.beta:g}: {getattr(r, col):.4g} vs {r.slides:.4g}" for r in dk.itertuples())
                        + f"; ‖m‖²/trΣ = {mu / tr:.3g} (noise-dominated limit ×(1−β): 1/(1−β)); "
                        + _obs2_conditions(dk, mu / tr, slides_margin),
                        **kw,
                    ),
                )
            )
    return claims


def gated_by_coverage(
    claims: list[tuple[str, list[dict]]], calibration: pd.DataFrame, min_coverage: float
) -> list[dict]:
    """The rows, a verdict made inconclusive where the simulated coverage of its sampler's
    intervals (for BatchNorm rows: of theirs) is below min_coverage (out-of-range rows stay)."""
    rows = []
    for s, rs in claims:
        for r in rs:
            ok, why = _calibrated(
                calibration,
                s,
                float(min_coverage),
                bn=bool(r.pop("bn", False)) or r["id"].startswith("noise/additive_share/"),
            )
            if not ok and r["verdict"] != OUT_OF_RANGE:
                r["verdict"], r["detail"] = INCONCLUSIVE, why + r["detail"]
            rows.append(r)
    return rows
