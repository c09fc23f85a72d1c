"""Figures of the any-order study (docs/modified_flows.md §8): GD+M against its order-R modified
flows (R = 1…5) and their ablations, heavy ball against GD on its order-R modified loss, and
the limit sharpness per order, drawn from the tidy table of family ``order_r``
(:mod:`igrm.tidy.orders`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..orders import flow_labels, gd_label
from .orders import ERROR_LABEL, end_labels, log_ticks, problem_beta_panels, slope_lookup
from .style import figure, legend_below

#: one colour per order R (the ablation of order R: the same colour, dashed)
R_COLORS = {1: "#7f7f7f", 2: "#1f77b4", 3: "#2ca02c", 4: "#ff7f0e", 5: "#d62728"}
PROBLEM_NAMES = {"two_factor": "two-factor toy", "sigmoid": "sigmoid toy", "lstsq": "least squares"}
PROBLEM_ORDER = ("two_factor", "sigmoid", "lstsq")
FLOOR_COLOR = "0.82"
LIMIT_LABEL = "limit-sharpness error\n" r"$|S_{flow}/S_{GD+M} - 1|$"


def _orders(d: pd.DataFrame) -> list[int]:
    """The orders R present in a table of order_r / gd_loss / limit_slow rows (from the flow names)."""
    return sorted({int(f.split("-")[1].split(" ")[0]) for f in d["flow"]})


def _problems(d: pd.DataFrame) -> list[str]:
    present = set(d["problem"])
    return [p for p in PROBLEM_ORDER if p in present] + sorted(present - set(PROBLEM_ORDER))


def _shade_floor(ax, x, floor, errors) -> float:
    """Shade the band below the reference floor (the largest of the lines' reference errors at
    each x) down to the panel's bottom, behind the lines (call it after them: it sets the y
    range); returns the smallest ratio of an error to its own line's reference error at its x,
    the ratio the claim rows judge (a line whose float64 reference floors it has a longdouble
    one, far under the band: docs/modified_flows.md (M25)); NaN: no floor."""
    x = np.asarray(x, dtype=np.float64)
    own = np.asarray(floor, dtype=np.float64)
    f = pd.Series(own, index=x)
    f = f[np.isfinite(f) & (f > 0)].groupby(level=0).max().sort_index()
    if f.empty:
        return math.nan
    e = np.asarray(errors, dtype=np.float64)
    ratio = np.where(np.isfinite(own) & (own > 0), e / np.where(own > 0, own, 1.0), np.nan)
    bottom = min(float(f.min()), float(np.nanmin(e[e > 0]))) / 10.0
    ax.fill_between(
        f.index,
        bottom,
        f.to_numpy(),
        color=FLOOR_COLOR,
        lw=0,
        zorder=0,
        label="reference floor (largest of the lines' gaps to a looser rerun)",
    )
    ax.set_ylim(bottom, ax.get_ylim()[1])
    return float(np.nanmin(ratio)) if np.isfinite(ratio).any() else math.nan


def _lines(ax, d, prob, beta, comp, flow_of, fits, x="h"):
    """One line per (R, flow) of ``flow_of(R)`` ((flow, linestyle, marker, label, end text) tuples);
    returns the (y_end, text, colour) end labels."""
    ends = []
    for R in _orders(d):
        for flow, ls, mk, label, tag in flow_of(R):
            g = d[d["flow"] == flow].sort_values(x)
            if g.empty:
                continue
            s, _ = fits.get((prob, float(beta), comp, flow, "all"), (math.nan, math.nan))
            col = R_COLORS.get(R, "k")
            ax.loglog(g[x], g["error"], ls=ls, marker=mk, ms=3, lw=1.0 if ls == "-" else 0.9, color=col, label=label)
            ends.append((float(g["error"].iloc[-1]), tag.format(s=s), col))
    return ends


def _flow_and_ablation(R: int):
    flow, ablated = flow_labels(R)
    out = [(flow, "-", "o", f"order-{R} flow (expected order {R})", "{s:.2f}")]
    if R > 1:
        out.append((ablated, "--", "x", f"order-{R} flow without its new term (expected {R - 1})", "({s:.2f})"))
    return out


def _gd_on_loss(R: int):
    return [(gd_label(R), "-", "s", f"GD with step h on the order-{R} modified loss (expected order {R})", "{s:.2f}")]


def _error_vs_h_grid(df, slopes, comp, flow_of, title):
    """A panel per (problem, β) of the ``comp`` rows: log-log error vs h, a line per flow of
    ``flow_of``, fitted orders at the line ends, the reference floor shaded."""
    d = df[df["comparison"] == comp]
    problems, betas = _problems(d), sorted(d["beta"].unique())
    # one column: wider, so that the figure's legend below it fits
    fig, axes = figure(max(len(problems), 1), max(len(betas), 1), width=3.4 if len(betas) > 1 else 5.2, height=3.2)
    fits = slope_lookup(slopes)
    for ax, prob, beta, g in problem_beta_panels(axes, d, problems, betas):
        ends = _lines(ax, g, prob, beta, comp, flow_of, fits)
        ratio = _shade_floor(ax, g["h"], g["reference_error"], g["error"])
        r = f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2g}"
        floor = f"\nevery error ≥ {r}× its own reference floor" if math.isfinite(ratio) else ""
        ax.set_title(f"{PROBLEM_NAMES.get(prob, prob)}, β = {beta:g}{floor}", fontsize=8)
        ax.set_xlabel("step size h")
        ax.set_ylabel(ERROR_LABEL)
        log_ticks(ax, g["h"])
        end_labels(ax, ends, fontsize=6)
    legend_below(fig, axes, ncol=1 if len(betas) < 2 else 2, fontsize=7.5, title=title)
    return fig


def plot_orders_any_order(df: pd.DataFrame, slopes: pd.DataFrame | None):
    """Log-log global error of GD+M (started on its slow manifold to matching order) against
    its order-R flows, R = 1…5 (solid), and their ablations without the new term (dashed), vs
    h; a panel per (problem, β); the reference floor shaded, its margin in the title."""
    return _error_vs_h_grid(
        df,
        slopes,
        "order_r",
        _flow_and_ablation,
        "colour: order R; number at each line's end: fitted order\n(in parentheses: the ablation's)",
    )


def plot_orders_any_order_loss(df: pd.DataFrame, slopes: pd.DataFrame | None):
    """Log-log distance max_k ‖x_k − y_k‖ between heavy ball and GD on its order-R modified
    loss (same step h, same start), R = 1…5, vs h; a panel per (problem, β)."""
    return _error_vs_h_grid(
        df, slopes, "gd_loss", _gd_on_loss, "colour: order R; number at each line's end: fitted order"
    )


def _with_order(g: pd.DataFrame) -> pd.DataFrame:
    return g.assign(R=[int(f.split("-")[1].split(" ")[0]) for f in g["flow"]])


def _gains(g: pd.DataFrame) -> pd.DataFrame:
    """Per (ε, R ≥ 2): the gain δ_{R−1}/δ_R of one more order, where δ_R is above its reference
    floor (below it the ratio measures the reference, not the flow)."""
    t = _with_order(g)
    err = t.pivot_table(index="eps", columns="R", values="error")
    ref = t.pivot_table(index="eps", columns="R", values="reference_error")
    rows = [
        (e, R, err.at[e, R - 1] / err.at[e, R])
        for R in err.columns
        if R - 1 in err.columns
        for e in err.index
        if err.at[e, R] > ref.at[e, R]
    ]
    return pd.DataFrame(rows, columns=["eps", "R", "gain"])


def _split(g: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the fitted grid's rows, the range-of-validity rows beyond it) of one β (tidy windows
    "all" and "range", docs/modified_flows.md (M27))."""
    fit = g[g["window"] == "all"]
    return fit, g[(g["window"] == "range") & ~g["eps"].isin(fit["eps"])]


def _limit_panel(ax, g, beta, fits, range_tol) -> None:
    """Limit-sharpness error vs ε, a line per order R on the fitted grid (fitted orders at the
    ends), continued dashed with hollow markers over the range grid beyond it; floor shaded."""
    fit, rng = _split(g)
    ends = _lines(
        ax,
        fit,
        g["problem"].iloc[0],
        beta,
        "limit_slow",
        lambda R: [(f"order-{R} flow", "-", "o", f"order-{R} flow", "{s:.2f}")],
        fits,
        x="eps",
    )
    last = {}
    for R in _orders(rng) if len(rng) else []:
        flow = f"order-{R} flow"
        r = pd.concat(
            [fit[fit["flow"] == flow].sort_values("eps").tail(1), rng[rng["flow"] == flow].sort_values("eps")]
        )
        ax.loglog(r["eps"], r["error"], ls="--", lw=0.8, marker="o", ms=3.5, mfc="none", color=R_COLORS.get(R, "k"))
        last[R] = float(r["error"].iloc[-1])
    if last:  # one legend entry for the range points (the colours are the orders')
        ax.plot([], [], ls="--", marker="o", mfc="none", color="k", label="beyond the fitted grid (not fitted)")
    # each fitted order is labelled at its line's visible end
    ends = [(last.get(R, y), t, c) for R, (y, t, c) in zip(_orders(fit), ends)]
    if range_tol is not None and len(rng):
        ax.axhline(range_tol, color="k", ls="-.", lw=0.7, label=f"declared accuracy δ = {range_tol:g} (M27)")
    _shade_floor(ax, g["eps"], g["reference_error"], g["error"])
    ax.set_title(f"two-factor toy, β = {beta:g}", fontsize=8)
    ax.set_xlabel("ε = h L0/(1−β)²")
    ax.set_ylabel(LIMIT_LABEL)
    log_ticks(ax, g["eps"])
    end_labels(ax, ends, fontsize=6)


def _gain_panel(ax, g, beta) -> None:
    """The gain of each added order vs ε (hollow beyond the fitted grid); circled where it is
    ≤ 1 (the ladder stops)."""
    fit, rng = _split(g)
    gains = _gains(pd.concat([fit, rng]))
    beyond = gains["eps"] > (fit["eps"].max() if len(fit) else -np.inf)
    for R, gg in gains.groupby("R"):
        col = R_COLORS.get(R, "k")
        ax.loglog(gg["eps"], gg["gain"], marker="o", ms=3, color=col, label=f"order-{R} flow")
        out = gg[beyond[gg.index]]
        ax.plot(out["eps"], out["gain"], ls="none", marker="o", ms=3.5, mfc="white", mec=col)
    ax.axhline(1.0, color="k", ls=":", lw=0.8, label="gain 1: one more order does not help")
    stop = gains[gains["gain"] <= 1.0]
    if len(stop):
        ax.plot(
            stop["eps"],
            stop["gain"],
            ls="none",
            marker="o",
            ms=8,
            mfc="none",
            mec="k",
            mew=0.8,
            label="order R no better than R − 1 (the ladder stops)",
        )
    ax.set_title(f"gain of one more order, β = {beta:g}", fontsize=8)
    ax.set_xlabel("ε = h L0/(1−β)²")
    ax.set_ylabel("gain of order R over R − 1\n" r"$\delta_{R-1}/\delta_R$")
    log_ticks(ax, g["eps"])


def plot_orders_any_order_limits(df: pd.DataFrame, slopes: pd.DataFrame | None, range_tol: float | None = None):
    """What the orders buy (docs/modified_flows.md §8.6), a column per β. Top: relative limit-
    sharpness error δ_R = |S_R/S_GD+M − 1| of the order-R flows against GD+M vs ε (log-log), a
    line per R with its fitted order at its end, continued (dashed, hollow markers) over the
    range-of-validity grid beyond the fitted one with the declared accuracy ``range_tol``
    dash-dotted (M27); the reference floor (M26) shaded. Bottom: the gain δ_{R−1}/δ_R of each
    added order vs ε, circled where it is ≤ 1 (the ladder stops)."""
    d = df[df["comparison"] == "limit_slow"]
    betas = sorted(d["beta"].unique())
    n = max(len(betas), 1)
    # fewer than three columns: wider ones, so that the figure's legend below them fits
    fig, axes = figure(2, n, width=3.2 if n > 2 else 5.0, height=3.0)
    fits = slope_lookup(slopes)
    for k, beta in enumerate(betas):
        g = d[d["beta"] == beta]
        _limit_panel(axes[0, k], g, beta, fits, range_tol)
        _gain_panel(axes[1, k], g, beta)
    legend_below(
        fig,
        axes,
        ncol=min(3, n + 1),
        fontsize=7.5,
        title="colour: order R; number at each line's end: fitted order in h at fixed β",
    )
    return fig
