"""Deep-network (CIFAR) stage: tidy the training runs, plot, tabulate, and check the
paper's three observations and the explicit IGR-M baseline with bootstrap CIs.

Uniform pipeline signatures (igrm.pipeline):

- tidy:   :func:`tidy_runs` ``(results) -> {"epochs": df, "finals": df}``
- plots:  :func:`plot_acc_vs_beta`, :func:`plot_acc_vs_lr`, :func:`plot_curves`,
          :func:`plot_spread`, :func:`plot_explicit`  ``(inputs, cfg, paths) -> None``
- table:  :func:`table_final` ``(inputs, cfg) -> {"cifar_final": (df, caption)}``
- claims: :func:`cifar_claims` ``(inputs, cfg) -> claims DataFrame``

``inputs`` maps "epochs" and "finals" to the frames :func:`tidy_runs` returns.
The cfg keys and the verdict rule are in :data:`DEFAULTS` and docs/cifar.md.

Verdict rule (fixed before any measurement): each claim is a signed statistic
(a least-squares slope, or a difference of means) whose paper-predicted sign is
positive. Its 95 % percentile bootstrap CI (seeds resampled with replacement
within each level: each h, each β, each method) decides: entirely above 0 →
reproduces; entirely below 0 → does not reproduce; otherwise (or too few seeds or
levels to bootstrap) → inconclusive. Diverged runs are kept in the tidy frames,
marked in every figure and counted in every claim's detail, but do not enter the
accuracy statistics (their final accuracy does not exist).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import claims as _claims
from .config import num, run_id as _run_id
from .figures.style import beta_color, figure, save

#: columns of the identifying part of every tidy row
ID_COLUMNS = ["run_id", "dataset", "model", "width", "method", "beta", "eta", "h", "mu", "batch_size", "seed"]
EPOCH_COLUMNS = ID_COLUMNS + ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "grad_norm_sq",
                              "wall_time", "status"]
FINAL_COLUMNS = ID_COLUMNS + ["epochs_run", "final_test_acc", "best_test_acc", "last_mean_test_acc",
                              "last_std_test_acc", "spread_window", "final_train_loss", "status",
                              "diverged_step", "total_wall_time"]
TABLE_COLUMNS = ["dataset", "model", "width", "method", "beta", "h", "eta", "batch_size", "n", "n_diverged",
                 "final_acc_mean", "final_acc_std", "best_acc_mean", "spread_mean", "spread_std"]

#: cfg of plots, table and claims (any key may be omitted)
DEFAULTS: dict[str, Any] = {
    "spread_window": None,    # None: use the window tidy_runs used; an int re-computes spread from "epochs"
    "eta": None,              # effective lr of the β sweeps (obs-2, obs-3, curves, explicit); None: every η
                              # with >= 2 β values (plots: the η with the most β values per setting)
    "dataset": None,          # restrict to one dataset (None: all)
    "model": None,            # restrict to one model (None: all)
    "bootstrap": 2000,        # bootstrap resamples (config: train.analysis.bootstrap)
    "bootstrap_seed": 0,      # bootstrap seed (config: train.analysis.bootstrap_seed)
    "ci": 0.95,               # two-sided CI level
    "min_seeds": 2,           # completed seeds needed at every level for a verdict (else inconclusive)
    "explicit_against": "auto",  # GD+M family for the explicit baseline: auto (gdm if present, else sgdm), gdm, sgdm
}

EXPECTED = "> 0 (95% bootstrap CI entirely above 0)"
TOLERANCE = "CI above 0: reproduces; below 0: does not; straddles 0 or too few seeds: inconclusive"
PAPER = "Ghosh et al. ICLR 2023, slides 'Some prevalent observations in deep learning'"


def _cfg(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:                # a key that would fall on the floor is an error, not a no-op
        raise TypeError(f"unknown analysis cfg key(s) {unknown}; known: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **cfg}


# =========================================================================== tidy
def _config_of(attrs: Mapping[str, Any]) -> dict:
    c = attrs.get("config", {})
    if isinstance(c, (bytes, str)):
        c = json.loads(c)
    return dict(c or {})


def _num_or_nan(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


#: igrm.train.DEFAULTS of the keys tidy reads (a run's stored config may omit defaults;
#: kept here so that tidying does not import torch; tests check they agree)
TRAIN_DEFAULTS = {"model": "resnet18", "width": 1.0, "method": "sgdm", "beta": 0.0, "lr": 0.1,
                  "lr_mode": "effective", "batch_size": 128, "seed": 0}


def _run_meta(attrs: Mapping[str, Any]) -> dict[str, Any]:
    c = {**TRAIN_DEFAULTS, **_config_of(attrs)}
    beta = float(c.get("beta", 0.0))
    lr = float(c["lr"])
    h_cfg = lr * (1 - beta) if c.get("lr_mode", "effective") == "effective" else lr
    h = _num_or_nan(attrs.get("h", h_cfg))
    eta = _num_or_nan(attrs.get("eta", h / (1 - beta)))
    mu = _num_or_nan(attrs.get("mu", beta * eta / (2 * (1 - beta))))
    meta = {
        "dataset": str(c.get("dataset", attrs.get("dataset", "unknown"))),
        "model": str(c.get("model", "resnet18")),
        "width": float(c.get("width", 1.0)),
        "method": str(c.get("method", "sgdm")),
        "beta": beta, "eta": eta, "h": h, "mu": mu,
        "batch_size": int(c.get("batch_size", 128)),
        "seed": int(attrs.get("seed", c.get("seed", 0))),
    }
    if "run_id" in attrs:
        meta["run_id"] = str(attrs["run_id"])
    else:
        meta["run_id"] = _run_id(dataset=meta["dataset"], model=meta["model"], w=meta["width"],
                                 method=meta["method"], beta=beta, eta=eta, bs=meta["batch_size"],
                                 seed=meta["seed"])
    meta["_cfg_hash"] = hashlib.sha1(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return meta


def _summary(test_acc: np.ndarray, completed: bool, window: int) -> dict[str, float]:
    """final / best / last-window mean and std (ddof=1) of a run's test accuracy."""
    acc = np.asarray(test_acc, dtype=np.float64)
    finite = acc[np.isfinite(acc)]
    best = float(finite.max()) if finite.size else math.nan
    if not completed or acc.size == 0:
        return {"final_test_acc": math.nan, "best_test_acc": best, "last_mean_test_acc": math.nan,
                "last_std_test_acc": math.nan, "spread_window": 0}
    n = min(int(window), acc.size)
    last = acc[-n:]
    return {"final_test_acc": float(acc[-1]), "best_test_acc": best, "last_mean_test_acc": float(np.mean(last)),
            "last_std_test_acc": float(np.std(last, ddof=1)) if n >= 2 else math.nan, "spread_window": n}


def tidy_runs(results: Sequence[tuple[Mapping[str, np.ndarray], Mapping[str, Any]]],
              spread_window: int = 5) -> dict[str, pd.DataFrame]:
    """Training-run results (as :func:`igrm.io.read_h5` returns them) -> tidy frames.

    ``epochs``: one row per (run, epoch), columns :data:`EPOCH_COLUMNS`.
    ``finals``: one row per run, columns :data:`FINAL_COLUMNS`: final and best test
    accuracy, mean and std (ddof 1) of test accuracy over the last
    ``min(spread_window, epochs)`` epochs (``spread_window`` column: the N used).
    A diverged run keeps all its rows with ``status == "diverged"``; its final and
    last-window statistics are NaN (the run has no final accuracy), its best
    accuracy is over the epochs it completed.
    """
    if int(spread_window) < 1:
        raise ValueError(f"spread_window must be >= 1, got {spread_window}")
    metas, epoch_frames, final_rows = [], [], []
    for arrays, attrs in results:
        metas.append(_run_meta(attrs))
    # ids must be unique: runs that differ only in keys not in the id get a config hash
    ids = pd.Series([m["run_id"] for m in metas])
    dup = ids.duplicated(keep=False)
    for m, d in zip(metas, dup):
        if d:
            m["run_id"] = f"{m['run_id']}_{m['_cfg_hash']}"
    ids = pd.Series([m["run_id"] for m in metas])
    if ids.duplicated().any():
        raise ValueError(f"the same run appears twice: {sorted(set(ids[ids.duplicated()]))}")

    for (arrays, attrs), m in zip(results, metas):
        status = str(attrs.get("status", "completed"))
        ident = {k: m[k] for k in ID_COLUMNS}
        n = len(np.asarray(arrays["test_acc"]))
        ep = pd.DataFrame({**{k: [v] * n for k, v in ident.items()},
                           "epoch": np.asarray(arrays.get("epoch", np.arange(1, n + 1)), dtype=np.int64),
                           **{k: np.asarray(arrays[k], dtype=np.float64) if k in arrays else np.full(n, np.nan)
                              for k in ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm_sq",
                                        "wall_time")},
                           "status": [status] * n})
        epoch_frames.append(ep)
        s = _summary(arrays["test_acc"], status == "completed", spread_window)
        tl = np.asarray(arrays.get("train_loss", [np.nan]), dtype=np.float64)
        wt = np.asarray(arrays.get("wall_time", [np.nan]), dtype=np.float64)
        final_rows.append({**ident, "epochs_run": n, **s,
                           "final_train_loss": float(tl[-1]) if tl.size else math.nan,
                           "status": status, "diverged_step": int(attrs.get("diverged_step", -1)),
                           "total_wall_time": float(np.nansum(wt))})
    epochs = (pd.concat(epoch_frames, ignore_index=True)[EPOCH_COLUMNS] if epoch_frames
              else pd.DataFrame(columns=EPOCH_COLUMNS))
    finals = pd.DataFrame(final_rows, columns=FINAL_COLUMNS)
    order = ["dataset", "model", "width", "method", "batch_size", "eta", "beta", "seed"]
    finals = finals.sort_values(order, kind="stable").reset_index(drop=True)
    epochs = epochs.sort_values(order + ["epoch"], kind="stable").reset_index(drop=True)
    return {"epochs": epochs, "finals": finals}


def _finals(inputs: Mapping[str, pd.DataFrame], c: Mapping[str, Any]) -> pd.DataFrame:
    """The finals frame, filtered by dataset/model; spread re-computed from ``epochs``
    when cfg's spread_window is set and differs from the one tidy used."""
    f = inputs["finals"].copy()
    w = c.get("spread_window")
    if w is not None and "epochs" in inputs and len(f):
        used = f.loc[f["status"] == "completed", "spread_window"]
        if not (len(used) and (used == np.minimum(int(w), f.loc[used.index, "epochs_run"])).all()):
            ep = inputs["epochs"]
            for i, r in f.iterrows():
                acc = ep.loc[ep["run_id"] == r["run_id"]].sort_values("epoch")["test_acc"].to_numpy()
                s = _summary(acc, r["status"] == "completed", int(w))
                for k in ("last_mean_test_acc", "last_std_test_acc", "spread_window"):
                    f.at[i, k] = s[k]
    return _filter(f, c)


def _filter(df: pd.DataFrame, c: Mapping[str, Any]) -> pd.DataFrame:
    for key in ("dataset", "model"):
        if c.get(key) is not None:
            df = df[df[key] == c[key]]
    return df


def _close(a, b) -> np.ndarray:
    return np.isclose(np.asarray(a, dtype=float), float(b), rtol=1e-9, atol=0.0)


SETTING = ["dataset", "model", "width", "batch_size"]


def setting_tag(model: str, width: float, batch_size: int) -> str:
    """'resnet18', 'resnet18_w0.25', 'resnet18_w0.25_bs64' (width 1 and batch 128 are the paper's)."""
    tag = str(model)
    if float(width) != 1.0:
        tag += f"_w{num(width)}"
    if int(batch_size) != 128:
        tag += f"_bs{int(batch_size)}"
    return tag


def _setting_label(key) -> str:
    ds, model, width, bs = key
    return f"{ds} {setting_tag(model, width, bs)}"


def _beta_sweep_etas(f: pd.DataFrame, c: Mapping[str, Any], method: str = "sgdm") -> list[float]:
    """η values at which ``method`` runs cover >= 2 values of β (or cfg's η)."""
    g = f[f["method"] == method]
    if c.get("eta") is not None:
        return [float(c["eta"])] if _close(g["eta"], c["eta"]).any() else []
    etas = sorted(set(np.round(g["eta"].to_numpy(dtype=float), 12)))
    return [e for e in etas if g.loc[_close(g["eta"], e), "beta"].nunique() >= 2]


def _plot_eta(f: pd.DataFrame, c: Mapping[str, Any], method: str = "sgdm") -> float | None:
    """cfg's η, else the η with the most β values (ties: the smallest η)."""
    etas = _beta_sweep_etas(f, c, method)
    if not etas:
        g = f[f["method"] == method]
        etas = sorted(set(np.round(g["eta"].to_numpy(dtype=float), 12)))
        if not etas:
            return None
    g = f[f["method"] == method]
    counts = [(-g.loc[_close(g["eta"], e), "beta"].nunique(), e) for e in etas]
    return min(counts)[1]


def _agg(df: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """mean, std (ddof 1), n over completed runs, n_diverged over all, per group."""
    rows = []
    for key, g in df.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        ok = g[(g["status"] == "completed") & np.isfinite(g[value].astype(float))]
        v = ok[value].to_numpy(dtype=float)
        rows.append({**dict(zip(by, key)), "mean": float(v.mean()) if v.size else math.nan,
                     "std": float(v.std(ddof=1)) if v.size >= 2 else math.nan, "n": int(v.size),
                     "n_diverged": int((g["status"] == "diverged").sum())})
    return pd.DataFrame(rows, columns=[*by, "mean", "std", "n", "n_diverged"])


def _n_text(n: pd.Series) -> str:
    lo, hi = int(n.min()), int(n.max())
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def _mark_diverged(ax, x, ndiv, ntot):
    """Mark levels with diverged runs at the bottom of the axes."""
    for xi, k, t in zip(x, ndiv, ntot):
        if k:
            ax.annotate(f"×{int(k)}/{int(t)} div.", xy=(xi, 0.02), xycoords=("data", "axes fraction"),
                        ha="center", fontsize=6, color="#d62728")
            ax.plot([xi], [0.0], marker="x", color="#d62728", transform=ax.get_xaxis_transform(),
                    clip_on=False, ls="none")


def _empty(ax, msg="no matching runs"):
    ax.text(0.5, 0.5, msg, ha="center", va="center", transform=ax.transAxes)


def _line_colors(i: int) -> str:
    return ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"][i % 7]


# =========================================================================== plots
def plot_acc_vs_beta(inputs: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any] | None, paths: Sequence) -> None:
    """Observation 3: final test accuracy vs β at a fixed effective lr η (SGD+M),
    one line per (dataset, model), mean ± std over seeds."""
    c = _cfg(cfg)
    f = _finals(inputs, c)
    f = f[f["method"] == "sgdm"]
    fig, axes = figure(1, 1, width=4.0, height=3.2)
    ax = axes[0, 0]
    etas_used, ns = [], []
    for i, (key, g) in enumerate(f.groupby(SETTING, sort=True)):
        eta = _plot_eta(g, c)
        if eta is None:
            continue
        g = g[_close(g["eta"], eta)]
        a = _agg(g, ["beta"], "final_test_acc")
        if not len(a):
            continue
        etas_used.append(eta)
        ns.append(a["n"])
        ax.errorbar(a["beta"], a["mean"], yerr=a["std"].fillna(0), marker="o", capsize=3, color=_line_colors(i),
                    label=f"{_setting_label(key)}, η={eta:g} ({_n_text(a['n'])})")
        _mark_diverged(ax, a["beta"], a["n_diverged"], a["n"] + a["n_diverged"])
    if not etas_used:
        _empty(ax)
    else:
        ax.legend(loc="best")
    ax.set_xlabel("momentum β")
    ax.set_ylabel("final test accuracy")
    eta_txt = ", ".join(f"{e:g}" for e in sorted(set(etas_used)))
    ax.set_title(f"Obs. 3: test accuracy vs β at fixed η = {eta_txt or '–'}")
    n_txt = _n_text(pd.concat(ns)) if ns else "n=0"
    save(fig, paths, caption=(f"Final test accuracy of SGD+M against momentum β at a fixed effective learning rate "
                              f"η = h/(1−β) = {eta_txt or '–'}; mean ± std over seeds ({n_txt} completed seeds per "
                              "point). Red crosses: levels with diverged runs (not in the mean). Paper: accuracy "
                              "rises with β."))


def plot_acc_vs_lr(inputs: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any] | None, paths: Sequence) -> None:
    """Observation 1: plain SGD (β = 0): final test accuracy vs step size h (log x)."""
    c = _cfg(cfg)
    f = _finals(inputs, c)
    f = f[(f["method"] == "sgdm") & (f["beta"] == 0.0)]
    fig, axes = figure(1, 1, width=4.0, height=3.2)
    ax = axes[0, 0]
    ns = []
    for i, (key, g) in enumerate(f.groupby(SETTING, sort=True)):
        a = _agg(g, ["h"], "final_test_acc")
        ns.append(a["n"])
        ax.errorbar(a["h"], a["mean"], yerr=a["std"].fillna(0), marker="o", capsize=3, color=_line_colors(i),
                    label=f"{_setting_label(key)} ({_n_text(a['n'])})")
        _mark_diverged(ax, a["h"], a["n_diverged"], a["n"] + a["n_diverged"])
    if ns:
        ax.set_xscale("log")
        ax.legend(loc="best")
    else:
        _empty(ax)
    ax.set_xlabel("learning rate h (β = 0)")
    ax.set_ylabel("final test accuracy")
    ax.set_title("Obs. 1: plain SGD, test accuracy vs h")
    n_txt = _n_text(pd.concat(ns)) if ns else "n=0"
    save(fig, paths, caption=("Final test accuracy of plain SGD (β = 0) against the learning rate h (log scale); "
                              f"mean ± std over seeds ({n_txt} completed seeds per point). Red crosses: diverged "
                              "runs (not in the mean). Paper: accuracy rises with h."))


def _settings_panels(f: pd.DataFrame):
    keys = [k for k, _ in f.groupby(SETTING, sort=True)]
    return keys


def plot_curves(inputs: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any] | None, paths: Sequence) -> None:
    """Test accuracy per epoch, one line per β (SGD+M at fixed η), mean over completed
    seeds with a ±1 std band; one panel per (dataset, model)."""
    c = _cfg(cfg)
    f = _finals(inputs, c)
    f = f[f["method"] == "sgdm"]
    ep = inputs["epochs"]
    keys = _settings_panels(f) or [None]
    fig, axes = figure(1, len(keys), width=3.8, height=3.2)
    for ax, key in zip(axes[0], keys):
        if key is None:
            _empty(ax)
            ax.set_title("test accuracy per epoch")
            ax.set_xlabel("epoch")
            ax.set_ylabel("test accuracy")
            continue
        g = f[np.logical_and.reduce([f[k] == v for k, v in zip(SETTING, key)])]
        eta = _plot_eta(g, c)
        g = g[_close(g["eta"], eta)]
        for beta, gb in g.groupby("beta", sort=True):
            done = gb[gb["status"] == "completed"]
            n_div = int((gb["status"] == "diverged").sum())
            e = ep[ep["run_id"].isin(done["run_id"])]
            if len(e):
                s = e.groupby("epoch")["test_acc"].agg(["mean", "std", "count"])
                col = beta_color(beta)
                ax.plot(s.index, s["mean"], color=col,
                        label=f"β={beta:g} (n={len(done)}" + (f", {n_div} diverged" if n_div else "") + ")")
                ax.fill_between(s.index, s["mean"] - s["std"].fillna(0), s["mean"] + s["std"].fillna(0),
                                color=col, alpha=0.2, lw=0)
            elif n_div:
                ax.plot([], [], color=beta_color(beta), ls=":", label=f"β={beta:g}: all {n_div} diverged")
        ax.set_title(f"{_setting_label(key)}, η={eta:g}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        ax.legend(loc="lower right")
    save(fig, paths, caption=("Test accuracy per epoch of SGD+M at a fixed effective learning rate η, one line per "
                              "momentum β: mean over completed seeds (n in the legend), band ±1 std over seeds. "
                              "Diverged runs are counted in the legend and left out of the mean."))


def plot_spread(inputs: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any] | None, paths: Sequence) -> None:
    """Observation 2: std of test accuracy over the last N epochs vs β (SGD+M, fixed η);
    mean ± std over seeds of the per-run spread."""
    c = _cfg(cfg)
    f = _finals(inputs, c)
    f = f[f["method"] == "sgdm"]
    fig, axes = figure(1, 1, width=4.0, height=3.2)
    ax = axes[0, 0]
    ns, windows, etas_used = [], set(), []
    for i, (key, g) in enumerate(f.groupby(SETTING, sort=True)):
        eta = _plot_eta(g, c)
        if eta is None:
            continue
        g = g[_close(g["eta"], eta)]
        a = _agg(g, ["beta"], "last_std_test_acc")
        if not len(a):
            continue
        etas_used.append(eta)
        windows |= set(g.loc[g["status"] == "completed", "spread_window"].astype(int))
        ns.append(a["n"])
        ax.errorbar(a["beta"], a["mean"], yerr=a["std"].fillna(0), marker="s", capsize=3, color=_line_colors(i),
                    label=f"{_setting_label(key)}, η={eta:g} ({_n_text(a['n'])})")
        _mark_diverged(ax, a["beta"], a["n_diverged"], a["n"] + a["n_diverged"])
    if ns:
        ax.legend(loc="best")
    else:
        _empty(ax)
    N = ", ".join(str(w) for w in sorted(windows)) or "–"
    ax.set_xlabel("momentum β")
    ax.set_ylabel(f"std of test accuracy, last {N} epochs")
    ax.set_title("Obs. 2: spread of test accuracy vs β")
    n_txt = _n_text(pd.concat(ns)) if ns else "n=0"
    save(fig, paths, caption=(f"Spread of test accuracy across epochs: per run, the std (ddof 1) of test accuracy "
                              f"over its last N = {N} epochs; mean ± std of that spread over seeds ({n_txt}), "
                              "SGD+M at a fixed effective learning rate η. Paper: spread falls as β rises."))


def _explicit_groups(f: pd.DataFrame, c: Mapping[str, Any]):
    """Per (setting, η, β_emulated): explicit runs, GD+M runs (same β, η), plain runs (β=0, same η)."""
    ex = f[f["method"] == "igrm_explicit"]
    out = []
    for key, g in ex.groupby(SETTING + ["eta", "beta"], sort=True):
        if c.get("eta") is not None and not _close([key[4]], c["eta"])[0]:
            continue
        same = f[np.logical_and.reduce([f[k] == v for k, v in zip(SETTING, key[:4])]) & _close(f["eta"], key[4])]
        fam = c.get("explicit_against", "auto")
        if fam == "auto":
            fam = "gdm" if (same["method"] == "gdm").any() else "sgdm"
        mom = same[(same["method"] == fam) & _close(same["beta"], key[5])]
        plain = same[(same["method"] == fam) & (same["beta"] == 0.0)]
        out.append((key, fam, g, mom, plain))
    return out


def plot_explicit(inputs: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any] | None, paths: Sequence) -> None:
    """Explicit IGR-M baseline vs GD+M (same β) vs plain GD (β = 0), all at the same η:
    test accuracy curves (left) and final accuracy bars (right), mean ± std over seeds."""
    c = _cfg(cfg)
    f = _finals(inputs, c)
    ep = inputs["epochs"]
    groups = _explicit_groups(f, c)
    fig, axes = figure(1, 2, width=3.8, height=3.2)
    ax_c, ax_b = axes[0]
    labels, means, stds, colors, ns_all = [], [], [], [], []
    styles = {"explicit": "-", "momentum": "--", "plain": ":"}
    for key, fam, g_ex, g_mom, g_plain in groups:
        ds, model, width, bs, eta, beta = key
        mom_name = "GD+M" if fam == "gdm" else "SGD+M"
        plain_name = "GD" if fam == "gdm" else "SGD"
        for kind, g, name, b in (("plain", g_plain, plain_name, 0.0), ("momentum", g_mom, mom_name, beta),
                                 ("explicit", g_ex, "explicit IGR-M", beta)):
            done = g[g["status"] == "completed"]
            n_div = int((g["status"] == "diverged").sum())
            label = f"{name} β={b:g}" if kind != "explicit" else f"{name} (β={beta:g})"
            if kind == "plain" and label in labels:
                continue
            col = beta_color(b) if kind != "explicit" else "#9467bd"
            e = ep[ep["run_id"].isin(done["run_id"])]
            if len(e):
                s = e.groupby("epoch")["test_acc"].agg(["mean", "std"])
                ax_c.plot(s.index, s["mean"], color=col, ls=styles[kind],
                          label=f"{label} (n={len(done)}" + (f", {n_div} div." if n_div else "") + ")")
                ax_c.fill_between(s.index, s["mean"] - s["std"].fillna(0), s["mean"] + s["std"].fillna(0),
                                  color=col, alpha=0.15, lw=0)
            v = done["final_test_acc"].to_numpy(dtype=float)
            labels.append(label)
            means.append(float(v.mean()) if v.size else math.nan)
            stds.append(float(v.std(ddof=1)) if v.size >= 2 else 0.0)
            colors.append(col)
            ns_all.append(f"n={v.size}" + (f"\n{n_div} div." if n_div else ""))
    if labels:
        x = np.arange(len(labels))
        ax_b.bar(x, np.nan_to_num(means), yerr=stds, color=colors, capsize=3, alpha=0.8)
        for xi, m, t in zip(x, means, ns_all):
            ax_b.annotate(t, xy=(xi, 0.02), xycoords=("data", "axes fraction"), ha="center", fontsize=6)
        ax_b.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
        ax_c.legend(loc="lower right", fontsize=6)
        etas = sorted({k[0][4] for k in groups})
        title_eta = ", ".join(f"{e:g}" for e in etas)
        setting = "; ".join(sorted({_setting_label(k[0][:4]) for k in groups}))
    else:
        _empty(ax_c, "no explicit IGR-M runs")
        _empty(ax_b, "no explicit IGR-M runs")
        title_eta, setting = "–", ""
    ax_c.set_xlabel("epoch")
    ax_c.set_ylabel("test accuracy")
    ax_c.set_title(f"{setting} η={title_eta}".strip())
    ax_b.set_ylabel("final test accuracy")
    ax_b.set_title("final accuracy, mean ± std over seeds")
    save(fig, paths, caption=("Explicit IGR-M baseline (plain GD/SGD at η on E + μ‖∇E‖², μ = βη/(2(1−β))) against "
                              "heavy-ball GD+M/SGD+M with the same β and plain GD/SGD (β = 0), all at the same "
                              f"effective learning rate η = {title_eta}. Left: test accuracy per epoch, mean over "
                              "completed seeds ± 1 std. Right: final test accuracy, mean ± std over seeds (n under "
                              "each bar; diverged runs counted, not averaged)."))


# =========================================================================== table
TABLE_CAPTION = ("Final test accuracy per (dataset, model, method, β, h, η): mean and std (ddof 1) over completed "
                 "seeds (n), diverged runs counted separately (n_diverged); best_acc_mean = mean over seeds of the "
                 "best epoch's test accuracy; spread = std of test accuracy over the last N epochs of a run, "
                 "mean and std over seeds.")


def table_final(inputs: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any] | None) -> dict:
    c = _cfg(cfg)
    f = _finals(inputs, c)
    by = ["dataset", "model", "width", "method", "beta", "h", "eta", "batch_size"]
    rows = []
    for key, g in f.groupby(by, sort=True):
        ok = g[g["status"] == "completed"]
        acc = ok["final_test_acc"].to_numpy(dtype=float)
        best = ok["best_test_acc"].to_numpy(dtype=float)
        spr = ok["last_std_test_acc"].to_numpy(dtype=float)
        spr = spr[np.isfinite(spr)]

        def sd(v):
            return float(np.std(v, ddof=1)) if v.size >= 2 else math.nan

        rows.append({**dict(zip(by, key)), "n": int(len(ok)), "n_diverged": int((g["status"] == "diverged").sum()),
                     "final_acc_mean": float(acc.mean()) if acc.size else math.nan, "final_acc_std": sd(acc),
                     "best_acc_mean": float(best.mean()) if best.size else math.nan,
                     "spread_mean": float(spr.mean()) if spr.size else math.nan, "spread_std": sd(spr)})
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return {"cifar_final": (df, TABLE_CAPTION)}


# =========================================================================== statistics
def ols_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of y on x; y may be (B, N) (one slope per row)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    xc = x - x.mean()
    return (y - y.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)


def bootstrap_levels(levels: Sequence[np.ndarray], stat: Callable[[list[np.ndarray]], np.ndarray],
                     n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap distribution of ``stat``: each level's values (its seeds) are
    resampled with replacement, independently per level. ``stat`` gets a list of
    (B, n_level) arrays and returns (B,)."""
    rng = np.random.default_rng(seed)
    res = [np.asarray(v, dtype=float)[rng.integers(0, len(v), size=(n_boot, len(v)))] for v in levels]
    return np.asarray(stat(res), dtype=float)


def slope_bootstrap(x_levels: Sequence[float], y_levels: Sequence[np.ndarray], n_boot: int, seed: int):
    """OLS slope of y on x over every (level, seed) point, and its bootstrap draws."""
    xs = np.concatenate([np.full(len(v), x) for x, v in zip(x_levels, y_levels)])

    def stat(res):
        return ols_slope(xs, np.concatenate(res, axis=1))

    point = float(ols_slope(xs, np.concatenate([np.asarray(v, float) for v in y_levels])))
    return point, bootstrap_levels(y_levels, stat, n_boot, seed)


def ci_verdict(lo: float, hi: float) -> str:
    """The fixed verdict rule (paper's side = positive)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _claims.INCONCLUSIVE
    if lo > 0:
        return _claims.REPRODUCES
    if hi < 0:
        return _claims.FAILS
    return _claims.INCONCLUSIVE


def _ci(draws: np.ndarray, level: float) -> tuple[float, float]:
    a = (1 - level) / 2
    return float(np.quantile(draws, a)), float(np.quantile(draws, 1 - a))


def _levels(g: pd.DataFrame, by: str, value: str):
    """(x levels, completed finite values per level, seeds per level, diverged per level)."""
    xs, ys, ndiv = [], [], []
    for x, gx in g.groupby(by, sort=True):
        ok = gx[(gx["status"] == "completed")]
        v = ok[value].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        xs.append(float(x))
        ys.append(v)
        ndiv.append(int((gx["status"] == "diverged").sum()))
    return xs, ys, ndiv


def _slope_row(cid, claim, source, xs, ys, ndiv, c, unit, xfmt, transform=None) -> dict:
    n_div = sum(ndiv)
    counts = ", ".join(f"{xfmt(x)}: n={len(v)}" + (f" (+{d} div.)" if d else "") for x, v, d in zip(xs, ys, ndiv))
    keep = [(x, v) for x, v in zip(xs, ys) if len(v)]
    n_min = min((len(v) for _, v in keep), default=0)
    if len(keep) < 2 or n_min < int(c["min_seeds"]):
        why = (f"needs >= 2 levels with completed runs and >= {c['min_seeds']} completed seeds at each; "
               f"have {counts or 'none'}")
        return _claims.row(cid, claim, source, EXPECTED, math.nan, TOLERANCE, _claims.INCONCLUSIVE, detail=why)
    kx = [transform(x) if transform else x for x, _ in keep]
    point, draws = slope_bootstrap(kx, [v for _, v in keep], int(c["bootstrap"]), int(c["bootstrap_seed"]))
    lo, hi = _ci(draws, float(c["ci"]))
    from scipy.stats import spearmanr

    allx = np.concatenate([np.full(len(v), x) for x, v in keep])
    ally = np.concatenate([v for _, v in keep])
    rho = float(spearmanr(allx, ally).statistic) if np.ptp(ally) > 0 else math.nan
    means = ", ".join(f"{xfmt(x)}: {np.mean(v):.4f}" for x, v in keep)
    detail = (f"OLS slope {point:.4g} {unit}, {int(c['ci'] * 100)}% bootstrap CI [{lo:.4g}, {hi:.4g}] "
              f"({int(c['bootstrap'])} resamples of seeds within each level, seed {int(c['bootstrap_seed'])}); "
              f"Spearman ρ {rho:.3f}; means {means}; seeds {counts}"
              + (f"; {n_div} diverged runs excluded" if n_div else ""))
    return _claims.row(cid, claim, source, EXPECTED, point, TOLERANCE, ci_verdict(lo, hi),
                       uncertainty=(hi - lo) / 2, detail=detail)


def cifar_claims(inputs: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any] | None) -> pd.DataFrame:
    """Claims rows (igrm.claims.COLUMNS) per setting (dataset, model[, width, batch]):

    - ``cifar/obs1_acc_rises_with_h/<ds>/<tag>``: slope of final test accuracy of plain
      SGD (β = 0) against log10 h (accuracy per decade of h).
    - ``cifar/obs2_spread_falls_with_beta/<ds>/<tag>/eta<η>``: slope of −(std of test
      accuracy over the last N epochs) against β at fixed η (positive = spread falls).
    - ``cifar/obs3_acc_rises_with_beta/<ds>/<tag>/eta<η>``: slope of final test
      accuracy against β at fixed η (SGD+M).
    - ``cifar/explicit_ge_gd/<ds>/<tag>/eta<η>_beta<β>``: mean final accuracy of the
      explicit IGR-M baseline minus that of plain GD/SGD (β = 0) at the same η.

    The verdict of each row follows :func:`ci_verdict` (module docstring).
    """
    c = _cfg(cfg)
    f = _finals(inputs, c)
    rows: list[dict] = []
    for key, g in f.groupby(SETTING, sort=True):
        ds, model, width, bs = key
        tag = f"{ds}/{setting_tag(model, width, bs)}"
        where = f"{ds}, {setting_tag(model, width, bs)}"
        # ---- obs 1
        g0 = g[(g["method"] == "sgdm") & (g["beta"] == 0.0)]
        if len(g0):
            xs, ys, nd = _levels(g0, "h", "final_test_acc")
            rows.append(_slope_row(
                f"cifar/obs1_acc_rises_with_h/{tag}",
                f"plain SGD (β=0): final test accuracy rises with the learning rate h ({where})",
                PAPER + ", observation 1", xs, ys, nd, c, "accuracy per decade of h", lambda x: f"h={x:g}",
                transform=math.log10))
        # ---- obs 2 and 3, per η with a β sweep
        sg = g[g["method"] == "sgdm"]
        for eta in _beta_sweep_etas(sg, c):
            ge = sg[_close(sg["eta"], eta)]
            xs, ys, nd = _levels(ge, "beta", "last_std_test_acc")
            wins = sorted(set(ge.loc[ge["status"] == "completed", "spread_window"].astype(int)))
            r = _slope_row(
                f"cifar/obs2_spread_falls_with_beta/{tag}/eta{num(eta)}",
                f"SGD+M: the spread (std over the last N={','.join(map(str, wins))} epochs) of test accuracy "
                f"falls as β rises, η={eta:g} ({where}); measured: slope of −spread vs β",
                PAPER + ", observation 2", xs, [-v for v in ys], nd, c, "(−std of accuracy) per unit β",
                lambda x: f"β={x:g}")
            rows.append(r)
            xs, ys, nd = _levels(ge, "beta", "final_test_acc")
            rows.append(_slope_row(
                f"cifar/obs3_acc_rises_with_beta/{tag}/eta{num(eta)}",
                f"SGD+M: final test accuracy rises with β at fixed effective learning rate η={eta:g} ({where})",
                PAPER + ", observation 3", xs, ys, nd, c, "accuracy per unit β", lambda x: f"β={x:g}"))
    # ---- explicit baseline vs plain GD
    for key, fam, g_ex, g_mom, g_plain in _explicit_groups(f, c):
        ds, model, width, bs, eta, beta = key
        cid = f"cifar/explicit_ge_gd/{ds}/{setting_tag(model, width, bs)}/eta{num(eta)}_beta{num(beta)}"
        plain_name = "GD" if fam == "gdm" else "SGD"
        claim = (f"explicit IGR-M baseline (β={beta:g}) reaches at least plain {plain_name}'s final test accuracy "
                 f"at the same η={eta:g} ({ds}, {setting_tag(model, width, bs)})")
        src = "docs/theory.md (T29)–(T30), (T42); Ghosh et al. ICLR 2023"
        ve = g_ex.loc[g_ex["status"] == "completed", "final_test_acc"].to_numpy(dtype=float)
        vp = g_plain.loc[g_plain["status"] == "completed", "final_test_acc"].to_numpy(dtype=float)
        ve, vp = ve[np.isfinite(ve)], vp[np.isfinite(vp)]
        d_ex = int((g_ex["status"] == "diverged").sum())
        d_pl = int((g_plain["status"] == "diverged").sum())
        counts = (f"explicit n={len(ve)}" + (f" (+{d_ex} div.)" if d_ex else "")
                  + f", plain {plain_name} n={len(vp)}" + (f" (+{d_pl} div.)" if d_pl else ""))
        if min(len(ve), len(vp)) < int(c["min_seeds"]):
            rows.append(_claims.row(cid, claim, src, EXPECTED, math.nan, TOLERANCE, _claims.INCONCLUSIVE,
                                    detail=f"needs >= {c['min_seeds']} completed seeds of each; have {counts}"))
            continue
        point = float(ve.mean() - vp.mean())
        draws = bootstrap_levels([ve, vp], lambda r: r[0].mean(axis=1) - r[1].mean(axis=1),
                                 int(c["bootstrap"]), int(c["bootstrap_seed"]))
        lo, hi = _ci(draws, float(c["ci"]))
        vm = g_mom.loc[g_mom["status"] == "completed", "final_test_acc"].to_numpy(dtype=float)
        mom_txt = (f"; heavy-ball {'GD+M' if fam == 'gdm' else 'SGD+M'} β={beta:g}: {np.nanmean(vm):.4f} (n={len(vm)})"
                   if len(vm) else "")
        rows.append(_claims.row(
            cid, claim, src, EXPECTED, point, TOLERANCE, ci_verdict(lo, hi), uncertainty=(hi - lo) / 2,
            detail=(f"mean difference {point:.4g} (explicit {ve.mean():.4f} − plain {vp.mean():.4f}), "
                    f"{int(c['ci'] * 100)}% bootstrap CI [{lo:.4g}, {hi:.4g}] ({int(c['bootstrap'])} resamples, seeds "
                    f"resampled within each method, seed {int(c['bootstrap_seed'])}); {counts}{mom_txt}; "
                    "'≥' is tested as CI above 0 (equality cannot be shown)")))
    return _claims.frame(rows)
