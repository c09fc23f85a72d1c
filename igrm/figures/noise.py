"""Figures of the gradient-noise stage (docs/noise.md), from the tidy tables of
igrm/tidy/noise.py: the variance ratio of the historical gradient (Obs-1) and the ratio of
expected implicit regularisers (Obs-2) against β, measured with CIs beside the exact theory
(igrm/noise_theory.py) and the slides' factors. Each function returns the Figure; the
captions are report/noise_variance.rst, report/noise_regularisation.rst and report/noise_bn.rst."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..noise_theory import igrm_ratio_limits, ratio_iid
from .style import figure, legend_below

_K_MARKERS = ("o", "s", "^", "D", "v", "P")
_K_STYLES = (":", "--", "-", "-.")


_K_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_SAMPLER_TITLES = {
    "iid": "iid mini-batches",
    "epoch": "without replacement (epochs)",
    "epoch_bneval": "epochs, BatchNorm eval (control)",
    "iid_trajectory": "iid, along SGD+M runs (§10)",
}
VARIANCE_LABEL = r"$\mathrm{tr\,Cov}((1-\beta)\nabla G_k)\;/\;\mathrm{tr\,Cov}(g)$"
REG_LABEL = r"$\mathbb{E}[\mathrm{IGRM}_s]\;/\;\mathbb{E}[\mathrm{IGR}_s]$  (same h)"


def _point_name(point: str) -> str:
    """'epoch 0 (initialisation)' of '.../epoch0'."""
    tail = str(point).split("/")[-1]
    if tail.startswith("epoch") and tail[5:].isdigit():
        e = int(tail[5:])
        return "initialisation (epoch 0)" if e == 0 else f"after epoch {e}"
    return tail


def _panels(df: pd.DataFrame, ylabel: str):
    """One row per checkpoint, one column per sampler (they used to share a panel, marker and
    colour): the figure, and per panel (axes, sampler, its rows by k), the panel labelled."""
    points = list(dict.fromkeys(df["point"]))
    samplers = list(dict.fromkeys(df["sampler"]))
    fig, axes = figure(len(points), len(samplers), width=3.5, height=2.9)

    def panels():
        for pi, point in enumerate(points):
            for si, s in enumerate(samplers):
                ax = axes[pi, si]
                d = df[(df["sampler"] == s) & (df["point"] == point)]
                ax.set_yscale("log")
                ax.set_xlabel("momentum β")
                ax.set_ylabel(ylabel)
                ax.set_title(f"{_point_name(point)},\n{_SAMPLER_TITLES.get(s, s)}", fontsize=8)
                ks = sorted(d["k"].unique())
                yield (
                    ax,
                    s,
                    [
                        (j, k, d[d["k"] == k].sort_values("beta"), 0.008 * (j - (len(ks) - 1) / 2))
                        for j, k in enumerate(ks)
                    ],
                )

    return fig, axes, panels()


def _measured(ax, x, y, lo, hi, j: int, k) -> None:
    ax.errorbar(
        x,
        y,
        yerr=[y - lo, hi - y],
        fmt=_K_MARKERS[j % 6],
        ms=4,
        color=_K_COLORS[j % 6],
        capsize=2,
        lw=0.9,
        ls="none",
        label=f"measured, k = {k}",
    )


def plot_variance_ratio(ratios: pd.DataFrame) -> Figure:
    """Measured tr Cov((1−β)∇G_k)/tr Cov(g) vs β (with the table's CIs; colour and marker = k), a
    row per checkpoint and a column per sampler, with the exact theory per k (iid: thin grey;
    epoch: black) and the slides' (1−β)/(1+β). ``ratios``: igrm.tidy.noise.noise_ratios' table."""
    df = ratios
    fig, axes, panels = _panels(df, VARIANCE_LABEL)
    bb = np.linspace(0, max(0.99, df["beta"].max()), 200)
    for ax, s, by_k in panels:
        for j, k, dk, dx in by_k:
            ax.plot(bb, ratio_iid(bb, k), _K_STYLES[j % 4], color="0.6", lw=0.9, label=f"iid theory, k = {k}")
            if s.startswith("epoch"):
                ax.plot(
                    dk["beta"],
                    dk["theory_epoch"],
                    _K_STYLES[j % 4],
                    color="k",
                    lw=1.3,
                    label=f"without-replacement theory, k = {k}",
                )
            _measured(ax, dk["beta"] + dx, dk["ratio"], dk["lo"], dk["hi"], j, k)
        ax.plot(bb, (1 - bb) / (1 + bb), color="tab:red", lw=0.8, alpha=0.6, label="slides (1−β)/(1+β)")
    legend_below(fig, axes, ncol=3)
    return fig


def plot_reg_ratio(regularisation: pd.DataFrame) -> Figure:
    """E[IGRM_s]/E[IGR_s] vs β (same h, G as written): measured (with the table's CIs), exact theory
    from the measured ‖m‖², trΣ, the slides' 1/(1−β) and the noise/mean-dominated limits; a
    row per checkpoint, a column per sampler. ``regularisation``: igrm.tidy.noise.noise_regularisation's table."""
    df = regularisation
    fig, axes, panels = _panels(df, REG_LABEL)
    bb = np.linspace(0, max(0.96, df["beta"].max()), 200)
    lim = igrm_ratio_limits(bb)
    for ax, _s, by_k in panels:
        for j, k, dk, dx in by_k:
            ax.plot(dk["beta"], dk["theory"], _K_STYLES[j % 4], color="k", lw=1.0, label=f"exact theory, k = {k}")
            _measured(ax, dk["beta"] + dx, dk["igrm_over_igr"], dk["lo"], dk["hi"], j, k)
        ax.plot(bb, 1 / (1 - bb), color="tab:red", lw=1.2, label="slides 1/(1−β)")
        ax.plot(bb, lim["raw_noise"], color="tab:blue", lw=0.8, alpha=0.6, label="k→∞, noise-dominated 1/(1−β)²")
        ax.plot(bb, lim["raw_mean"], color="tab:green", lw=0.8, alpha=0.6, label="k→∞, mean-dominated (1+β)/(1−β)³")
    legend_below(fig, axes, ncol=3)
    return fig


def plot_bn_ratio(ratios: pd.DataFrame, *, margin: float) -> Figure:
    """Per (point, BatchNorm mode) of the epoch-type samplers: measured/exact − 1 (open
    markers, the estimators of §4) and measured/corrected − 1 ((T79), filled) vs β, marker = k,
    with the table's CIs and the ±margin band (noise.theory_margin); the panel title gives the additive share ρ̂
    with its interval. ``ratios``: igrm.tidy.noise.noise_ratios' table."""
    df = ratios[np.isfinite(ratios["additive_share"])]
    panels = list(dict.fromkeys(zip(df["point"], df["sampler"])))
    fig, axes = figure(1, max(len(panels), 1), width=3.4, height=3.0)
    for ax, (point, s) in zip(axes[0], panels):
        d = df[(df["point"] == point) & (df["sampler"] == s)]
        ks = sorted(d["k"].unique())
        ax.axhspan(-margin, margin, color="0.9", zorder=0)
        ax.axhline(0, color="0.5", lw=0.6)
        for j, k in enumerate(ks):
            dk = d[d["k"] == k].sort_values("beta")
            dx = 0.008 * (j - (len(ks) - 1) / 2)
            ex = dk["ratio"] / dk["theory"] - 1
            ax.errorbar(
                dk["beta"] + dx - 0.003,
                ex,
                yerr=[ex - (dk["lo"] / dk["theory"] - 1), (dk["hi"] / dk["theory"] - 1) - ex],
                fmt=_K_MARKERS[j % 6],
                ms=4,
                mfc="white",
                color="0.35",
                capsize=2,
                lw=0.8,
                label=f"vs exact WOR, k={k}",
            )
            bn = dk["ratio_bn"] - 1
            ax.errorbar(
                dk["beta"] + dx + 0.003,
                bn,
                yerr=[bn - (dk["bn_lo"] - 1), (dk["bn_hi"] - 1) - bn],
                fmt=_K_MARKERS[j % 6],
                ms=4,
                color="tab:blue",
                capsize=2,
                lw=0.8,
                label=f"vs corrected (T77), k={k}",
            )
        r = d.iloc[0]
        mode = r["batchnorm"]
        ax.set_title(
            f"{_point_name(point)}, BN {mode}: ρ̂ = {r['additive_share']:.2f} "
            f"[{r['share_lo']:.2f}, {r['share_hi']:.2f}]",
            fontsize=7,
        )
        ax.set_xlabel("momentum β")
        ax.set_ylabel("measured / theory − 1  (relative)")
    legend_below(fig, axes, ncol=2)
    return fig
