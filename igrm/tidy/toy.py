"""Tidy tables of the toy stage (one row per observation, CSV under results/tidy/) from
the result files of :mod:`igrm.toy` (``(arrays, attrs)`` as :func:`igrm.pipeline.io.read_h5` gives them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..toy import FLOW_E, FLOW_R, expansion_parameter, real_root_bound

#: trajectories are thinned to at most this many rows each (first and last step kept)
MAX_POINTS = 2000


def _concat(frames):
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def two_factor_tables(results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trajectories, finals) of the two-factor result files."""
    return (_concat(tidy_trajectories(a, t) for a, t in results), _concat(tidy_finals(a, t) for a, t in results))


def sharpness_sweep_table(results) -> pd.DataFrame:
    """The sweep of every η file, one row per (η, β), sorted by (η, β)."""
    df = _concat(tidy_sharpness(a, t) for a, t in results)
    return df.sort_values(["eta", "beta"]).reset_index(drop=True)


def limit_convergence_table(results) -> pd.DataFrame:
    """The η-convergence study (:func:`igrm.toy.limit_convergence`): the columns of
    :func:`tidy_sharpness` plus eps_target, sorted by (β, η)."""
    frames = []
    for a, t in results:
        df = tidy_sharpness(a, t)
        df["eps_target"] = np.asarray(a["eps_target"], dtype=np.float64)
        frames.append(df)
    df = _concat(frames)
    return df.sort_values(["beta", "eta"]).reset_index(drop=True) if len(df) else df


def sigmoid_tables(results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trajectories, flows) of the sigmoid result files."""
    return (_concat(tidy_trajectories(a, t) for a, t in results), _concat(tidy_flows(a, t) for a, t in results))


def _method(beta):
    return "GD" if float(beta) == 0.0 else "GD+M"


def _thin(n: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` of ``n`` records, first and last kept: half evenly spaced, half
    geometrically spaced, so the early steps, where a path bends, stay dense (a linear
    thinning draws them as one straight chord)."""
    if n <= max_points:
        return np.arange(n)
    even = np.linspace(0, n - 1, max_points // 2)
    early = np.geomspace(1, n - 1, max_points - max_points // 2)
    return np.unique(np.round(np.concatenate([[0], even, early])).astype(np.int64))


def tidy_trajectories(arrays, attrs, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """Columns: problem, method, beta, eta, h, step, w1, w2 (≤ max_points rows per
    trajectory, first and last recorded steps kept)."""
    idx = _thin(len(arrays["steps"]), max_points)
    frames = []
    for b, beta in enumerate(np.asarray(arrays["beta"])):
        w = arrays["w"][idx, b]
        frames.append(
            pd.DataFrame(
                {
                    "problem": attrs.get("problem", ""),
                    "method": _method(beta),
                    "beta": float(beta),
                    "eta": float(arrays["eta"][b]),
                    "h": float(arrays["h"][b]),
                    "step": np.asarray(arrays["steps"])[idx],
                    "w1": w[:, 0],
                    "w2": w[:, 1],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def tidy_finals(arrays, attrs) -> pd.DataFrame:
    """One row per run: problem, method, beta, eta, h, w1, w2, loss, sharpness,
    diverged_step (and sharpness_at_min for toy 1)."""
    fw = np.asarray(arrays["final_w"])
    df = pd.DataFrame(
        {
            "problem": attrs.get("problem", ""),
            "method": [_method(b) for b in arrays["beta"]],
            "beta": arrays["beta"],
            "eta": arrays["eta"],
            "h": arrays["h"],
            "w1": fw[:, 0],
            "w2": fw[:, 1],
            "loss": arrays["final_loss"],
            "sharpness": arrays["final_sharpness"],
            "diverged_step": arrays["diverged_step"],
        }
    )
    if "sharpness_at_min" in arrays:
        df["sharpness_at_min"] = arrays["sharpness_at_min"]
    return df


def tidy_sharpness(arrays, attrs) -> pd.DataFrame:
    """One row per (eta, beta): eta, beta, h, lam, sharpness_gdm, sharpness_flow2,
    sharpness_flow1, rel_err = (gdm − flow2)/flow2, rel_err_flow1 = (gdm − flow1)/flow1,
    gnorm_gdm, diverged_step, flow2_converged, sharpness_init (λ_max at the start),
    sharpness_max = max(sharpness_init, sharpness_gdm) (the larger of the start's and the
    GD+M limit's λ_max; the start's alone for a diverged run), epsilon = h · sharpness_max /
    (1−β)² (docs/theory.md (T11), (T45)) and epsilon_bound = 1/(1+√β)², the real-root bound
    (T51) (docs/toy.md, "Range of validity")."""
    sg, s2, s1 = (np.asarray(arrays[k]) for k in ("sharpness_gdm", "sharpness_flow2", "sharpness_flow1"))
    n = sg.size
    s0 = (
        np.asarray(arrays["sharpness_init"], dtype=np.float64)
        if "sharpness_init" in arrays
        else np.full(n, float(attrs.get("sharpness_init", np.nan)))
    )
    smax = np.fmax(s0, sg)
    beta = np.asarray(arrays["beta"], dtype=np.float64)
    return pd.DataFrame(
        {
            "eta": arrays["eta"],
            "beta": beta,
            "h": arrays["h"],
            "lam": arrays["lam"],
            "sharpness_gdm": sg,
            "sharpness_flow2": s2,
            "sharpness_flow1": s1,
            "rel_err": (sg - s2) / s2,
            "rel_err_flow1": (sg - s1) / s1,
            "gnorm_gdm": arrays["gnorm_gdm"],
            "diverged_step": arrays["diverged_step"],
            "flow2_converged": np.asarray(arrays["flow2_converged"]).astype(bool),
            "sharpness_init": s0,
            "sharpness_max": smax,
            "epsilon": expansion_parameter(arrays["h"], beta, smax),
            "epsilon_bound": real_root_bound(beta),
        }
    )


def tidy_flows(arrays, attrs) -> pd.DataFrame:
    """The sigmoid problem's ODE curves: columns problem, flow, t, w1, w2."""
    frames = []
    for name, key in ((FLOW_E, "flow_E"), (FLOW_R, "flow_R")):
        w = np.asarray(arrays[f"{key}_w"])
        frames.append(
            pd.DataFrame(
                {
                    "problem": attrs.get("problem", ""),
                    "flow": name,
                    "t": arrays[f"{key}_t"],
                    "w1": w[:, 0],
                    "w2": w[:, 1],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
