"""Claim rows of the explicit-baseline tracking study (results/claims/explicit_in_range.csv;
docs/igrm_baseline.md, "Inside its range: the tracking study"; docs/theory.md (T70)–(T75)).

The claim the baseline exists for: plain GD at η on E + μ*‖∇E‖² (μ* = βη/(2(1−β)), (T30))
tracks GD+M (β, h = η(1−β), started on its slow manifold) more closely than plain GD at η
does. Per setting (β, η), over the seeds whose every run stays inside the declared range at
every record ((T75): ε ≤ min(max_epsilon, 1/(1+√β)²) and 2μ|λ_max| ≤ max_penalty_curvature,
every λ_max converged), three families of two rows, each a paired t-interval over seeds of a
per-seed statistic whose predicted sign is positive ((T74); Bonferroni over the family's two
rows, (T56)):

- ``explicit_study/tracks_gdm/<tag>/{param,function}``: D̄(μ=0) − D̄(μ*), the time-averaged
  distance to GD+M ((T71)) of plain GD minus that of the baseline;
- ``explicit_study/distance_falls_with_mu/<tag>/{param,function}``: −(per-seed OLS slope of
  D̄ on μ/μ* over ``mu_fractions``) ((T72), (T74));
- ``explicit_study/equal_loss/<tag>/{sharpness,test_acc}``: |q_GD − q_GDM| − |q_μ* − q_GDM| of
  λ_max and of the test accuracy at the first time each run's train loss reaches the seed's
  common level ((T73)); an accuracy effect below one test example (1/n_test) is inconclusive.

Verdict per (T50): interval above 0 reproduces, below 0 does not, else inconclusive; fewer than
``min_seeds`` seeds in range: inconclusive with the MDE and the seeds needed ((T49)). Seeds with
a run outside the range (or diverged) go to ``explicit_study/<tag>/out_of_range`` (verdict "out
of range", with the measured expansion parameters and their statistics); seeds below the
thresholds with an unconverged λ_max are left out, stated in the detail.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..explicit_study import at_loss_level, seed_slope, time_average
from ..stats import POWER, SEEDS_CAP, bonferroni_level, ci_verdict, mde, paired_t, seeds_needed_paired
from ..validity import epsilon_bound
from . import INCONCLUSIVE, OUT_OF_RANGE, frame, row

SRC = "docs/theory.md (T29)–(T30), (T70)–(T75); docs/igrm_baseline.md, Inside its range"
FAMILY = 2  # rows per family, Bonferroni (T56)


def seed_statistics(g: pd.DataFrame, *, mu_fractions) -> dict:
    """The per-seed statistics of one (setting, seed) of the tidy table: time-averaged
    distances per run and metric ((T71)), the tracking differences, the slopes over μ/μ*
    ((T72)) and the equal-loss differences ((T73))."""
    runs = {r: gr.sort_values("record") for r, gr in g.groupby("run")}
    fr = [float(f) for f in mu_fractions]
    if 0.0 not in fr or 1.0 not in fr:
        raise ValueError(f"explicit_study.mu_fractions {fr} must contain 0 (plain GD) and 1 (μ*)")
    name = {f: f"mu{f:g}" for f in fr}
    out: dict = {}
    for metric in ("param", "function"):
        dbar = {
            f: time_average(s=runs[name[f]]["s"].to_numpy(), values=runs[name[f]][f"{metric}_dist"].to_numpy())
            for f in fr
        }
        out[f"dbar_{metric}"] = dbar
        out[f"track_{metric}"] = dbar[0.0] - dbar[1.0]
        out[f"ratio_{metric}"] = dbar[1.0] / dbar[0.0] if dbar[0.0] > 0 else math.nan
        out[f"falls_{metric}"] = -seed_slope(x=fr, y=[dbar[f] for f in fr])
    level = max(float(gr["train_loss"].iloc[-1]) for gr in runs.values())
    at = {
        r: at_loss_level(
            s=gr["s"].to_numpy(),
            loss=gr["train_loss"].to_numpy(),
            level=level,
            values={"sharpness": gr["lambda_max"].to_numpy(), "test_acc": gr["test_acc"].to_numpy()},
        )
        for r, gr in runs.items()
    }
    out["loss_level"] = level
    out["at_level"] = at
    for q in ("sharpness", "test_acc"):
        ref = at["gdm"][q]
        out[f"equal_{q}"] = abs(at[name[0.0]][q] - ref) - abs(at[name[1.0]][q] - ref)
    return out


def range_class(
    g: pd.DataFrame, *, beta: float, max_epsilon: float, max_penalty_curvature: float, sharpness_tol: float
) -> str:
    """'out' (a run diverged, or ε or 2μ|λ| above its threshold at some record: (T75)),
    'unestablished' (below both, some λ_max residual > sharpness_tol), or 'in'."""
    if g["diverged"].any():
        return "out"
    bound = epsilon_bound(beta=beta, max_epsilon=max_epsilon)
    e, p = g["epsilon"].to_numpy(float), g["penalty_curvature"].to_numpy(float)
    if np.any(e > bound) or np.any(p > float(max_penalty_curvature)):
        return "out"
    if not np.all(np.isfinite(e)) or np.any(g["lambda_residual"].to_numpy(float) > float(sharpness_tol)):
        return "unestablished"
    return "in"


ROWS = [
    (
        "tracks_gdm",
        "param",
        "track_param",
        "parameter distance",
        "explicit GD on E + μ*‖∇E‖² stays closer to GD+M than plain GD in parameters, time-averaged "
        "distance ‖θ − θ_GD+M‖ along the whole run",
    ),
    (
        "tracks_gdm",
        "function",
        "track_function",
        "test-logit RMS",
        "explicit GD on E + μ*‖∇E‖² stays closer to GD+M than plain GD in function space, time-averaged "
        "RMS of the test-logit difference along the whole run",
    ),
    (
        "distance_falls_with_mu",
        "param",
        "falls_param",
        "parameter distance per unit μ/μ*",
        "the time-averaged parameter distance to GD+M falls as μ rises from 0 to μ*",
    ),
    (
        "distance_falls_with_mu",
        "function",
        "falls_function",
        "test-logit RMS per unit μ/μ*",
        "the time-averaged test-logit distance to GD+M falls as μ rises from 0 to μ*",
    ),
    (
        "equal_loss",
        "sharpness",
        "equal_sharpness",
        "λ_max",
        "at equal train loss, the baseline's λ_max is closer to GD+M's than plain GD's is",
    ),
    (
        "equal_loss",
        "test_acc",
        "equal_test_acc",
        "test accuracy",
        "at equal train loss, the baseline's test accuracy is closer to GD+M's than plain GD's is",
    ),
]


def _paired_row(cid, claim, d, *, ci, min_seeds, unit, extra, resolution: float = 0.0) -> dict:
    """One row of (T74); an effect |mean| below ``resolution`` (accuracy: one test example,
    1/n_test, (T73)) is not resolved by the measurement: inconclusive whatever the interval."""
    level = bonferroni_level(ci, FAMILY)
    iv = paired_t(d, level)
    point, se, df = float(iv.estimate), float(iv.se), float(iv.df)
    lo, hi = (float(iv.lo), float(iv.hi)) if math.isfinite(se) else (math.nan, math.nan)
    expected = f"> 0 (paired t-interval over seeds at {level:.4g}, Bonferroni over the family's {FAMILY} rows)"
    tol = (
        "interval above 0: reproduces; below 0: does not; straddles 0, or fewer than min_seeds seeds in "
        "range: inconclusive (with MDE and seeds needed)"
    )
    n = len(d)
    vals = ", ".join(f"{v:.4g}" for v in d)
    stat = (
        f"mean paired difference {point:.4g} {unit} over n={n} seeds ({vals}); {level * 100:.4g}% t-interval "
        f"[{lo:.4g}, {hi:.4g}] = mean ± t_{{{1 - (1 - level) / 2:.4g},{df:.0f}}}·SE, SE {se:.4g} (T74)"
    )
    if n == 0:
        return row(
            cid,
            claim,
            SRC,
            expected,
            math.nan,
            tol,
            INCONCLUSIVE,
            detail=f"not judged: no seed inside the declared range; {extra}",
        )
    if n < min_seeds:
        verdict, why = INCONCLUSIVE, f"inconclusive: needs >= {min_seeds} seeds in range, have {n}"
    else:
        verdict = ci_verdict(lo, hi)
        why = "inconclusive: the interval contains 0" if verdict == INCONCLUSIVE else ""
        if verdict != INCONCLUSIVE and abs(point) < resolution:
            verdict, why = (
                INCONCLUSIVE,
                (
                    f"inconclusive: |mean| {abs(point):.3g} is below the resolution of the "
                    f"measurement, one test example = {resolution:.3g} (T73)"
                ),
            )
    detail = f"{stat}; {extra}"
    if verdict == INCONCLUSIVE:
        sd = float(np.std(d, ddof=1)) if n > 1 else math.nan
        m = mde(se, df, level, POWER) if math.isfinite(se) else math.nan
        need = seeds_needed_paired(point, sd, level, min_seeds)
        detail = (
            f"{why}; MDE at this n (level {level:.4g}, power {POWER:g}) {m:.4g} {unit}; seeds to detect "
            f"|effect| {abs(point):.4g}: {f'> {SEEDS_CAP}' if need is None else need}; {detail}"
        )
    return row(
        cid,
        claim,
        SRC,
        expected,
        point,
        tol,
        verdict,
        uncertainty=(hi - lo) / 2 if math.isfinite(hi - lo) else math.nan,
        detail=detail,
    )


def _seed_text(seed, st, g) -> str:
    e, p = g["epsilon"].max(), g["penalty_curvature"].max()
    at = st["at_level"]
    return (
        f"seed {seed}: max ε {e:.4g}, max 2μλ {p:.4g}, max |λ_max| {g['lambda_max'].abs().max():.4g}; D̄ param "
        f"GD {st['dbar_param'][0.0]:.4g} vs μ* {st['dbar_param'][1.0]:.4g} (ratio {st['ratio_param']:.3g}), "
        f"D̄ logits GD {st['dbar_function'][0.0]:.4g} vs μ* {st['dbar_function'][1.0]:.4g} "
        f"(ratio {st['ratio_function']:.3g}); at train loss {st['loss_level']:.4g}: λ_max GD+M "
        f"{at['gdm']['sharpness']:.5g}, GD {at['mu0']['sharpness']:.5g}, μ* {at['mu1']['sharpness']:.5g}; "
        f"test acc GD+M {at['gdm']['test_acc']:.4f}, GD {at['mu0']['test_acc']:.4f}, μ* {at['mu1']['test_acc']:.4f}"
    )


def explicit_study_claims(
    *,
    table: pd.DataFrame,
    mu_fractions,
    n_test: int,
    ci: float,
    min_seeds: int,
    max_epsilon: float,
    max_penalty_curvature: float,
    sharpness_tol: float,
) -> pd.DataFrame:
    """Claims rows (igrm.claims.COLUMNS) of the tracking study, per setting (module docstring)."""
    rows: list[dict] = []
    for tag, gt in table.groupby("setting", sort=False):
        beta, eta = float(gt["beta"].iloc[0]), float(gt["eta"].iloc[0])
        mu_star = float(gt["mu_star"].iloc[0])
        bound = epsilon_bound(beta=beta, max_epsilon=max_epsilon)
        range_txt = (
            f"at every record of every run ε = η|λ_max|/(1−β) ≤ {bound:.3g} (= min(max_epsilon "
            f"{max_epsilon:g}, 1/(1+√β)²)) and 2μ|λ_max| ≤ {max_penalty_curvature:g}, λ_max residual ≤ "
            f"{sharpness_tol:g} ((T75))"
        )
        where = f"tanh MLP, full batch, β={beta:g}, η={eta:g}, h={eta * (1 - beta):.4g}, μ*={mu_star:.4g}"
        cls, stats, texts = {}, {}, {}
        for seed, gs in gt.groupby("seed", sort=True):
            cls[seed] = range_class(
                gs,
                beta=beta,
                max_epsilon=max_epsilon,
                max_penalty_curvature=max_penalty_curvature,
                sharpness_tol=sharpness_tol,
            )
            if not gs["diverged"].any():
                stats[seed] = seed_statistics(gs, mu_fractions=mu_fractions)
                texts[seed] = _seed_text(seed, stats[seed], gs)
            else:
                texts[seed] = f"seed {seed}: diverged ({', '.join(sorted(set(gs.loc[gs['diverged'], 'run'])))})"
        ins = [s for s in cls if cls[s] == "in"]
        outs = [s for s in cls if cls[s] == "out"]
        unk = [s for s in cls if cls[s] == "unestablished"]
        note = (
            f"judged on the {len(ins)} of {len(cls)} seeds in range ({range_txt})"
            + (f"; {len(outs)} out of range (row explicit_study/{tag}/out_of_range)" if outs else "")
            + (
                f"; {len(unk)} left out, range not established (λ_max not converged): "
                + "; ".join(texts[s] for s in unk)
                if unk
                else ""
            )
            + "; per seed: "
            + "; ".join(texts[s] for s in ins)
        )
        for fam, metric, key, unit, text in ROWS:
            d = np.array([stats[s][key] for s in ins], dtype=float)
            rows.append(
                _paired_row(
                    f"explicit_study/{fam}/{tag}/{metric}",
                    f"{text} ({where})",
                    d,
                    ci=ci,
                    min_seeds=min_seeds,
                    unit=unit,
                    extra=note,
                    resolution=1.0 / int(n_test) if metric == "test_acc" else 0.0,
                )
            )
        if outs:
            d = np.array([stats[s]["track_param"] for s in outs if s in stats], dtype=float)
            rows.append(
                row(
                    f"explicit_study/{tag}/out_of_range",
                    f"explicit GD on E + μ*‖∇E‖² vs plain GD as trackers of GD+M, seeds outside the baseline's range "
                    f"(finding; {where})",
                    "docs/theory.md (T45), (T63), (T75); docs/igrm_baseline.md, Inside its range",
                    "> 0 (judged only in range)",
                    float(d.mean()) if d.size else math.nan,
                    f"judged only with {range_txt}",
                    OUT_OF_RANGE,
                    detail=(
                        f"not judged: {len(outs)} seed(s) outside the declared range; measured = mean D̄(μ=0) − "
                        f"D̄(μ*) in parameters over them; " + "; ".join(texts[s] for s in outs)
                    ),
                )
            )
    return frame(rows)
