"""Figures of the CIFAR stage (results/figures/<name>.{pdf,png}), one function each
(captions: report/<name>.rst): observation 1 (:func:`plot_acc_vs_lr`), observation 2
(:func:`plot_spread`), observation 3 (:func:`plot_acc_vs_beta`), the test-accuracy curves
(:func:`plot_curves`) and the explicit IGR-M baseline (:func:`plot_explicit`).

Each takes the tidy frames of igrm.tidy.runs (``epochs``, ``finals``) and the keys of the config's ``train.analysis`` it uses (keyword-only, no
defaults; ``eta``: the β-sweeps' effective learning rate, None = the η with the most β
values; ``dataset``/``model``: None = all) and returns the Figure (the script saves it).
Diverged runs are marked, never averaged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..stats import mean_halfwidth
from ..tidy.runs import SETTING, beta_sweep_etas, close, explicit_groups, select_finals
from ..validity import epsilon_bound, expansion_parameters
from .style import ACCURACY, NONNEGATIVE, beta_color, clip_note, figure, in_range, legend_below, yerr_in_range

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion_mnist": "Fashion-MNIST"}
MODEL_NAMES = {"resnet18": "ResNet-18", "small_cnn": "small CNN"}


def setting_label(key) -> str:
    """'Fashion-MNIST, ResNet-18 ×0.125' of a (dataset, model, width, batch_size) key (the
    batch size only where it is not the paper's 128)."""
    ds, model, width, bs = key
    text = f"{DATASET_NAMES.get(ds, ds)}, {MODEL_NAMES.get(model, model)}"
    if width is not None and float(width) != 1.0:
        text += f" ×{float(width):g}"
    if bs is not None and int(bs) != 128:
        text += f", batch {int(bs)}"
    return text


def plot_eta(f: pd.DataFrame, *, eta: float | None, method: str = "sgdm") -> float | None:
    """``eta`` (if given and present), else the η with the most β values (ties: the smallest η)."""
    etas = beta_sweep_etas(f, eta=eta, method=method)
    if not etas:
        g = f[f["method"] == method]
        etas = sorted(set(np.round(g["eta"].to_numpy(dtype=float), 12)))
        if not etas:
            return None
    g = f[f["method"] == method]
    counts = [(-g.loc[close(g["eta"], e), "beta"].nunique(), e) for e in etas]
    return min(counts)[1]


def _agg(df: pd.DataFrame, by: Sequence[str], value: str, ci: float) -> pd.DataFrame:
    """mean, std (ddof 1), the ``ci`` t-interval half-width of the mean (t_{n−1}; the
    claims' intervals are t-intervals over seeds too, docs/theory.md (T47)–(T48)), n over
    completed runs, n_diverged over all, per group."""
    rows = []
    for key, g in df.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        ok = g[(g["status"] == "completed") & np.isfinite(g[value].astype(float))]
        v = ok[value].to_numpy(dtype=float)
        rows.append(
            {
                **dict(zip(by, key)),
                "mean": float(v.mean()) if v.size else math.nan,
                "std": float(v.std(ddof=1)) if v.size >= 2 else math.nan,
                "ci": mean_halfwidth(v.std(ddof=1), v.size, ci) if v.size >= 2 else math.nan,
                "n": int(v.size),
                "n_diverged": int((g["status"] == "diverged").sum()),
            }
        )
    return pd.DataFrame(rows, columns=[*by, "mean", "std", "ci", "n", "n_diverged"])


def _n_text(n: pd.Series) -> str:
    lo, hi = int(n.min()), int(n.max())
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def _mark_diverged(ax, x, ndiv, ntot):
    """Mark levels with diverged runs at the bottom of the axes."""
    for xi, k, t in zip(x, ndiv, ntot):
        if k:
            ax.annotate(
                f"×{int(k)}/{int(t)} div.",
                xy=(xi, 0.02),
                xycoords=("data", "axes fraction"),
                ha="center",
                fontsize=6,
                color="#d62728",
            )
            ax.plot(
                [xi], [0.0], marker="x", color="#d62728", transform=ax.get_xaxis_transform(), clip_on=False, ls="none"
            )


def empty_panel(ax, msg="no matching runs"):
    ax.text(0.5, 0.5, msg, ha="center", va="center", transform=ax.transAxes)


def _line_colors(i: int) -> str:
    return ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"][i % 7]


def _plot_beta_sweeps(ax, f: pd.DataFrame, *, eta: float | None, value: str, marker: str, ci: float, bounds):
    """One line per setting: mean ± its ``ci`` t-interval over seeds of ``value`` against β of the SGD+M runs at
    the setting's plotted η (the interval clipped to the quantity's ``bounds``), diverged levels
    marked. Returns (etas plotted, seed counts per line, spread windows used, intervals clipped)."""
    etas_used, ns, windows, clipped = [], [], set(), 0
    for i, (key, g) in enumerate(f[f["method"] == "sgdm"].groupby(SETTING, sort=True)):
        eta_k = plot_eta(g, eta=eta)
        if eta_k is None:
            continue
        g = g[close(g["eta"], eta_k)]
        a = _agg(g, ["beta"], value, ci)
        if not len(a):
            continue
        etas_used.append(eta_k)
        windows |= set(g.loc[g["status"] == "completed", "spread_window"].astype(int))
        ns.append(a["n"])
        yerr, cut = yerr_in_range(a["mean"], a["ci"], bounds)
        clipped += cut
        ax.errorbar(
            a["beta"],
            a["mean"],
            yerr=yerr,
            marker=marker,
            capsize=3,
            color=_line_colors(i),
            label=f"{setting_label(key)}, η={eta_k:g} ({_n_text(a['n'])})",
        )
        _mark_diverged(ax, a["beta"], a["n_diverged"], a["n"] + a["n_diverged"])
    return etas_used, ns, windows, clipped


# =========================================================================== figures
def plot_acc_vs_beta(
    *,
    epochs: pd.DataFrame,
    finals: pd.DataFrame,
    spread_window: int | None,
    eta: float | None,
    dataset: str | None,
    model: str | None,
    ci: float,
) -> Figure:
    """Observation 3: final test accuracy vs β at a fixed effective lr η (SGD+M),
    one line per (dataset, model), mean ± its ``ci`` t-interval over seeds."""
    f = select_finals(finals=finals, epochs=epochs, spread_window=spread_window, dataset=dataset, model=model)
    fig, axes = figure(1, 1, width=4.0, height=3.2)
    ax = axes[0, 0]
    etas_used, ns, _, cut = _plot_beta_sweeps(
        ax, f, eta=eta, value="final_test_acc", marker="o", ci=ci, bounds=ACCURACY
    )
    if not etas_used:
        empty_panel(ax)
    else:
        legend_below(fig, axes, ncol=1)
    ax.set_xlabel("momentum β")
    ax.set_ylabel("final test accuracy")
    eta_txt = ", ".join(f"{e:g}" for e in sorted(set(etas_used)))
    ax.set_title(f"Obs. 3: test accuracy vs β at fixed η = {eta_txt or '–'}{clip_note(cut, ACCURACY)}")
    return fig


def plot_acc_vs_lr(
    *,
    epochs: pd.DataFrame,
    finals: pd.DataFrame,
    spread_window: int | None,
    dataset: str | None,
    model: str | None,
    ci: float,
) -> Figure:
    """Observation 1: plain SGD (β = 0): final test accuracy vs step size h (log x)."""
    f = select_finals(finals=finals, epochs=epochs, spread_window=spread_window, dataset=dataset, model=model)
    f = f[(f["method"] == "sgdm") & (f["beta"] == 0.0)]
    fig, axes = figure(1, 1, width=4.0, height=3.2)
    ax = axes[0, 0]
    ns, hs, cut = [], set(), 0
    for i, (key, g) in enumerate(f.groupby(SETTING, sort=True)):
        a = _agg(g, ["h"], "final_test_acc", ci)
        ns.append(a["n"])
        hs |= set(a["h"])
        yerr, k = yerr_in_range(a["mean"], a["ci"], ACCURACY)
        cut += k
        ax.errorbar(
            a["h"],
            a["mean"],
            yerr=yerr,
            marker="o",
            capsize=3,
            color=_line_colors(i),
            label=f"{setting_label(key)} ({_n_text(a['n'])})",
        )
        _mark_diverged(ax, a["h"], a["n_diverged"], a["n"] + a["n_diverged"])
    if ns:
        from matplotlib.ticker import NullFormatter

        # ticks at the grid's h values only: the log axis's own minor labels overlapped
        ax.set_xscale("log")
        ax.set_xticks(sorted(hs), [f"{h:g}" for h in sorted(hs)])
        ax.xaxis.set_minor_formatter(NullFormatter())
        legend_below(fig, axes, ncol=1)
    else:
        empty_panel(ax)
    ax.set_xlabel("learning rate h (β = 0)")
    ax.set_ylabel("final test accuracy")
    ax.set_title("Obs. 1: plain SGD, test accuracy vs h" + clip_note(cut, ACCURACY))
    return fig


def _settings_panels(f: pd.DataFrame):
    keys = [k for k, _ in f.groupby(SETTING, sort=True)]
    return keys


def plot_curves(
    *,
    epochs: pd.DataFrame,
    finals: pd.DataFrame,
    spread_window: int | None,
    eta: float | None,
    dataset: str | None,
    model: str | None,
    ci: float,
) -> Figure:
    """Test accuracy per epoch, one line per β (SGD+M at fixed η), mean over completed
    seeds with its ``ci`` t-interval band; one panel per (dataset, model)."""
    f = select_finals(finals=finals, epochs=epochs, spread_window=spread_window, dataset=dataset, model=model)
    f = f[f["method"] == "sgdm"]
    ep = epochs
    keys = _settings_panels(f) or [None]
    fig, axes = figure(1, len(keys), width=3.8, height=3.2)
    for ax, key in zip(axes[0], keys):
        if key is None:
            empty_panel(ax)
            ax.set_title("test accuracy per epoch")
            ax.set_xlabel("epoch")
            ax.set_ylabel("test accuracy")
            continue
        g = f[np.logical_and.reduce([f[k] == v for k, v in zip(SETTING, key)])]
        eta_k = plot_eta(g, eta=eta)
        g = g[close(g["eta"], eta_k)]
        cut = 0
        for beta, gb in g.groupby("beta", sort=True):
            done = gb[gb["status"] == "completed"]
            n_div = int((gb["status"] == "diverged").sum())
            e = ep[ep["run_id"].isin(done["run_id"])]
            if len(e):
                s = e.groupby("epoch")["test_acc"].agg(["mean", "std", "count"])
                half = np.nan_to_num(mean_halfwidth(s["std"], s["count"], ci))
                col = beta_color(beta)
                ax.plot(
                    s.index,
                    s["mean"],
                    color=col,
                    label=f"β={beta:g} (n={len(done)}" + (f", {n_div} diverged" if n_div else "") + ")",
                )
                lo, hi, k = in_range(s["mean"], half, ACCURACY)
                cut += k
                ax.fill_between(s.index, lo, hi, color=col, alpha=0.2, lw=0)
            elif n_div:
                ax.plot([], [], color=beta_color(beta), ls=":", label=f"β={beta:g}: all {n_div} diverged")
        ax.set_title(f"{setting_label(key)}, η={eta_k:g}" + ("\n(bands clipped to [0, 1])" if cut else ""))
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
    n_labels = sum(len(ax.get_legend_handles_labels()[1]) for ax in axes[0])
    legend_below(fig, axes, ncol=max(1, min(4, 2 * len(keys), n_labels)))
    return fig


def plot_spread(
    *,
    epochs: pd.DataFrame,
    finals: pd.DataFrame,
    spread_window: int | None,
    eta: float | None,
    dataset: str | None,
    model: str | None,
    ci: float,
    plateau_max_rise: float,
) -> Figure:
    """Observation 2: detrended spread of test accuracy over the last N epochs vs β (SGD+M,
    fixed η; igrm.tidy.runs.plateau): mean ± its ``ci`` t-interval over the runs the claim
    judges (on a plateau: |rise| ≤ ``plateau_max_rise``; the interval clipped at 0, an SD),
    and every completed run as a point: filled if judged, hollow if still rising (left out)."""
    f = select_finals(finals=finals, epochs=epochs, spread_window=spread_window, dataset=dataset, model=model)
    done = f["status"] == "completed"
    judged = done & (f["plateau_rise"].abs() <= float(plateau_max_rise))
    fig, axes = figure(1, 1, width=4.0, height=3.4)
    ax = axes[0, 0]
    etas, ns, windows, cut = _plot_beta_sweeps(
        ax, f[judged | ~done], eta=eta, value="plateau_spread", marker="s", ci=ci, bounds=NONNEGATIVE
    )
    sg = done & (f["method"] == "sgdm")
    drawn = _spread_runs(ax, f[sg], judged[sg], etas or ([eta] if eta else []), plateau_max_rise)
    if ns or drawn:
        legend_below(fig, axes, ncol=1)
    if not ns:
        empty_panel(ax, "no run on a plateau: nothing judged" if drawn else "no matching runs")
    N = ", ".join(str(w) for w in sorted(windows)) or "–"
    ax.set_xlabel("momentum β")
    ax.set_ylabel("detrended SD of test accuracy")
    ax.set_title(f"Obs. 2: spread vs β, last {N} epochs" + clip_note(cut, NONNEGATIVE), fontsize=9)
    return fig


def _spread_runs(ax, runs: pd.DataFrame, judged: pd.Series, etas, plateau_max_rise: float) -> bool:
    """Each completed SGD+M run at the plotted η (all of them when none is plotted) as a point
    beside its level: filled if the claim judges it (on a plateau), hollow if it was left out
    (still rising, or too few epochs for the plateau test). True if any was drawn."""
    if not len(runs):
        return False
    at = np.logical_or.reduce([close(runs["eta"], e) for e in etas]) if etas else np.ones(len(runs), bool)
    drawn = False
    for ok, style in (
        (True, dict(mfc="#555555", label="runs judged (on a plateau)")),
        (False, dict(mfc="none", label=f"runs not judged (rise > {plateau_max_rise:g}, or < 3 epochs)")),
    ):
        r = runs[at & (judged == ok).to_numpy()]
        r = r[np.isfinite(r["plateau_spread"].astype(float))]
        if len(r):
            ax.plot(r["beta"] + 0.012, r["plateau_spread"], ls="none", marker="o", ms=3.5, color="#555555", **style)
            drawn = True
    return drawn


def plot_explicit(
    *,
    epochs: pd.DataFrame,
    finals: pd.DataFrame,
    spread_window: int | None,
    eta: float | None,
    dataset: str | None,
    model: str | None,
    explicit_against: str,
    ci: float,
) -> Figure:
    """Explicit IGR-M baseline vs GD+M (same β) vs plain GD (β = 0), all at the same η:
    test accuracy curves (left), final accuracy bars (middle), mean ± its ``ci`` t-interval over seeds, and
    the expansion parameter ε = h|λ_max|/(1−β)² of each run at its measured points (right,
    docs/theory.md (T61)) against the real-root bound 1/(1+√β)² ((T51))."""
    f = select_finals(finals=finals, epochs=epochs, spread_window=spread_window, dataset=dataset, model=model)
    groups = explicit_groups(f, eta=eta, explicit_against=explicit_against)
    fig, axes = figure(1, 3, width=3.8, height=3.2)
    ax_c, ax_b, ax_e = axes[0]
    bars, eps_drawn, bounds = _explicit_curves(ax_c, ax_e, groups, epochs, ci)
    if bars:
        _explicit_bars(ax_b, bars)
        title_eta = ", ".join(f"{e:g}" for e in sorted({k[0][4] for k in groups}))
        setting = "; ".join(sorted({setting_label(k[0][:4]) for k in groups}))
    else:
        empty_panel(ax_c, "no explicit IGR-M runs")
        empty_panel(ax_b, "no explicit IGR-M runs")
        title_eta, setting = "–", ""
    ax_c.set_xlabel("epoch")
    ax_c.set_ylabel("test accuracy")
    ax_c.set_title(f"{setting}, η = {title_eta}" if setting else f"η = {title_eta}")
    ax_b.set_xlabel("method")
    ax_b.set_ylabel("final test accuracy")
    ax_b.set_title(f"final accuracy, mean ± {100 * ci:g}% t-CI")
    if eps_drawn:
        for b in sorted(bounds):
            ax_e.axhline(
                epsilon_bound(beta=b, max_epsilon=math.inf), color="k", ls="-.", lw=0.8, label=f"1/(1+√β)², β={b:g}"
            )
        ax_e.set_yscale("log")
    else:
        empty_panel(ax_e, "sharpness not measured")
    ax_e.set_xlabel("epoch (full batch: step)")
    ax_e.set_ylabel("ε = h|λ_max|/(1−β)²")
    ax_e.set_title("expansion parameter along the run")
    legend_below(fig, axes, ncol=3)
    return fig


EXPLICIT_STYLES = {"explicit": "-", "momentum": "--", "plain": ":"}


def _explicit_curves(ax_c, ax_e, groups, ep: pd.DataFrame, ci: float):
    """Per group, the plain, heavy-ball and explicit runs: their test-accuracy curves (``ax_c``)
    and ε along the runs (``ax_e``). Returns (one bar per method: label, mean, half-width,
    colour, n text), whether any ε was drawn, the βs of the ε bounds)."""
    eps_drawn, bounds, bars = False, set(), []
    for key, fam, g_ex, g_mom, g_plain in groups:
        beta = key[5]
        mom_name = "GD+M" if fam == "gdm" else "SGD+M"
        plain_name = "GD" if fam == "gdm" else "SGD"
        for kind, g, name, b in (
            ("plain", g_plain, plain_name, 0.0),
            ("momentum", g_mom, mom_name, beta),
            ("explicit", g_ex, "explicit IGR-M", beta),
        ):
            done = g[g["status"] == "completed"]
            n_div = int((g["status"] == "diverged").sum())
            label = f"{name} β={b:g}" if kind != "explicit" else f"{name} (β={beta:g})"
            if kind == "plain" and label in [bar[0] for bar in bars]:
                continue
            col = beta_color(b) if kind != "explicit" else "#9467bd"
            e = ep[ep["run_id"].isin(done["run_id"])].dropna(subset=["test_acc"])  # evaluated steps only
            if len(e):
                s = e.groupby("epoch")["test_acc"].agg(["mean", "std", "count"])
                half = np.nan_to_num(mean_halfwidth(s["std"], s["count"], ci))
                ax_c.plot(
                    s.index,
                    s["mean"],
                    color=col,
                    ls=EXPLICIT_STYLES[kind],
                    label=f"{label} (n={len(done)}" + (f", {n_div} div." if n_div else "") + ")",
                )
                lo, hi, _ = in_range(s["mean"], half, ACCURACY)
                ax_c.fill_between(s.index, lo, hi, color=col, alpha=0.15, lw=0)
            eps_drawn |= _plot_epsilon(ax_e, g, ep, col, EXPLICIT_STYLES[kind], label)
            if kind != "plain":
                bounds.add(beta)
            v = done["final_test_acc"].to_numpy(dtype=float)
            bars.append(
                (
                    label,
                    float(v.mean()) if v.size else math.nan,
                    mean_halfwidth(v.std(ddof=1), v.size, ci) if v.size >= 2 else 0.0,
                    col,
                    f"n={v.size}" + (f"\n{n_div} div." if n_div else ""),
                )
            )
    return bars, eps_drawn, bounds


def _explicit_bars(ax_b, bars) -> None:
    """Final test accuracy per method: bars with their t-interval, n under each."""
    labels, means, halfs, colors, ns = zip(*bars)
    x = np.arange(len(labels))
    ax_b.set_axisbelow(True)  # grid lines behind the bars
    yerr, _ = yerr_in_range(means, halfs, ACCURACY)
    ax_b.bar(x, np.nan_to_num(means), yerr=yerr, color=list(colors), capsize=3, alpha=0.8)
    for xi, t in zip(x, ns):
        ax_b.annotate(t, xy=(xi, 0.02), xycoords=("data", "axes fraction"), ha="center", fontsize=6)
    # two lines a label, upright: rotated labels' boxes overlapped
    ax_b.set_xticks(x, [lab.replace(" β", "\nβ").replace(" (β", "\n(β") for lab in labels], fontsize=7)


def _plot_epsilon(ax, g: pd.DataFrame, ep: pd.DataFrame, col, ls, label) -> bool:
    """ε at the measured points of each run of ``g`` (init from ``sharpness_init``, the rest
    from the epochs' ``epsilon``); True if anything was drawn."""
    drawn = False
    for i, (_, r) in enumerate(g.sort_values("seed").iterrows()):
        pts = float(r["sharpness_points"])
        if not (math.isfinite(pts) and pts > 0):
            continue
        e = ep[(ep["run_id"] == r["run_id"]) & ep["epsilon"].notna()].sort_values("epoch")
        xs, ys = list(e["epoch"]), list(e["epsilon"])
        if math.isfinite(r["sharpness_init"]):
            e0 = expansion_parameters(lam=r["sharpness_init"], h=r["h"], beta=r["beta"])["epsilon"]
            xs, ys = [0, *xs], [e0, *ys]
        if not xs:
            continue
        filled = bool(r["sharpness_converged"])
        ax.plot(
            xs, ys, color=col, ls=ls, marker="o", ms=3, mfc=col if filled else "none", label=label if i == 0 else None
        )
        drawn = True
    return drawn
