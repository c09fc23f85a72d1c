"""Training runs (igrm.train results) as tidy tables, the selections the CIFAR figures
and claims share, and the paper's final-accuracy table.

- :func:`tidy_runs`: result files -> ``epochs`` (one row per run and epoch),
  ``finals`` (one row per run) and ``sharpness`` (one row per run and measured point:
  λ_max, tr H, ‖∇E‖²), results/tidy/cifar_<grid>_{epochs,finals,sharpness}.csv;
- :func:`concat_finals`: the finals of several grids, each run once;
- :func:`select_finals`: finals restricted to one dataset/model, with the spread over
  another window re-computed from ``epochs``;
- :func:`beta_sweep_etas`, :func:`explicit_groups`: which runs a β-sweep or an explicit
  baseline comparison is made of;
- :func:`table_final`: results/tables/cifar_final.* (caption: report/cifar_final.rst).

Diverged runs are kept in the tidy frames (``status == "diverged"``); they have no final
accuracy, so they are counted, never averaged (docs/cifar.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..pipeline.config import num
from ..pipeline.config import run_id as _run_id

#: columns of the identifying part of every tidy row
ID_COLUMNS = ["run_id", "dataset", "model", "width", "method", "beta", "eta", "h", "mu", "batch_size", "seed"]
EPOCH_COLUMNS = ID_COLUMNS + [
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "grad_norm_sq",
    "wall_time",
    "lambda_max",
    "epsilon",
    "status",
]
#: a run's sharpness along it (igrm.train arrays sharpness/*; docs/training.md, "Sharpness
#: along a run"): signed λ_max at the initialisation and at the last measured point, the
#: largest |λ_max| over the measured points with the expansion parameters there (docs/theory.md
#: (T61)-(T62)), how many points, and whether every one converged
SHARPNESS_COLUMNS = [
    "sharpness_points",
    "sharpness_init",
    "sharpness_last",
    "sharpness_max",
    "sharpness_converged",
    "epsilon_max",
    "penalty_curvature_max",
    "stability_max",
]
#: the measurement at the run's last epoch (NaN where it was not measured there, e.g. a
#: diverged run): λ_max (a lower bound unless converged), Hutchinson's tr H ± se, ‖∇E‖² on
#: the measured examples, ε there (docs/theory.md (T60), (T61), (T64), (T65))
FINAL_SHARPNESS_COLUMNS = [
    "final_lambda_max",
    "final_converged",
    "final_residual",
    "final_trace",
    "final_trace_se",
    "final_grad_norm_sq",
    "final_epsilon",
]
#: one row per (run, measured point) (igrm.train arrays sharpness/*; h_point: the raw step in
#: effect at the point, schedule applied, h of ID_COLUMNS the run's base step)
POINT_COLUMNS = ID_COLUMNS + [
    "epoch",
    "lambda_max",
    "converged",
    "residual",
    "lambda_min",
    "lambda_min_residual",
    "spectral_radius",
    "iters",
    "trace",
    "trace_se",
    "trace_probes",
    "grad_norm_sq",
    "loss",
    "h_point",
    "epsilon",
    "penalty_curvature",
    "status",
]
FINAL_COLUMNS = (
    ID_COLUMNS
    + [
        "epochs_run",
        "final_test_acc",
        "best_test_acc",
        "last_mean_test_acc",
        "last_std_test_acc",
        "spread_window",
        "plateau_spread",
        "plateau_rise",
        "final_train_loss",
        "status",
        "diverged_step",
        "total_wall_time",
    ]
    + SHARPNESS_COLUMNS
    + FINAL_SHARPNESS_COLUMNS
)
TABLE_COLUMNS = [
    "dataset",
    "model",
    "width",
    "method",
    "beta",
    "h",
    "eta",
    "batch_size",
    "n",
    "n_diverged",
    "final_acc_mean",
    "final_acc_std",
    "best_acc_mean",
    "spread_mean",
    "spread_std",
]

#: the columns that say which setting (panel / claim group) a run belongs to
SETTING = ["dataset", "model", "width", "batch_size"]


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


#: the keys of a run's stored config (igrm.train cfg) that tidying reads
RUN_KEYS = ("model", "width", "method", "beta", "lr", "lr_mode", "batch_size", "seed")


def _run_meta(attrs: Mapping[str, Any]) -> dict[str, Any]:
    c = _config_of(attrs)
    missing = [k for k in RUN_KEYS if k not in c]
    if missing:  # igrm.train stores its complete cfg: a result without these is not one of its runs
        raise KeyError(f"training result's config lacks {missing} (igrm.train stores every key)")
    beta = float(c["beta"])
    lr = float(c["lr"])
    h_cfg = lr * (1 - beta) if c["lr_mode"] == "effective" else lr
    h = _num_or_nan(attrs.get("h", h_cfg))
    eta = _num_or_nan(attrs.get("eta", h / (1 - beta)))
    mu = _num_or_nan(attrs.get("mu", beta * eta / (2 * (1 - beta))))
    meta = {
        "dataset": str(c.get("dataset", attrs.get("dataset", "unknown"))),
        "model": str(c["model"]),
        "width": float(c["width"]),
        "method": str(c["method"]),
        "beta": beta,
        "eta": eta,
        "h": h,
        "mu": mu,
        "batch_size": int(c["batch_size"]),
        "seed": int(attrs.get("seed", c["seed"])),
    }
    if "run_id" in attrs:
        meta["run_id"] = str(attrs["run_id"])
    else:
        meta["run_id"] = _run_id(
            dataset=meta["dataset"],
            model=meta["model"],
            w=meta["width"],
            method=meta["method"],
            beta=beta,
            eta=eta,
            bs=meta["batch_size"],
            seed=meta["seed"],
        )
    meta["_cfg_hash"] = hashlib.sha1(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return meta


def plateau(values: np.ndarray) -> tuple[float, float]:
    """(spread, rise) of a window of per-epoch values (docs/cifar.md, "`plot_spread` — observation 2", and the obs-2 claims row):
    least-squares line through the window; spread = SD of the residuals (ddof 2, the line's
    two parameters), rise = the line's change across the window (slope × (n − 1)).
    NaN below 3 values."""
    y = np.asarray(values, dtype=np.float64)
    n = y.size
    if n < 3 or not np.all(np.isfinite(y)):
        return math.nan, math.nan
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2
    slope = float(x @ (y - y.mean()) / (x @ x))
    resid = y - y.mean() - slope * x
    return float(np.sqrt(resid @ resid / (n - 2))), slope * (n - 1)


def _summary(test_acc: np.ndarray, completed: bool, window: int) -> dict[str, float]:
    """final / best / last-window mean and std (ddof=1) of a run's test accuracy, and its
    detrended spread and rise over that window (:func:`plateau`)."""
    acc = np.asarray(test_acc, dtype=np.float64)
    finite = acc[np.isfinite(acc)]
    best = float(finite.max()) if finite.size else math.nan
    if not completed or finite.size == 0:
        return {
            "final_test_acc": math.nan,
            "best_test_acc": best,
            "last_mean_test_acc": math.nan,
            "last_std_test_acc": math.nan,
            "spread_window": 0,
            "plateau_spread": math.nan,
            "plateau_rise": math.nan,
        }
    acc = finite  # a completed run's NaNs are steps not evaluated (train.explicit.eval_every)
    n = min(int(window), acc.size)
    last = acc[-n:]
    spread, rise = plateau(last)
    return {
        "final_test_acc": float(acc[-1]),
        "best_test_acc": best,
        "last_mean_test_acc": float(np.mean(last)),
        "last_std_test_acc": float(np.std(last, ddof=1)) if n >= 2 else math.nan,
        "spread_window": n,
        "plateau_spread": spread,
        "plateau_rise": rise,
    }


def _sharpness(arrays: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], pd.DataFrame]:
    """(the run's :data:`SHARPNESS_COLUMNS`, its measured points: epoch, lambda_max, epsilon).
    A result without sharpness arrays (measurement off) has 0 points and NaN values."""
    ep = np.asarray(arrays.get("sharpness/epoch", []), dtype=np.int64)
    pts = pd.DataFrame(
        {
            "epoch": ep,
            **{
                k: np.asarray(arrays.get(f"sharpness/{k}", np.full(len(ep), np.nan)), dtype=np.float64)
                for k in (
                    "lambda_max",
                    "epsilon",
                    "penalty_curvature",
                    "stability",
                    "residual",
                    "lambda_min",
                    "lambda_min_residual",
                    "spectral_radius",
                    "iters",
                    "h",
                    "trace",
                    "trace_se",
                    "trace_probes",
                    "grad_norm_sq",
                    "loss",
                )
            },
            "converged": np.asarray(arrays.get("sharpness/converged", np.zeros(len(ep))), dtype=bool),
        }
    )
    if not len(pts):
        return (
            {
                "sharpness_points": 0,
                "sharpness_converged": False,
                **{k: math.nan for k in SHARPNESS_COLUMNS if k not in ("sharpness_points", "sharpness_converged")},
            },
            pts,
        )
    # the spectral radius (both ends); results from before it was recorded: |λ_max| (dominant)
    rad = pts["spectral_radius"].to_numpy()
    lam = np.where(np.isfinite(rad), rad, np.abs(pts["lambda_max"].to_numpy()))
    i = int(np.nanargmax(lam)) if np.isfinite(lam).any() else 0
    init = pts.loc[pts["epoch"] == 0, "lambda_max"]
    return (
        {
            "sharpness_points": int(len(pts)),
            "sharpness_init": float(init.iloc[0]) if len(init) else math.nan,
            "sharpness_last": float(pts["lambda_max"].iloc[-1]),
            "sharpness_max": float(lam[i]),
            "sharpness_converged": bool(pts["converged"].all()),
            # each parameter's own maximum (with a schedule h varies, so they need not share a point)
            "epsilon_max": float(pts["epsilon"].max()),
            "penalty_curvature_max": float(pts["penalty_curvature"].max()),
            "stability_max": float(pts["stability"].max()),
        },
        pts,
    )


def tidy_runs(
    results: Sequence[tuple[Mapping[str, np.ndarray], Mapping[str, Any]]], *, spread_window: int
) -> dict[str, pd.DataFrame]:
    """Training-run results (as :func:`igrm.pipeline.io.read_h5` returns them) -> tidy frames.

    ``epochs``: one row per (run, epoch), columns :data:`EPOCH_COLUMNS`.
    ``finals``: one row per run, columns :data:`FINAL_COLUMNS`: final and best test
    accuracy, mean and std (ddof 1) of test accuracy over the last
    ``min(spread_window, epochs)`` epochs (``spread_window`` column: the N used), and the
    run's sharpness (:data:`SHARPNESS_COLUMNS`; in ``epochs``: ``lambda_max`` and
    ``epsilon`` at the measured epochs, NaN at the others; the initialisation's value is
    ``sharpness_init`` of ``finals``), and the measurement at its last epoch
    (:data:`FINAL_SHARPNESS_COLUMNS`; NaN for a diverged run).
    ``sharpness``: one row per (run, measured point), columns :data:`POINT_COLUMNS`.
    A diverged run keeps all its rows with ``status == "diverged"``; its final and
    last-window statistics are NaN (the run has no final accuracy), its best
    accuracy is over the epochs it completed.
    """
    if int(spread_window) < 1:
        raise ValueError(f"spread_window must be >= 1, got {spread_window}")
    metas = unique_run_ids([_run_meta(attrs) for _, attrs in results])
    epoch_frames, final_rows, point_frames = [], [], []
    for (arrays, attrs), m in zip(results, metas):
        ep, final, pts = _run_tables(arrays, attrs, m, spread_window)
        epoch_frames.append(ep)
        final_rows.append(final)
        point_frames.append(pts)
    epochs = (
        pd.concat(epoch_frames, ignore_index=True)[EPOCH_COLUMNS]
        if epoch_frames
        else pd.DataFrame(columns=EPOCH_COLUMNS)
    )
    finals = pd.DataFrame(final_rows, columns=FINAL_COLUMNS)
    order = ["dataset", "model", "width", "method", "batch_size", "eta", "beta", "seed"]
    finals = finals.sort_values(order, kind="stable").reset_index(drop=True)
    epochs = epochs.sort_values(order + ["epoch"], kind="stable").reset_index(drop=True)
    points = [p for p in point_frames if len(p)]
    sharpness = pd.concat(points, ignore_index=True)[POINT_COLUMNS] if points else pd.DataFrame(columns=POINT_COLUMNS)
    sharpness = sharpness.sort_values(order + ["epoch"], kind="stable").reset_index(drop=True)
    return {"epochs": epochs, "finals": finals, "sharpness": sharpness}


def unique_run_ids(metas: list[dict]) -> list[dict]:
    """The runs' metadata with unique ids: runs that differ only in keys not in the id get a
    config hash; the same run twice is an error."""
    ids = pd.Series([m["run_id"] for m in metas])
    dup = ids.duplicated(keep=False)
    for m, d in zip(metas, dup):
        if d:
            m["run_id"] = f"{m['run_id']}_{m['_cfg_hash']}"
    ids = pd.Series([m["run_id"] for m in metas])
    if ids.duplicated().any():
        raise ValueError(f"the same run appears twice: {sorted(set(ids[ids.duplicated()]))}")
    return metas


def _final_sharpness(pts: pd.DataFrame, n: int, status: str) -> dict[str, Any]:
    """:data:`FINAL_SHARPNESS_COLUMNS` of a run: its point at the last epoch (NaN if none)."""
    last = pts[pts["epoch"] == n] if status == "completed" else pts.iloc[0:0]
    fin = {k: math.nan for k in FINAL_SHARPNESS_COLUMNS}
    fin["final_converged"] = False
    if len(last):
        p = last.iloc[-1]
        fin = {
            "final_lambda_max": float(p["lambda_max"]),
            "final_converged": bool(p["converged"]),
            "final_residual": float(p["residual"]),
            "final_trace": float(p["trace"]),
            "final_trace_se": float(p["trace_se"]),
            "final_grad_norm_sq": float(p["grad_norm_sq"]),
            "final_epsilon": float(p["epsilon"]),
        }
    return fin


def _run_tables(arrays, attrs, m: dict, spread_window: int) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """One run's epoch rows, final row and sharpness points."""
    status = str(attrs.get("status", "completed"))
    ident = {k: m[k] for k in ID_COLUMNS}
    n = len(np.asarray(arrays["test_acc"]))
    ep = pd.DataFrame(
        {
            **{k: [v] * n for k, v in ident.items()},
            "epoch": np.asarray(arrays.get("epoch", np.arange(1, n + 1)), dtype=np.int64),
            **{
                k: np.asarray(arrays[k], dtype=np.float64) if k in arrays else np.full(n, np.nan)
                for k in ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm_sq", "wall_time")
            },
            "status": [status] * n,
        }
    )
    sharp, pts = _sharpness(arrays)
    points = pd.DataFrame(
        {
            **{k: [v] * len(pts) for k, v in ident.items()},
            **pts.rename(columns={"h": "h_point"}).to_dict("list"),
            "status": [status] * len(pts),
        },
        columns=POINT_COLUMNS,
    )
    fin = _final_sharpness(pts, n, status)
    at = pts.set_index("epoch")
    for k in ("lambda_max", "epsilon"):
        ep[k] = ep["epoch"].map(at[k]).astype(np.float64) if len(at) else np.nan
    s = _summary(arrays["test_acc"], status == "completed", spread_window)
    tl = np.asarray(arrays.get("train_loss", [np.nan]), dtype=np.float64)
    wt = np.asarray(arrays.get("wall_time", [np.nan]), dtype=np.float64)
    final = {
        **ident,
        "epochs_run": n,
        **s,
        "final_train_loss": float(tl[-1]) if tl.size else math.nan,
        "status": status,
        "diverged_step": int(attrs.get("diverged_step", -1)),
        "total_wall_time": float(np.nansum(wt)),
        **sharp,
        **fin,
    }
    return ep, final, points


def concat_finals(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """The finals of several grids in one frame, each run once (grids share runs)."""
    frames = [f for f in frames if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return df.drop_duplicates(subset=["run_id"]).reset_index(drop=True)


def concat_points(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """The sharpness points of several grids in one frame, each (run, epoch) once (grids share runs)."""
    frames = [f for f in frames if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return df.drop_duplicates(subset=["run_id", "epoch"]).reset_index(drop=True) if len(df) else df


# =========================================================================== selections
def select_finals(
    *,
    finals: pd.DataFrame,
    epochs: pd.DataFrame | None,
    spread_window: int | None,
    dataset: str | None,
    model: str | None,
) -> pd.DataFrame:
    """The finals of one ``dataset`` and ``model`` (None: all); the spread re-computed from
    ``epochs`` over ``spread_window`` epochs when that differs from the window tidy used
    (None, or no ``epochs``: as tidied)."""
    f = finals.copy()
    w = spread_window
    if w is not None and epochs is not None and len(f):
        used = f.loc[f["status"] == "completed", "spread_window"]
        if not (len(used) and (used == np.minimum(int(w), f.loc[used.index, "epochs_run"])).all()):
            for i, r in f.iterrows():
                acc = epochs.loc[epochs["run_id"] == r["run_id"]].sort_values("epoch")["test_acc"].to_numpy()
                s = _summary(acc, r["status"] == "completed", int(w))
                for k in ("last_mean_test_acc", "last_std_test_acc", "spread_window", "plateau_spread", "plateau_rise"):
                    f.at[i, k] = s[k]
    for key, value in (("dataset", dataset), ("model", model)):
        if value is not None:
            f = f[f[key] == value]
    return f


def close(a, b) -> np.ndarray:
    """Elementwise a == b for floats read back from CSV (relative 1e-9)."""
    return np.isclose(np.asarray(a, dtype=float), float(b), rtol=1e-9, atol=0.0)


def setting_tag(model: str, width: float, batch_size: int) -> str:
    """'resnet18', 'resnet18_w0.25', 'resnet18_w0.25_bs64' (width 1 and batch 128 are the paper's)."""
    tag = str(model)
    if float(width) != 1.0:
        tag += f"_w{num(width)}"
    if int(batch_size) != 128:
        tag += f"_bs{int(batch_size)}"
    return tag


def setting_label(key) -> str:
    """'cifar10 resnet18_w0.25' of a (dataset, model, width, batch_size) key."""
    ds, model, width, bs = key
    return f"{ds} {setting_tag(model, width, bs)}"


def beta_sweep_etas(f: pd.DataFrame, *, eta: float | None, method: str = "sgdm") -> list[float]:
    """η values at which ``method`` runs cover >= 2 values of β (or just ``eta``, if given
    and present)."""
    g = f[f["method"] == method]
    if eta is not None:
        return [float(eta)] if close(g["eta"], eta).any() else []
    etas = sorted(set(np.round(g["eta"].to_numpy(dtype=float), 12)))
    return [e for e in etas if g.loc[close(g["eta"], e), "beta"].nunique() >= 2]


def explicit_groups(f: pd.DataFrame, *, eta: float | None, explicit_against: str):
    """Per (setting, η, β_emulated) of the explicit IGR-M runs: (key, family, explicit
    runs, heavy-ball runs of the family with the same β and η, plain runs (β = 0, same
    η)). ``explicit_against``: gdm, sgdm, or auto (gdm if present, else sgdm); ``eta``:
    only that η (None: every η)."""
    ex = f[f["method"] == "igrm_explicit"]
    out = []
    for key, g in ex.groupby(SETTING + ["eta", "beta"], sort=True):
        if eta is not None and not close([key[4]], eta)[0]:
            continue
        same = f[np.logical_and.reduce([f[k] == v for k, v in zip(SETTING, key[:4])]) & close(f["eta"], key[4])]
        fam = explicit_against
        if fam == "auto":
            fam = "gdm" if (same["method"] == "gdm").any() else "sgdm"
        mom = same[(same["method"] == fam) & close(same["beta"], key[5])]
        plain = same[(same["method"] == fam) & (same["beta"] == 0.0)]
        out.append((key, fam, g, mom, plain))
    return out


# =========================================================================== table
def table_final(*, finals: pd.DataFrame, dataset: str | None, model: str | None) -> pd.DataFrame:
    """The paper's table (:data:`TABLE_COLUMNS`): per (dataset, model, width, method, β, h,
    η, batch size), final accuracy mean/std over completed seeds, diverged runs counted."""
    f = select_finals(finals=finals, epochs=None, spread_window=None, dataset=dataset, model=model)
    by = ["dataset", "model", "width", "method", "beta", "h", "eta", "batch_size"]
    rows = []
    for key, g in f.groupby(by, sort=True):
        ok = g[g["status"] == "completed"]
        acc = ok["final_test_acc"].to_numpy(dtype=float)
        best = ok["best_test_acc"].to_numpy(dtype=float)
        spr = ok["plateau_spread"].to_numpy(dtype=float)
        spr = spr[np.isfinite(spr)]

        def sd(v):
            return float(np.std(v, ddof=1)) if v.size >= 2 else math.nan

        rows.append(
            {
                **dict(zip(by, key)),
                "n": int(len(ok)),
                "n_diverged": int((g["status"] == "diverged").sum()),
                "final_acc_mean": float(acc.mean()) if acc.size else math.nan,
                "final_acc_std": sd(acc),
                "best_acc_mean": float(best.mean()) if best.size else math.nan,
                "spread_mean": float(spr.mean()) if spr.size else math.nan,
                "spread_std": sd(spr),
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)
