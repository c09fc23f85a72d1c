"""Figure eos: λ_max over training per β with the stability limits 2(1+β)/h (docs/mechanism.md
(S1)–(S3)); one panel per setting, the loss below."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .style import beta_color, figure, legend_below


def plot_eos(*, table: pd.DataFrame, edge_margin: float):
    """Top row: λ_max (algebraic top of the training-loss Hessian) against the step, mean over
    seeds (band: min–max over seeds), one colour per β, the dashed line at 2(1+β)/h of the
    same colour and a band 1 ± ``edge_margin`` around it; bottom row: the train loss."""
    settings = sorted(table["setting"].unique())
    fig, axes = figure(2, len(settings), width=3.6, height=2.7)
    for c, tag in enumerate(settings):
        g = table[table["setting"] == tag]
        ax, axl = axes[0, c], axes[1, c]
        for i, (beta, gb) in enumerate(g.groupby("beta", sort=True)):
            col = beta_color(float(beta), i)
            h = float(gb["h"].iloc[0])
            agg = gb.groupby("step")["lambda_max"].agg(["mean", "min", "max"])
            ax.plot(agg.index, agg["mean"], color=col, label=f"β = {beta:g}")
            ax.fill_between(agg.index, agg["min"], agg["max"], color=col, alpha=0.2, lw=0)
            thr = 2 * (1 + float(beta)) / h
            ax.axhline(thr, color=col, ls="--", lw=1, label="2(1+β)/h (dashed)")
            ax.axhspan(thr * (1 - edge_margin), thr * (1 + edge_margin), color=col, alpha=0.06, lw=0)
            la = gb.groupby("step")["loss"].mean()
            axl.plot(la.index, la.to_numpy(), color=col)
        top = np.nanmax(g["lambda_max"].to_numpy(dtype=float))
        lims = [2 * (1 + float(b)) / float(gb["h"].iloc[0]) for b, gb in g.groupby("beta")]
        ax.set_ylim(0, 1.15 * max(top, min(lims)))
        ax.set_title(tag.replace("_", ", "))
        ax.set_xlabel("step k")
        ax.set_ylabel("λ_max (loss / param²)")
        axl.set_yscale("log")
        axl.set_xlabel("step k")
        axl.set_ylabel("train loss ½‖f − y‖²")
    legend_below(fig, axes, ncol=2, title=None)
    return fig
