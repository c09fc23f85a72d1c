"""Figures of the toy stage (docs/toy.md), drawn from its tidy tables (:mod:`igrm.tidy.toy`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..problems import SigmoidFactor, TwoFactor
from ..toy import FLOW_E, FLOW_R
from .style import beta_color, figure


def _label(beta):
    return "GD (β = 0)" if float(beta) == 0.0 else f"GD+M, β = {float(beta):g}"


def plot_two_factor(traj_df: pd.DataFrame, finals_df: pd.DataFrame | None, *, x, y, eta):
    """Trajectories over the hyperbola of minima w1 w2 = y/x, and the sharpness
    λ_max(∇²E) of each end point vs β (docs/theory.md (T23)); the end points come
    from ``finals_df`` (:func:`igrm.tidy.toy.tidy_finals`) when given (not None), else from
    the last trajectory rows. Keywords: the problem (x, y) and the η of ``toy.two_factor``
    drawn in the title. Returns the figure (the caption is report/two_factor.rst)."""
    p = TwoFactor(x=float(x), y=float(y))
    fig, axes = figure(1, 2, width=3.6, height=3.2)
    ax, axs = axes[0]
    w1 = np.linspace(0.05, 4.0, 400)
    ax.plot(w1, p.y / (p.x * w1), color="0.6", lw=2.5, alpha=0.6, label=r"minima $w_1 w_2 = y/x$")
    ends = []
    for i, (beta, g) in enumerate(traj_df.groupby("beta", sort=True)):
        g = g.sort_values("step")
        c = beta_color(beta, i)
        ax.plot(g["w1"], g["w2"], color=c, lw=1.2, label=_label(beta))
        end = g.iloc[-1]
        ax.plot(end["w1"], end["w2"], "o", color=c, ms=5, mec="k", mew=0.5)
        ends.append((beta, float(p.sharpness(np.array([end["w1"], end["w2"]])))))
    start = traj_df.sort_values("step").iloc[0]
    ax.plot(start["w1"], start["w2"], "*", color="k", ms=10, label="start")
    ax.set(
        xlim=(0, 4),
        ylim=(0, 4),
        xlabel=r"$w_1$",
        ylabel=r"$w_2$",
        title=f"GD / GD+M, η = {float(eta):g}, {int(traj_df['step'].max())} steps",
    )
    ax.set_aspect("equal")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=7)
    if finals_df is not None and len(finals_df):
        f = finals_df.sort_values("beta")
        ends = list(zip(f["beta"], f["sharpness"]))
    b, s = np.array(ends, dtype=np.float64).T
    axs.plot(b, s, "o-", color="k")
    axs.axhline(2 * abs(p.y * p.x), ls=":", color="0.5", label=r"flattest minimum $2|xy|$")
    axs.set(
        xlabel="momentum β",
        ylabel=r"sharpness $\lambda_{max}(\nabla^2 E)$ at end point",
        title="End-point sharpness vs β",
    )
    axs.legend()
    return fig


def plot_sharpness_sweep(sweep_df: pd.DataFrame):
    """Limit-point sharpness vs β: GD+M (markers), flow (2) (lines), flow (1) (dashed); the figure."""
    import matplotlib.pyplot as plt

    fig, axes = figure(1, 1, width=4.6, height=3.4)
    ax = axes[0, 0]
    cmap = plt.get_cmap("viridis")
    etas = sorted(sweep_df["eta"].unique())
    for i, (eta, g) in enumerate(sweep_df.groupby("eta", sort=True)):
        g = g.sort_values("beta")
        c = cmap(i / max(len(etas) - 1, 1) * 0.85)
        ax.plot(g["beta"], g["sharpness_gdm"], "o", color=c, ms=4, label=f"GD+M, η = {eta:g}")
        ax.plot(g["beta"], g["sharpness_flow2"], "-", color=c, label=f"flow (2), η = {eta:g}")
    ax.axhline(float(sweep_df["sharpness_flow1"].iloc[0]), ls="--", color="k", label="flow (1) (no regulariser)")
    ax.set(
        xlabel="momentum β",
        ylabel=r"sharpness $\lambda_{max}(\nabla^2 E)$ of the limit point",
        title="Toy 1: limit sharpness, GD+M vs modified flows",
    )
    ax.legend(fontsize=7, ncol=2)
    return fig


def plot_sigmoid(traj_df: pd.DataFrame, flows_df: pd.DataFrame, *, x, y, eta):
    """Map of ‖∇E‖² (log colours) with the minima curve, GD/GD+M trajectories and the
    two ODE flows (docs/theory.md (T27)); the figure. Keywords: the problem (x, y) and the
    η of ``toy.sigmoid`` drawn in the title."""
    from matplotlib.colors import LogNorm

    p = SigmoidFactor(x=float(x), y=float(y))
    fig, axes = figure(1, 1, width=5.0, height=5.0)
    ax = axes[0, 0]
    pts = pd.concat([traj_df[["w1", "w2"]], flows_df[["w1", "w2"]]])
    lo = np.nanmin(pts.values, axis=0)
    hi = np.nanmax(pts.values, axis=0)
    pad = 0.15 * (hi - lo) + 0.3
    g1 = np.linspace(min(lo[0] - pad[0], 0.0), hi[0] + pad[0], 300)
    g2 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], 300)
    W1, W2 = np.meshgrid(g1, g2)
    G = p.grad_norm2(np.stack([W1, W2], -1))
    G = np.maximum(G, 1e-8)
    levels = np.geomspace(1e-8, G.max() * 1.01, 30)
    cs = ax.contourf(W1, W2, G, levels=levels, norm=LogNorm(), cmap="Greys_r", alpha=0.85)
    fig.colorbar(cs, ax=ax, label=r"$\|\nabla E(w)\|^2$ (log scale)", format="%.0e")
    w2c = np.linspace(g2[0], g2[-1], 400)
    w1c = p.minima_w1(w2c)
    keep = (w1c >= g1[0]) & (w1c <= g1[-1])
    ax.plot(w1c[keep], w2c[keep], color="gold", lw=2, label=r"minima $w_1 = y/\sigma(w_2 x)$")
    for i, (beta, g) in enumerate(traj_df.groupby("beta", sort=True)):
        g = g.sort_values("step")
        c = beta_color(beta, i)
        # GD+M wide and under everything; GD (β = 0) thin on top of them and under the dashed
        # gradient flow it follows, so that each of the three stays visible where they coincide
        gd = float(beta) == 0.0
        ax.plot(
            g["w1"],
            g["w2"],
            color=c,
            lw=1.6 if gd else 3.2,
            alpha=1.0 if gd else 0.7,
            solid_capstyle="round",
            label=_label(beta),
            zorder=2.5 if gd else 2,
        )
        ax.plot(g["w1"].iloc[-1], g["w2"].iloc[-1], "o", color=c, ms=5, mec="w", mew=0.6, zorder=4)
    for name, style, lab in (
        (FLOW_E, dict(color="tab:cyan", ls="--"), r"gradient flow $w' = -\nabla E$"),
        (FLOW_R, dict(color="magenta", ls=":"), r"regulariser flow $w' = -\nabla\|\nabla E\|^2$"),
    ):
        f = flows_df[flows_df["flow"] == name].sort_values("t")
        ax.plot(f["w1"], f["w2"], lw=1.2, label=lab, zorder=3, **style)
    s = traj_df.sort_values("step").iloc[0]
    ax.plot(s["w1"], s["w2"], "*", color="k", mec="w", ms=11, label="start")
    ax.set(
        xlim=(g1[0], g1[-1]),
        ylim=(g2[0], g2[-1]),
        xlabel=r"$w_1$",
        ylabel=r"$w_2$",
        title=f"Toy 2: E = ½(y − w1 σ(w2 x))², η = {float(eta):g}",
    )
    # below the map: inside it the legend covered where the runs land on the minima curve
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=7)
    return fig
