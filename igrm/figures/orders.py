"""Figures of the error-order stage (docs/modified_flows.md): log-log global error against
h, drawn from the tidy tables (:mod:`igrm.tidy.orders`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..orders import COMPARISONS, PRIMARY_WINDOW
from .style import figure, legend_below

_COMP_COLORS = {
    "naive": "#d62728",
    "manifold": "#1f77b4",
    "manifold2": "#9467bd",
    "shifted": "#2ca02c",
    "sgdm": "#1f77b4",
    "sgdm_deterministic": "#7f7f7f",
}
_FLOW_STYLE = {
    "flow (1)": ("--", "s"),
    "flow (2)": ("-", "o"),
    "SGD+M flow": ("-", "o"),
    "SGD+M flow without h/4 terms": ("--", "s"),
    "flow (3)": ("-", "D"),
    "flow (3) without T term": (":", "v"),
}
_HIGHER_COLORS = {"flow (2)": "#1f77b4", "flow (3)": "#d62728", "flow (3) without T term": "#7f7f7f"}
_SERIES_COLORS = ("#1b1b1b", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
ERROR_LABEL = r"global error $\max_{kh\leq T}\|x_k - x(kh)\|$"
#: what a reader calls each comparison and problem (the ids stay in the tables and claims)
COMP_NAMES = {
    "naive": "from rest",
    "manifold": "slow-manifold start, O(h)",
    "manifold2": "slow-manifold start, O(h²)",
    "shifted": "from rest, flow from shifted start",
    "sgdm": "SGD+M (RMS over streams)",
    "sgdm_deterministic": "constant stream (GD+M)",
    "manifold3": "slow-manifold start, O(h³)",
    "shifted3": "from rest, flow (3) from x₀+Δ₂",
    "series": "exact slow manifold",
    "limit": "from rest",
}
PROBLEM_NAMES = {"two_factor": "two-factor toy", "lstsq": "least squares"}


def log_ticks(ax, values) -> None:
    """x ticks at the 1-2-5 values inside the data range (a log axis over less than a decade
    labelled one tick per panel), labelled 5e-05; no minor labels."""
    from matplotlib.ticker import NullFormatter

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return
    lo, hi = float(v.min()), float(v.max())
    cands = [
        m * 10.0**e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)
    ]
    ticks = [c for c in cands if lo / 1.001 <= c <= hi * 1.001]
    if len(ticks) > 4:
        ticks = [c for c in ticks if f"{c:.0e}"[0] in "15"] or ticks
    if len(ticks) < 2:
        ticks = [lo, hi]
    ax.set_xticks(ticks, [f"{t:.0e}".replace("e-0", "e-").replace("e+0", "e") for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def end_labels(ax, items, fontsize: float = 6.5) -> None:
    """Label each line at its right end, just outside the panel, with its fitted slope,
    in the line's colour; labels nudged apart so none overlap. ``items``: (y_end, text, colour)."""
    items = [(y, t, c) for y, t, c in items if np.isfinite(y) and y > 0]
    if not items:
        return
    ax.set_ylim(ax.get_ylim())  # fix the limits the labels are placed against
    fig = ax.figure
    gap = fontsize * 1.25 * fig.dpi / 72.0
    disp = [ax.transData.transform((1.0, y))[1] for y, _, _ in items]
    order = np.argsort(disp)
    placed = []
    for i in order:
        y = disp[i] if not placed else max(disp[i], placed[-1][0] + gap)
        placed.append((y, i))
    # shift the stack down if it ran off the top of the panel
    top = ax.transAxes.transform((0, 1))[1]
    over = placed[-1][0] - top
    if over > 0:
        placed = [(y - over, i) for y, i in placed]
    inv = ax.transData.inverted()
    for y, i in placed:
        yd = inv.transform((0.0, y))[1]
        ax.annotate(
            items[i][1],
            xy=(1.0, yd),
            xycoords=("axes fraction", "data"),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            ha="left",
            fontsize=fontsize,
            color=items[i][2],
            annotation_clip=False,
        )


def _slope_triangles(ax, h, err, powers=(1, 2)):
    """Reference triangles of the given slopes (default 1 and 2) in the lower right of the data range."""
    h = np.asarray(h, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    err = err[np.isfinite(err) & (err > 0)]
    if len(h) < 2 or len(err) == 0:
        return
    h0, h1 = float(h.min()), float(h.max())
    x0 = h0 * (h1 / h0) ** 0.55
    x1 = h0 * (h1 / h0) ** 0.85
    y0 = float(err.min())
    for p, yoff in zip(powers, (1.0, 8.0, 64.0, 512.0)):
        ya = y0 * yoff
        yb = ya * (x1 / x0) ** p
        ax.plot([x0, x1, x1, x0], [ya, ya, yb, ya], color="0.35", lw=0.8)
        ax.text(x1 * 1.05, (ya * yb) ** 0.5, f"{p}", fontsize=7, color="0.25", va="center")


def _finish_axes(ax, h_values, ends) -> None:
    """An error-vs-h panel's labels, readable x ticks on the log axis, and each line's fitted
    order at its end (the legend is the figure's, below the panels)."""
    ax.set_xlabel("step size h")
    ax.set_ylabel(ERROR_LABEL)
    log_ticks(ax, h_values)
    end_labels(ax, ends)


def slope_lookup(slopes: pd.DataFrame | None):
    if slopes is None or not len(slopes):
        return {}
    return {
        (r.problem, float(r.beta), r.comparison, r.flow, r.window): (r.slope, r.slope_se)
        for r in slopes.itertuples(index=False)
    }


def problem_beta_panels(axes, d: pd.DataFrame, problems, betas):
    """(ax, problem, β, its rows) of a grid of panels, rows = problems, columns = β; a panel
    with no rows is switched off and skipped."""
    for pi, prob in enumerate(problems):
        for bi, beta in enumerate(betas):
            g = d[(d["problem"] == prob) & (d["beta"] == beta)]
            if g.empty:
                axes[pi, bi].set_axis_off()
                continue
            yield axes[pi, bi], prob, beta, g


def plot_orders_gdm(df: pd.DataFrame, slopes: pd.DataFrame | None):
    """Log-log global error vs h, one panel per (problem, β), a line per (comparison, flow)
    on its primary window, fitted slopes in the legend, slope-1 and slope-2 triangles."""
    d = df[df["comparison"].isin(COMPARISONS)]
    d = d[d["window"] == d["comparison"].map(PRIMARY_WINDOW)]
    problems = list(dict.fromkeys(d["problem"]))
    betas = sorted(d["beta"].unique())
    fig, axes = figure(max(len(problems), 1), max(len(betas), 1), width=3.9, height=3.3)
    fits = slope_lookup(slopes)
    for ax, prob, beta, g in problem_beta_panels(axes, d, problems, betas):
        ends = []
        for (comp, flow), gg in g.groupby(["comparison", "flow"], sort=False):
            ls, mk = _FLOW_STYLE[flow]
            s, se = fits.get((prob, float(beta), comp, flow, PRIMARY_WINDOW[comp]), (math.nan, math.nan))
            gg = gg.sort_values("h")
            ax.loglog(
                gg["h"],
                gg["error"],
                ls=ls,
                marker=mk,
                ms=3,
                color=_COMP_COLORS[comp],
                label=f"{COMP_NAMES[comp]} vs {flow}",
            )
            ends.append((float(gg["error"].iloc[-1]), f"{s:.2f}", _COMP_COLORS[comp]))
        _slope_triangles(ax, g["h"], g["error"])
        ax.set_title(f"{PROBLEM_NAMES.get(prob, prob)}, β = {beta:g}")
        _finish_axes(ax, g["h"], ends)
    legend_below(
        fig,
        axes,
        ncol=1 if len(betas) < 2 else 2,
        fontsize=7.5,
        title="start vs flow (colour: start; dashed: flow (1), solid: flow (2)); "
        "number at each line's end: fitted order",
    )
    return fig


def plot_orders_sgdm(df: pd.DataFrame, slopes: pd.DataFrame | None):
    """Log-log RMS (over streams) global error of SGD+M against its flow with and without
    the h/4 terms, error bars std/√n, one panel per β; deterministic-stream lines thin."""
    d = df[df["comparison"].isin(("sgdm", "sgdm_deterministic"))]
    betas = sorted(d["beta"].unique())
    fig, axes = figure(1, max(len(betas), 1), width=3.9, height=3.4)
    fits = slope_lookup(slopes)
    for bi, beta in enumerate(betas):
        ax = axes[0, bi]
        g = d[d["beta"] == beta]
        ends = []
        for (prob, comp, flow), gg in g.groupby(["problem", "comparison", "flow"], sort=False):
            gg = gg.sort_values("h")
            ls, mk = _FLOW_STYLE.get(flow, (":", "^"))
            s, se = fits.get((prob, float(beta), comp, flow, "all"), (math.nan, math.nan))
            if comp == "sgdm":
                yerr = gg["error_std"] / np.sqrt(gg["n_streams"])
                ax.errorbar(
                    gg["h"],
                    gg["error"],
                    yerr=yerr,
                    ls=ls,
                    marker=mk,
                    ms=3,
                    color=_COMP_COLORS[comp],
                    capsize=2,
                    label=f"{flow}, RMS over {int(gg['n_streams'].iloc[0])} streams ± 1 s.e.",
                )
                ends.append((float(gg["error"].iloc[-1]), f"{s:.2f}", _COMP_COLORS[comp]))
            else:
                col = "0.45" if flow.startswith("SGD") else "#ff7f0e"
                ax.plot(
                    gg["h"],
                    gg["error"],
                    ls=":",
                    marker=mk,
                    ms=2,
                    lw=0.9,
                    color=col,
                    label=f"constant stream (GD+M) vs {flow}",
                )
                ends.append((float(gg["error"].iloc[-1]), f"{s:.2f}", col))
        ax.set_xscale("log")
        ax.set_yscale("log")
        if len(g):
            _slope_triangles(ax, g["h"], g["error"])
        ax.set_title(f"SGD+M, two-factor toy, β = {beta:g}")
        _finish_axes(ax, g["h"], ends)
    legend_below(
        fig, axes, ncol=1 if len(betas) < 2 else 2, fontsize=7.5, title="number at each line's end: fitted order"
    )
    return fig


def plot_orders_higher(df: pd.DataFrame, slopes: pd.DataFrame | None):
    """Beyond the paper (docs/modified_flows.md §7): log-log global error vs h of GD+M
    started on its slow manifold to O(h³) against flow (2), the O(h³) flow and its ablation
    without the third-derivative term (a row per problem), and, last row, GD+M on the least-
    squares problem against the order-R truncations of the exact linear series; a panel
    per β, fitted slopes ± s.e. in the legends."""
    d3 = df[df["comparison"].isin(("manifold3", "shifted3"))]
    ds = df[df["comparison"] == "series"]
    problems = list(dict.fromkeys(d3["problem"]))
    rows = [("manifold3", p) for p in problems] + ([("series", "lstsq")] if len(ds) else [])
    betas = sorted(pd.concat([d3["beta"], ds["beta"]]).unique())
    fig, axes = figure(max(len(rows), 1), max(len(betas), 1), width=3.6, height=3.9)
    fits = slope_lookup(slopes)
    for ri, (comp, prob) in enumerate(rows):
        for bi, beta in enumerate(betas):
            ax = axes[ri, bi]
            g = d3 if comp == "manifold3" else ds
            g = g[(g["problem"] == prob) & (g["beta"] == beta)]
            if g.empty:
                ax.set_axis_off()
                continue
            ends = []
            for k, ((c, flow), gg) in enumerate(g.groupby(["comparison", "flow"], sort=False)):
                s, se = fits.get((prob, float(beta), c, flow, PRIMARY_WINDOW[c]), (math.nan, math.nan))
                gg = gg.sort_values("h")
                label = f"{COMP_NAMES[c]} vs {flow}"
                if c == "shifted3":  # from rest vs flow (3) from x_0 + Δ₂, t ≥ t_burn
                    ls, mk, color = "--", "x", "#2ca02c"
                    label = f"{COMP_NAMES[c]} (t ≥ t_burn)"
                elif comp == "manifold3":
                    ls, mk = _FLOW_STYLE[flow]
                    color = _HIGHER_COLORS[flow]
                else:
                    ls, mk, color = "-", "o", _SERIES_COLORS[k % len(_SERIES_COLORS)]
                    label = f"exact slow manifold vs truncation to {flow}"
                ax.loglog(gg["h"], gg["error"], ls=ls, marker=mk, ms=3, color=color, label=label)
                ends.append((float(gg["error"].iloc[-1]), f"{s:.2f}", color))
            if comp == "manifold3":
                _slope_triangles(ax, g["h"], g["error"], powers=(2, 3))
                ax.set_title(f"{PROBLEM_NAMES.get(prob, prob)}, O(h³) start, β = {beta:g}", fontsize=8)
            else:  # four slopes: triangles would cover the lines; the end labels give the fits
                ax.set_title(f"least squares, exact series to order R, β = {beta:g}", fontsize=8)
            _finish_axes(ax, g["h"], ends)
    legend_below(
        fig,
        axes,
        ncol=1 if len(betas) < 2 else 2,
        fontsize=7.5,
        title="number at each line's end: fitted order (log-log fit)",
    )
    return fig


def plot_orders_higher_limits(df: pd.DataFrame, slopes: pd.DataFrame | None):
    """What the O(h³) flow buys (docs/modified_flows.md §7.6): relative limit-sharpness error
    |S_flow/S_GD+M − 1| vs β, a panel per ε, a line per flow (flow (2) from x_0; flow (3) from
    x_0; flow (3) from x_0 + Δ₂); last panel: the same vs ε at every β (the orders)."""
    d = df[df["comparison"] == "limit"]
    eps = sorted(d["eps"].round(12).unique())
    ncol = min(3, len(eps) + 1)
    nrow = -(-(len(eps) + 1) // ncol)
    fig, grid = figure(nrow, ncol, width=3.4, height=3.8 if nrow == 1 else 4.2)
    axes = grid.ravel()
    for ax in axes[len(eps) + 1 :]:
        ax.set_axis_off()
    colors = {"flow (2)": "#1f77b4", "flow (3)": "#7f7f7f", "flow (3) from x_0 + Delta_2": "#d62728"}
    marks = {"flow (2)": "o", "flow (3)": "v", "flow (3) from x_0 + Delta_2": "D"}
    for k, e in enumerate(eps):
        ax = axes[k]
        g = d[d["eps"].round(12) == e]
        for flow, gg in g.groupby("flow", sort=False):
            gg = gg.sort_values("beta")
            ax.semilogy(
                gg["beta"],
                gg["error"],
                marker=marks.get(flow, "s"),
                ms=3,
                color=colors.get(flow, "k"),
                label=flow.replace("Delta_2", "Δ₂"),
            )
        ax.set_title(f"ε = hL0/(1−β)² = {e:g}", fontsize=8)
        ax.set_xlabel("momentum β")
        ax.set_ylabel(r"limit-sharpness error $|S_{flow}/S_{GD+M} - 1|$")

    ax = axes[len(eps)]
    fits = slope_lookup(slopes)
    ends = []
    for (flow, beta), gg in d.groupby(["flow", "beta"], sort=False):
        gg = gg.sort_values("eps")
        s, se = fits.get((gg["problem"].iloc[0], float(beta), "limit", flow, "all"), (math.nan, math.nan))
        col = colors.get(flow, "k")
        ax.loglog(
            gg["eps"],
            gg["error"],
            marker=marks.get(flow, "s"),
            ms=2,
            lw=0.8,
            color=col,
            alpha=0.35 + 0.65 * float(beta),
            label=flow.replace("Delta_2", "Δ₂"),
        )
        ends.append((float(gg["error"].iloc[-1]), f"β={beta:g}: {s:.2f}", col))
    ax.set_title("same, vs ε (fitted order in h at fixed β)", fontsize=8)
    ax.set_xlabel("ε = hL0/(1−β)²")
    ax.set_ylabel(r"limit-sharpness error $|S_{flow}/S_{GD+M} - 1|$")
    log_ticks(ax, d["eps"])
    end_labels(ax, ends, fontsize=5.5)
    legend_below(
        fig,
        axes,
        ncol=3,
        fontsize=7.5,
        title="flow, started from (last panel: fitted order in h at each β, at the line's end; lighter = smaller β)",
    )
    return fig
