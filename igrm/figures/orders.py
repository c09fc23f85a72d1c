"""Figures of the error-order stage (docs/modified_flows.md): log-log global error against
h, drawn from the tidy tables (:mod:`igrm.tidy.orders`)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd

from ..orders import COMPARISONS, PRIMARY_WINDOW
from .style import figure, save

_COMP_COLORS = {"naive": "#d62728", "manifold": "#1f77b4", "manifold2": "#9467bd", "shifted": "#2ca02c",
                "sgdm": "#1f77b4", "sgdm_deterministic": "#7f7f7f"}
_FLOW_STYLE = {"flow (1)": ("--", "s"), "flow (2)": ("-", "o"), "SGD+M flow": ("-", "o"),
               "SGD+M flow without h/4 terms": ("--", "s"), "flow (3)": ("-", "D"),
               "flow (3) without T term": (":", "v")}
_HIGHER_COLORS = {"flow (2)": "#1f77b4", "flow (3)": "#d62728", "flow (3) without T term": "#7f7f7f"}
_SERIES_COLORS = ("#1b1b1b", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
ERROR_LABEL = r"global error $\max_{kh\leq T}\|x_k - x(kh)\|$"


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


def _finish_axes(ax, ncol: int, title: str):
    """No minor tick labels on the log axes; legend below the panel, clear of the data."""
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, title=title,
              title_fontsize=6, frameon=False)


def _slope_lookup(slopes: pd.DataFrame | None):
    if slopes is None or not len(slopes):
        return {}
    return {(r.problem, float(r.beta), r.comparison, r.flow, r.window): (r.slope, r.slope_se)
            for r in slopes.itertuples(index=False)}


def plot_orders_gdm(df: pd.DataFrame, slopes: pd.DataFrame | None, *, paths: Iterable):
    """Log-log global error vs h, one panel per (problem, β), a line per (comparison, flow)
    on its primary window, fitted slopes in the legend, slope-1 and slope-2 triangles."""
    d = df[df["comparison"].isin(COMPARISONS)]
    d = d[d["window"] == d["comparison"].map(PRIMARY_WINDOW)]
    problems = list(dict.fromkeys(d["problem"]))
    betas = sorted(d["beta"].unique())
    fig, axes = figure(max(len(problems), 1), max(len(betas), 1), width=3.8, height=4.0)
    fits = _slope_lookup(slopes)
    for pi, prob in enumerate(problems):
        for bi, beta in enumerate(betas):
            ax = axes[pi, bi]
            g = d[(d["problem"] == prob) & (d["beta"] == beta)]
            if g.empty:
                ax.set_axis_off()
                continue
            for (comp, flow), gg in g.groupby(["comparison", "flow"], sort=False):
                ls, mk = _FLOW_STYLE[flow]
                s, se = fits.get((prob, float(beta), comp, flow, PRIMARY_WINDOW[comp]), (math.nan, math.nan))
                ax.loglog(gg["h"], gg["error"], ls=ls, marker=mk, ms=3, color=_COMP_COLORS[comp],
                          label=f"{comp}, {flow}: {s:.2f}±{se:.2f}")
            _slope_triangles(ax, g["h"], g["error"])
            ax.set_title(f"{prob}, β = {beta:g}")
            ax.set_xlabel("step size h")
            ax.set_ylabel(ERROR_LABEL)
            _finish_axes(ax, ncol=2, title="start, flow: fitted slope ± s.e.")
    cap = ("Global error of GD+M against its modified flows versus step size h (log-log). "
                      "naive: from rest vs flow from x_0; manifold/manifold2: started on the slow manifold "
                      "to O(h)/O(h^2); shifted: from rest vs flow from the shifted start (error over "
                      "t >= t_burn). Legend: fitted slope ± standard error; triangles: slopes 1 and 2.")
    return save(fig, paths, caption=cap)


def plot_orders_sgdm(df: pd.DataFrame, slopes: pd.DataFrame | None, *, paths: Iterable):
    """Log-log RMS (over streams) global error of SGD+M against its flow with and without
    the h/4 terms, error bars std/√n, one panel per β; deterministic-stream lines thin."""
    d = df[df["comparison"].isin(("sgdm", "sgdm_deterministic"))]
    betas = sorted(d["beta"].unique())
    fig, axes = figure(1, max(len(betas), 1), width=3.8, height=4.2)
    fits = _slope_lookup(slopes)
    for bi, beta in enumerate(betas):
        ax = axes[0, bi]
        g = d[d["beta"] == beta]
        for (prob, comp, flow), gg in g.groupby(["problem", "comparison", "flow"], sort=False):
            ls, mk = _FLOW_STYLE.get(flow, (":", "^"))
            s, se = fits.get((prob, float(beta), comp, flow, "all"), (math.nan, math.nan))
            if comp == "sgdm":
                yerr = gg["error_std"] / np.sqrt(gg["n_streams"])
                ax.errorbar(gg["h"], gg["error"], yerr=yerr, ls=ls, marker=mk, ms=3, color=_COMP_COLORS[comp],
                            capsize=2, label=f"{flow} (RMS, {int(gg['n_streams'].iloc[0])} streams): {s:.2f}±{se:.2f}")
            else:
                ax.plot(gg["h"], gg["error"], ls=":", marker=mk, ms=2, lw=0.9,
                        color="0.45" if flow.startswith("SGD") else "#ff7f0e",
                        label=f"constant stream, {flow}: {s:.2f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        if len(g):
            _slope_triangles(ax, g["h"], g["error"])
        ax.set_title(f"SGD+M, two factors, β = {beta:g}")
        ax.set_xlabel("step size h")
        ax.set_ylabel(ERROR_LABEL)
        _finish_axes(ax, ncol=1, title="flow: fitted slope ± s.e.")
    cap = ("Global error of SGD+M (two-factor stream) against the piecewise SGD+M modified flow "
                      "with and without its h/4 terms versus h (log-log); RMS over sample streams, error "
                      "bars std/sqrt(n). Dotted: constant stream (GD+M) against the SGD+M flow and flows (1)-(2) "
                      "from x_0. Legend: fitted slope ± standard error; triangles: slopes 1 and 2.")
    return save(fig, paths, caption=cap)


def plot_orders_higher(df: pd.DataFrame, slopes: pd.DataFrame | None, *, paths: Iterable):
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
    fits = _slope_lookup(slopes)
    for ri, (comp, prob) in enumerate(rows):
        for bi, beta in enumerate(betas):
            ax = axes[ri, bi]
            g = (d3 if comp == "manifold3" else ds)
            g = g[(g["problem"] == prob) & (g["beta"] == beta)]
            if g.empty:
                ax.set_axis_off()
                continue
            for k, ((c, flow), gg) in enumerate(g.groupby(["comparison", "flow"], sort=False)):
                s, se = fits.get((prob, float(beta), c, flow, PRIMARY_WINDOW[c]), (math.nan, math.nan))
                label = f"{flow}: {s:.2f}±{se:.2f}"
                if c == "shifted3":      # from rest vs flow (3) from x_0 + Δ₂, t ≥ t_burn
                    ls, mk, color = "--", "x", "#2ca02c"
                    label = f"from rest, {flow} from x_0+Δ₂ (t≥t_burn): {s:.2f}±{se:.2f}"
                elif comp == "manifold3":
                    ls, mk = _FLOW_STYLE[flow]
                    color = _HIGHER_COLORS[flow]
                else:
                    ls, mk, color = "-", "o", _SERIES_COLORS[k % len(_SERIES_COLORS)]
                ax.loglog(gg["h"], gg["error"], ls=ls, marker=mk, ms=3, color=color, label=label)
            if comp == "manifold3":
                _slope_triangles(ax, g["h"], g["error"], powers=(2, 3))
                ax.set_title(f"{prob}, slow start O(h³), β = {beta:g}", fontsize=8)
            else:   # four slopes: triangles would cover the lines; the legend gives the fits
                ax.set_title(f"lstsq, exact series to order R, β = {beta:g}", fontsize=8)
            ax.set_xlabel("step size h")
            ax.set_ylabel(ERROR_LABEL)
            _finish_axes(ax, ncol=1 if comp == "manifold3" else 2, title="flow: fitted slope ± s.e. (log-log fit)")
    cap = ("Beyond the paper: global error of GD+M against its higher-order modified flows versus step size h "
           "(log-log). Upper rows: GD+M started on its slow manifold to O(h^3) against flow (2), the O(h^3) flow "
           "and the O(h^3) flow without its third-derivative term (ablation); dashed green: GD+M from rest against "
           "the O(h^3) flow from the rest-offset start x_0 + Delta_2 (error over t >= t_burn). Last row: least squares, GD+M on "
           "its exact slow manifold against the order-R truncations of the exact modified flow. Legend: fitted "
           "slope ± standard error of the log-log fit; triangles (upper rows): reference slopes 2 and 3.")
    return save(fig, paths, caption=cap)


def plot_orders_higher_limits(df: pd.DataFrame, slopes: pd.DataFrame | None, *, paths: Iterable):
    """What the O(h³) flow buys (docs/modified_flows.md §7.6): relative limit-sharpness error
    |S_flow/S_GD+M − 1| vs β, a panel per ε, a line per flow (flow (2) from x_0; flow (3) from
    x_0; flow (3) from x_0 + Δ₂); last panel: the same vs ε at every β (the orders)."""
    d = df[df["comparison"] == "limit"]
    eps = sorted(d["eps"].round(12).unique())
    ncol = min(3, len(eps) + 1)
    nrow = -(-(len(eps) + 1) // ncol)
    fig, grid = figure(nrow, ncol, width=3.4, height=3.8 if nrow == 1 else 4.2)
    axes = grid.ravel()
    for ax in axes[len(eps) + 1:]:
        ax.set_axis_off()
    colors = {"flow (2)": "#1f77b4", "flow (3)": "#7f7f7f", "flow (3) from x_0 + Delta_2": "#d62728"}
    marks = {"flow (2)": "o", "flow (3)": "v", "flow (3) from x_0 + Delta_2": "D"}
    for k, e in enumerate(eps):
        ax = axes[k]
        g = d[d["eps"].round(12) == e]
        for flow, gg in g.groupby("flow", sort=False):
            gg = gg.sort_values("beta")
            ax.semilogy(gg["beta"], gg["error"], marker=marks.get(flow, "s"), ms=3, color=colors.get(flow, "k"),
                        label=flow.replace("Delta_2", "Δ₂"))
        ax.set_title(f"ε = hL0/(1−β)² = {e:g}", fontsize=8)
        ax.set_xlabel("momentum β")
        ax.set_ylabel(r"limit-sharpness error $|S_{flow}/S_{GD+M} - 1|$")
        _finish_axes(ax, ncol=1, title="flow, from")
    ax = axes[len(eps)]
    fits = _slope_lookup(slopes)
    for (flow, beta), gg in d.groupby(["flow", "beta"], sort=False):
        gg = gg.sort_values("eps")
        s, se = fits.get((gg["problem"].iloc[0], float(beta), "limit", flow, "all"), (math.nan, math.nan))
        ax.loglog(gg["eps"], gg["error"], marker=marks.get(flow, "s"), ms=2, lw=0.8, color=colors.get(flow, "k"),
                  alpha=0.35 + 0.65 * float(beta), label=f"{flow.replace('Delta_2', 'Δ₂')}, β={beta:g}: {s:.2f}±{se:.2f}")
    ax.set_title("same, vs ε (fitted order in h at fixed β)", fontsize=8)
    ax.set_xlabel("ε = hL0/(1−β)²")
    ax.set_ylabel(r"limit-sharpness error $|S_{flow}/S_{GD+M} - 1|$")
    ax.legend(fontsize=4.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    cap = ("Beyond the paper: relative error of the limit sharpness predicted by the modified flows against GD+M "
           "(heavy ball from rest) on the two-factor toy, versus β at fixed ε (one panel per ε) and versus ε "
           "(last panel, fitted order ± s.e. of the log-log fit in the legend). flow (2) and flow (3) from x_0; "
           "flow (3) from the rest-offset start x_0 + Δ₂. No error bars: deterministic runs.")
    return save(fig, paths, caption=cap)
