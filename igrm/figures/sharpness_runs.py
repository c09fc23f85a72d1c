"""Figure ``sharpness_runs`` (results/figures/sharpness_runs.{pdf,png}): the sharpness of
the SGD+M β-sweep along the runs and at their ends (docs/cifar.md, "Flatness vs β";
claims: igrm.claims.sharpness_runs). Top row: λ_max, Hutchinson's tr H and ‖∇E‖² of the
training loss on the run's measurement set against the epoch, one line per β; bottom
row: the last point's values against β. Mean ± its ``ci`` t-interval over seeds (a single
seed: no bar). Unconverged λ_max (lower bounds, docs/theory.md (T60)) are
drawn hollow."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..stats import mean_halfwidth
from ..tidy.runs import SETTING, close, select_finals
from .cifar import empty_panel, plot_eta, setting_label
from .style import NONNEGATIVE, beta_color, figure, yerr_in_range

PANELS = (("lambda_max", "λ_max(∇²E)"), ("trace", "tr ∇²E (Hutchinson)"), ("grad_norm_sq", "‖∇E‖²"))


def _mean_ci(v: np.ndarray, level: float) -> tuple[float, float, int]:
    v = v[np.isfinite(v)]
    if not v.size:
        return math.nan, math.nan, 0
    if v.size < 2:
        return float(v.mean()), 0.0, 1
    return float(v.mean()), mean_halfwidth(v.std(ddof=1), v.size, level), int(v.size)


def plot_sharpness_runs(
    *, finals: pd.DataFrame, points: pd.DataFrame, eta: float | None, dataset: str | None, model: str | None, ci: float
) -> Figure:
    """The figure of the module docstring, for the setting (dataset, model, width, batch)
    with the most SGD+M runs at its plotted η (``eta``, or the η with the most β values)."""
    f = select_finals(finals=finals, epochs=None, spread_window=None, dataset=dataset, model=model)
    f = f[f["method"] == "sgdm"]
    fig, axes = figure(2, 3, width=3.3, height=2.7)
    groups = sorted(f.groupby(SETTING, sort=True), key=lambda kg: -len(kg[1]))
    eta_k = plot_eta(groups[0][1], eta=eta) if groups else None
    if eta_k is None:
        for ax in axes.flat:
            empty_panel(ax)
        return fig
    key, g = groups[0]
    g = g[close(g["eta"], eta_k)]
    done = g[g["status"] == "completed"]
    p = points[points["run_id"].isin(done["run_id"])]
    ns = []
    for j, (q, label) in enumerate(PANELS):
        ax, axf = axes[0, j], axes[1, j]
        n_b = max(1, p["beta"].nunique())
        span = max(1.0, float(p["epoch"].max()) if len(p) else 1.0)
        for i, (beta, gb) in enumerate(p.groupby("beta", sort=True)):
            xs, ms, cs = [], [], []
            dx = (i - (n_b - 1) / 2) * 0.012 * span  # side by side: the runs share epoch 0
            for e, ge in gb.groupby("epoch", sort=True):
                m, c, n = _mean_ci(ge[q].to_numpy(dtype=float), ci)
                xs.append(e + dx), ms.append(m), cs.append(c)
                ns.append(n)
            # measured at a few epochs only: points, not a line (nothing is known between them);
            # ‖∇E‖² is positive, so its interval is clipped at 0 (igrm.figures.style.in_range)
            yerr, _ = yerr_in_range(ms, cs, NONNEGATIVE if q == "grad_norm_sq" else (None, None))
            ax.errorbar(
                xs, ms, yerr=yerr, marker="o", ms=3, capsize=2, ls="none", color=beta_color(beta), label=f"β={beta:g}"
            )
            if q == "lambda_max":
                unc = gb[~gb["converged"].astype(bool)].groupby("epoch")[q].mean()
                ax.plot(unc.index + dx, unc.to_numpy(), ls="none", marker="o", ms=7, mfc="none", color=beta_color(beta))
        col = {"lambda_max": "final_lambda_max", "trace": "final_trace", "grad_norm_sq": "final_grad_norm_sq"}[q]
        bx, bm, bc = [], [], []
        for beta, gb in done.groupby("beta", sort=True):
            m, c, _ = _mean_ci(gb[col].to_numpy(dtype=float), ci)
            bx.append(beta), bm.append(m), bc.append(c)
        axf.errorbar(bx, bm, yerr=bc, marker="s", capsize=3, color="#1f77b4")
        for xb, mb in zip(bx, bm):
            axf.plot([xb], [mb], marker="s", color=beta_color(xb), ls="none")
        ax.set_xlabel("epoch (0 = initialisation)")
        ax.set_ylabel(label)
        axf.set_xlabel("momentum β")
        axf.set_ylabel(f"final {label}")
    axes[0, 0].legend(loc="best", fontsize=7)
    fig.suptitle(f"Sharpness of SGD+M runs at η = {eta_k:g}, {setting_label(key)}", fontsize=10)
    return fig
