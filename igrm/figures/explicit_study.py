"""Figure of the explicit-baseline tracking study (results/figures/explicit_in_range.{pdf,png};
docs/igrm_baseline.md, "Inside its range: the tracking study"), from the tidy table
(:mod:`igrm.tidy.explicit_study`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..stats import mean_halfwidth
from ..validity import epsilon_bound
from .style import figure


def _mu_color(f: float) -> str:
    import matplotlib.pyplot as plt

    return plt.get_cmap("viridis")(0.85 * (1 - float(f)))


def _mean_ci(g: pd.DataFrame, col: str, level: float):
    """s, mean over seeds, and the ``level`` t-interval half-width (NaN below 2 seeds)."""
    piv = g.pivot_table(index="s", columns="seed", values=col)
    n = piv.notna().sum(axis=1).to_numpy()
    m = piv.mean(axis=1).to_numpy()
    sd = piv.std(axis=1, ddof=1).to_numpy()
    return piv.index.to_numpy(), m, mean_halfwidth(sd, n, level)


def _band(ax, x, m, hw, color, label, ls="-"):
    ax.plot(x, m, ls, color=color, label=label)
    if np.any(np.isfinite(hw)):
        ax.fill_between(
            x, np.maximum(m - hw, 1e-300) if ax.get_yscale() == "log" else m - hw, m + hw, color=color, alpha=0.2, lw=0
        )


def plot_explicit_in_range(
    *, table: pd.DataFrame, max_epsilon: float, max_penalty_curvature: float, ci: float
) -> Figure:
    """One row of four panels per setting (β, η): parameter distance and test-logit RMS
    distance of each explicit run (μ = f·μ*, f = 0 is plain GD) to GD+M against time
    s = kη (mean over seeds ± 95% t-interval), the expansion parameters ε = η|λ_max|/(1−β)
    (GD+M) and 2μ*|λ_max| (baseline at μ*) of every seed with their thresholds, and
    λ_max(run) − λ_max(GD+M) at matched s (mean ± 95% t-interval)."""
    settings = list(dict.fromkeys(table["setting"]))
    fig, axes = figure(max(len(settings), 1), 4, width=3.5, height=3.0)
    for row_i, tag in enumerate(settings):
        g = table[table["setting"] == tag]
        beta, eta, mu_star = (float(g[c].iloc[0]) for c in ("beta", "eta", "mu_star"))
        ex = g[g["run"] != "gdm"]
        fracs = sorted(set(ex["mu_fraction"].astype(float)))
        ax_p, ax_f, ax_e, ax_l = axes[row_i]
        for ax in (ax_p, ax_f):
            ax.set_yscale("log")
        ref = g[g["run"] == "gdm"].set_index(["seed", "record"])["lambda_max"]
        for f in fracs:
            gf = ex[np.isclose(ex["mu_fraction"], f)]
            gf = gf[gf["record"] > 0]
            lab = "plain GD (μ=0)" if f == 0 else f"μ = {f:g}·μ*"
            for ax, col in ((ax_p, "param_dist"), (ax_f, "function_dist")):
                x, m, hw = _mean_ci(gf, col, ci)
                _band(ax, x, m, hw, _mu_color(f), lab)
            gl = ex[np.isclose(ex["mu_fraction"], f)].copy()
            gl["dlam"] = gl["lambda_max"].to_numpy() - ref.loc[list(zip(gl["seed"], gl["record"]))].to_numpy()
            x, m, hw = _mean_ci(gl, "dlam", ci)
            _band(ax_l, x, m, hw, _mu_color(f), lab)
        ax_l.axhline(0, color="0.3", lw=0.8)
        bound = epsilon_bound(beta=beta, max_epsilon=max_epsilon)
        inside = bool((g["epsilon"] <= bound).all() and (g["penalty_curvature"] <= max_penalty_curvature).all())
        title = f"β={beta:g}, η={eta:g}"
        ax_p.set(
            xlabel="time s = kη (GD+M step k)", ylabel="‖θ − θ_GD+M‖ (parameter units)", title=f"parameters ({title})"
        )
        ax_f.set(xlabel="time s = kη", ylabel="RMS test-logit difference (logits)", title=f"function space ({title})")
        ax_l.set(xlabel="time s = kη", ylabel="λ_max(run) − λ_max(GD+M)", title=f"sharpness (μ*={mu_star:.3g})")
        gm = g[g["run"] == "gdm"]
        gs = g[g["run"] == f"mu{max(fracs):g}"] if fracs else g.iloc[:0]
        for i, (seed, gg) in enumerate(gm.groupby("seed")):
            ax_e.plot(
                gg["s"],
                gg["epsilon"],
                "-",
                color="#d62728",
                alpha=0.8,
                label="ε = η|λ_max|/(1−β), GD+M" if i == 0 else None,
            )
        for i, (seed, gg) in enumerate(gs.groupby("seed")):
            ax_e.plot(
                gg["s"],
                gg["penalty_curvature"],
                "--",
                color="#1f77b4",
                alpha=0.8,
                label="2μ*|λ_max|, baseline at μ*" if i == 0 else None,
            )
        ax_e.axhline(bound, color="#d62728", lw=0.8, ls=":", label="bound on ε (T63)")
        ax_e.axhline(max_penalty_curvature, color="#1f77b4", lw=0.8, ls=":", label="bound on 2μλ (T63)")
        ax_e.set_yscale("log")
        ax_e.set(
            xlabel="time s = kη",
            ylabel="expansion parameter (dimensionless)",
            title="range monitor, per seed" + ("" if inside else ": OUT OF RANGE"),
        )
        for ax in (ax_p, ax_e):
            ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    if not settings:
        axes[0, 0].text(0.5, 0.5, "no tracking-study runs", ha="center", transform=axes[0, 0].transAxes)
    return fig
