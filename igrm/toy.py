"""Pipeline stages for the two toy problems of the paper (docs/theory.md §5).

Conventions: η is the effective learning rate, the raw step is h = η (1 − β)
(docs/theory.md (T1)); β = 0 is plain GD. GD+M is the heavy-ball update of
docs/theory.md (T2) started from rest (:mod:`igrm.heavyball`).

Stages
------
simulate_*  (cfg dict) -> (arrays, attrs) for :func:`igrm.io.write_h5`
tidy_*      (arrays, attrs) from :func:`igrm.io.read_h5` -> pandas DataFrame
plot_*      DataFrames (+ cfg) and output paths -> figures via :func:`igrm.plotting.save`
toy_claims  DataFrames + cfg -> claims rows (:mod:`igrm.claims`)

Flows are integrated as ODEs with scipy's ``solve_ivp`` (:func:`solve_flow`),
batched by stacking all trajectories into one system.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

from . import claims as _claims
from .config import num
from .heavyball import run
from .problems import Problem, SigmoidFactor, TwoFactor

# ------------------------------------------------------------------ defaults

TWO_FACTOR_DEFAULTS = {"x": 1.0, "y": 0.6, "init": [2.8, 3.4], "eta": 1e-2,
                       "betas": [0.0, 0.5, 0.8, 0.9], "steps": 50_000, "record_every": 10}
SWEEP_DEFAULTS = {"x": 1.0, "y": 0.6, "init": [2.8, 3.4], "etas": [5e-3, 1e-2, 2e-2],
                  "betas": [round(b, 4) for b in np.linspace(0.0, 0.95, 20)], "steps": 50_000,
                  "flow_time": None, "gtol": 1e-11}
SIGMOID_DEFAULTS = {"x": 1.0, "y": 0.6, "init": [6.0, 2.0], "eta": 1e-2,
                    "betas": [0.0, 0.5, 0.8, 0.9], "steps": 2_000, "record_every": 1,
                    "flow_time": None, "reg_flow_time": None, "flow_points": 1000, "gtol": 1e-8}
CLAIMS_DEFAULTS = {"spearman_max": -0.9, "flow2_rel_tol": 0.02, "order_tol": 0.15}

FLOW_E = "gradient_flow_E"
FLOW_R = "regulariser_flow"


def _cfg(cfg: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict:
    out = dict(defaults)
    out.update({k: v for k, v in (cfg or {}).items()})
    return out


def raw_step(eta, beta):
    """h = η (1 − β): raw learning rate from the effective one (docs/theory.md (T1))."""
    return np.asarray(eta, dtype=np.float64) * (1.0 - np.asarray(beta, dtype=np.float64))


def igr_lambda(h, beta):
    """λ = (1 + β) h / (4 (1 − β)²), the coefficient of ‖∇E‖² in flow (2) (docs/theory.md (T7))."""
    beta = np.asarray(beta, dtype=np.float64)
    return (1.0 + beta) * np.asarray(h, dtype=np.float64) / (4.0 * (1.0 - beta) ** 2)


# ------------------------------------------------------------------ ODE flows

def modified_gradient(problem: Problem, w, lam):
    """∇(E + λ‖∇E‖²) = ∇E + 2 λ H ∇E (docs/theory.md (T6), (T4); λ = 0: (T5))."""
    g = problem.grad(w)
    return g + np.asarray(lam, dtype=np.float64)[..., None] * 2.0 * problem.hvp(w, g)


def solve_flow(field: Callable[[np.ndarray], np.ndarray], w0, t_end: float, speed=1.0,
               gtol: float | None = None, t_eval=None, rtol: float = 1e-10, atol: float = 1e-13,
               method: str = "DOP853", max_extend: int = 12) -> dict:
    """Integrate the batched flow w' = −speed · field(w) with ``solve_ivp``.

    w0: (B, d); speed: scalar or (B,); field maps (B, d) -> (B, d).
    With ``gtol``: integrate until max_b ‖field(w_b)‖ < gtol (a terminal event),
    doubling the horizon from ``t_end`` up to ``max_extend`` times; ``converged``
    says whether it got there. Without ``gtol``: integrate exactly to ``t_end``.
    ``t_eval``: times at which to sample the dense solution (within [0, t_end]).

    Returns dict(w=(B, d) final point, t=final time, converged, nfev,
    t_eval, w_eval=(n, B, d) or None, gnorm=(B,) final ‖field‖).
    """
    w0 = np.atleast_2d(np.asarray(w0, dtype=np.float64))
    B, d = w0.shape
    speed = np.broadcast_to(np.asarray(speed, dtype=np.float64), (B,))[:, None]

    def rhs(t, y):
        return (-speed * field(y.reshape(B, d))).ravel()

    events = None
    if gtol is not None:
        def done(t, y):
            gn = np.sqrt(np.sum(field(y.reshape(B, d)) ** 2, axis=1))
            return math.log(max(float(np.max(gn)), 1e-300)) - math.log(0.5 * gtol)
        done.terminal = True
        done.direction = -1
        events = [done]

    y, t0, nfev, T = w0.ravel().copy(), 0.0, 0, float(t_end)
    w_eval = None
    with np.errstate(over="ignore", invalid="ignore"):
        if t_eval is not None:
            t_eval = np.asarray(t_eval, dtype=np.float64)
            sol = solve_ivp(rhs, (0.0, T), y, method=method, rtol=rtol, atol=atol, t_eval=t_eval)
            nfev += sol.nfev
            w_eval = sol.y.T.reshape(-1, B, d)
            y, t0 = sol.y[:, -1], float(sol.t[-1])
            if not sol.success:
                raise RuntimeError(f"solve_ivp failed: {sol.message}")
        converged = gtol is None
        if gtol is not None:
            for _ in range(max_extend + 1):
                if np.max(np.sqrt(np.sum(field(y.reshape(B, d)) ** 2, axis=1))) < gtol:
                    converged = True
                    break
                sol = solve_ivp(rhs, (t0, t0 + T), y, method=method, rtol=rtol, atol=atol,
                                events=events)
                nfev += sol.nfev
                if not sol.success:
                    raise RuntimeError(f"solve_ivp failed: {sol.message}")
                y, t0 = sol.y[:, -1], float(sol.t[-1])
                T *= 2.0
            else:
                converged = bool(np.max(np.sqrt(np.sum(field(y.reshape(B, d)) ** 2, axis=1))) < gtol)
        elif t_eval is None:
            sol = solve_ivp(rhs, (0.0, T), y, method=method, rtol=rtol, atol=atol)
            nfev += sol.nfev
            y, t0 = sol.y[:, -1], float(sol.t[-1])
    w = y.reshape(B, d)
    return {"w": w, "t": t0, "converged": bool(converged), "nfev": int(nfev), "t_eval": t_eval,
            "w_eval": w_eval, "gnorm": np.sqrt(np.sum(field(w) ** 2, axis=1))}


def flow2_limit(problem: Problem, w0, eta, beta, t_end: float, gtol: float = 1e-11) -> dict:
    """Limit point of flow (2), x' = −(1/(1−β)) ∇(E + λ‖∇E‖²), λ = (1+β) h / (4 (1−β)²),
    h = η (1 − β), batched over (η, β) (docs/theory.md (T6), (T7), (T1))."""
    beta = np.asarray(beta, dtype=np.float64)
    lam = igr_lambda(raw_step(eta, beta), beta)
    w0 = np.broadcast_to(np.asarray(w0, dtype=np.float64), (beta.size, problem.dim))
    return solve_flow(lambda w: modified_gradient(problem, w, lam), w0, t_end,
                      speed=1.0 / (1.0 - beta), gtol=gtol)


def flow1_limit(problem: Problem, w0, t_end: float, gtol: float = 1e-11) -> dict:
    """Limit point of flow (1), x' = −∇E/(1−β): the gradient flow up to a time change,
    so one solve (β = 0) gives the limit for every β (docs/theory.md (T5))."""
    return solve_flow(problem.grad, np.atleast_2d(w0), t_end, speed=1.0, gtol=gtol)


# ------------------------------------------------------------------ simulations

def _problem(cfg, cls):
    return cls(x=float(cfg["x"]), y=float(cfg["y"]))


def _gdm(problem, cfg):
    betas = np.asarray(cfg["betas"], dtype=np.float64)
    eta = float(cfg["eta"])
    h = raw_step(eta, betas)
    x0 = np.tile(np.asarray(cfg["init"], dtype=np.float64), (betas.size, 1))
    res = run(problem, x0, h, betas, int(cfg["steps"]), record_every=int(cfg["record_every"]))
    final = res.final
    arrays = {"beta": betas, "eta": np.full(betas.size, eta), "h": h, "steps": res.steps,
              "w": res.x, "final_w": final, "final_loss": problem.loss(final),
              "final_sharpness": _sharpness(problem, final), "diverged_step": res.diverged_step}
    return arrays


def _sharpness(problem, w):
    """λ_max of the closed-form Hessian; NaN for diverged (NaN) points."""
    w = np.asarray(w, dtype=np.float64)
    out = np.full(w.shape[:-1], np.nan)
    ok = np.all(np.isfinite(w), axis=-1)
    out[ok] = problem.sharpness(w[ok])
    return out


def _attrs(problem, cfg, **extra):
    return {"problem": problem.name, "x": float(cfg["x"]), "y": float(cfg["y"]),
            "init": list(map(float, cfg["init"])), "config": dict(cfg), **extra}


def simulate_two_factor(cfg: Mapping[str, Any] | None = None):
    """GD and GD+M on E = ½ (y − w1 w2 x)² (docs/theory.md (T22)), one run per β at fixed η.

    arrays: beta, eta, h (B,); steps (n_rec,); w (n_rec, B, 2); final_w (B, 2);
    final_loss, final_sharpness (λ_max of ∇²E), sharpness_at_min = x²(w1²+w2²),
    diverged_step (B,).
    """
    cfg = _cfg(cfg, TWO_FACTOR_DEFAULTS)
    p = _problem(cfg, TwoFactor)
    arrays = _gdm(p, cfg)
    arrays["sharpness_at_min"] = p.sharpness_at_minimum(arrays["final_w"])
    return arrays, _attrs(p, cfg, eta=float(cfg["eta"]))


def sharpness_sweep(cfg: Mapping[str, Any] | None = None):
    """Limit-point sharpness of GD+M vs flow (2) and flow (1) on toy 1, over (η, β).

    GD+M: ``steps`` heavy-ball steps from rest at h = η(1−β). Flow (2) at the same
    (η, β) and flow (1) (the same limit for every β) integrated to convergence.
    arrays (N = #η · #β, η-major): eta, beta, h, lam, final_w_gdm (N, 2), sharpness_gdm,
    final_w_flow2 (N, 2), sharpness_flow2, flow2_converged, final_w_flow1 (N, 2),
    sharpness_flow1, diverged_step, gnorm_gdm (‖∇E‖ at the GD+M end point).
    """
    cfg = _cfg(cfg, SWEEP_DEFAULTS)
    p = _problem(cfg, TwoFactor)
    etas = np.asarray(cfg["etas"], dtype=np.float64)
    betas = np.asarray(cfg["betas"], dtype=np.float64)
    E, Bt = (a.ravel() for a in np.meshgrid(etas, betas, indexing="ij"))
    h = raw_step(E, Bt)
    lam = igr_lambda(h, Bt)
    w0 = np.asarray(cfg["init"], dtype=np.float64)
    X0 = np.tile(w0, (E.size, 1))
    steps = int(cfg["steps"])
    res = run(p, X0, h, Bt, steps, record_every=steps)
    gtol = float(cfg.get("gtol") or 1e-11)
    # horizon: the GD+M run's time k h, in the flow's own time t (docs/theory.md (T1))
    t_end = float(cfg["flow_time"]) if cfg.get("flow_time") else float(steps * np.min(h))
    f2 = flow2_limit(p, w0, E, Bt, t_end, gtol=gtol)
    f1 = flow1_limit(p, w0, t_end, gtol=gtol)
    w1 = np.tile(f1["w"], (E.size, 1))
    arrays = {"eta": E, "beta": Bt, "h": h, "lam": lam, "final_w_gdm": res.final,
              "sharpness_gdm": _sharpness(p, res.final),
              "gnorm_gdm": np.sqrt(p.grad_norm2(res.final)),
              "final_w_flow2": f2["w"], "sharpness_flow2": _sharpness(p, f2["w"]),
              "flow2_converged": np.full(E.size, f2["converged"]),
              "final_w_flow1": w1, "sharpness_flow1": _sharpness(p, w1),
              "diverged_step": res.diverged_step}
    attrs = _attrs(p, cfg, sharpness_init=float(p.sharpness(w0)), flow2_t=f2["t"],
                   flow2_nfev=f2["nfev"], flow1_t=f1["t"], flow1_converged=f1["converged"],
                   flow2_all_converged=f2["converged"], gtol=gtol)
    return arrays, attrs


def simulate_sigmoid(cfg: Mapping[str, Any] | None = None):
    """GD/GD+M on E = ½ (y − w1 σ(w2 x))² (docs/theory.md (T25), (T27)), plus two ODE flows
    from the same init: the gradient flow of E, x' = −∇E, over ``flow_time``
    (default: the GD run's time steps·η), and the implicit-regulariser flow
    x' = −∇‖∇E‖² = −2 H ∇E, run until ‖∇‖∇E‖²‖ < gtol (or over ``reg_flow_time``).
    Both sampled from the dense solution at ``flow_points`` times (0 and geometric).

    arrays: as :func:`simulate_two_factor` (without sharpness_at_min) plus
    flow_E_t (n,), flow_E_w (n, 2), flow_R_t (n,), flow_R_w (n, 2).
    """
    cfg = _cfg(cfg, SIGMOID_DEFAULTS)
    p = _problem(cfg, SigmoidFactor)
    arrays = _gdm(p, cfg)
    w0 = np.asarray(cfg["init"], dtype=np.float64)[None]
    n = int(cfg["flow_points"])
    gtol = float(cfg.get("gtol") or 1e-8)

    def sample(t_end):
        return np.concatenate([[0.0], np.geomspace(t_end * 1e-6, t_end, n - 1)])

    tE = float(cfg["flow_time"]) if cfg.get("flow_time") else float(cfg["steps"]) * float(cfg["eta"])
    fE = solve_flow(p.grad, w0, tE, t_eval=sample(tE))  # gradient flow of E
    if cfg.get("reg_flow_time"):
        tR = float(cfg["reg_flow_time"])
        conv_R = None
    else:  # find the time the regulariser flow has converged, then sample it
        probe = solve_flow(p.grad_norm2_grad, w0, 10.0, gtol=gtol)
        tR, conv_R = probe["t"], probe["converged"]
    fR = solve_flow(p.grad_norm2_grad, w0, tR, t_eval=sample(tR))  # x' = −∇‖∇E‖²
    arrays.update({"flow_E_t": fE["t_eval"], "flow_E_w": fE["w_eval"][:, 0],
                   "flow_R_t": fR["t_eval"], "flow_R_w": fR["w_eval"][:, 0]})
    attrs = _attrs(p, cfg, eta=float(cfg["eta"]), flow_E_time=tE, flow_R_time=tR,
                   flow_R_converged=conv_R if conv_R is not None else "not checked",
                   flow_E_end=fE["w"][0].tolist(), flow_R_end=fR["w"][0].tolist(),
                   flow_E_gnorm=float(fE["gnorm"][0]), flow_R_gnorm=float(fR["gnorm"][0]))
    return arrays, attrs


# ------------------------------------------------------------------ tidy

def _method(beta):
    return "GD" if float(beta) == 0.0 else "GD+M"


def _thin(n: int, max_points: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))


def tidy_trajectories(arrays, attrs, max_points: int = 2000) -> pd.DataFrame:
    """Columns: problem, method, beta, eta, h, step, w1, w2 (≤ max_points rows per
    trajectory, first and last recorded steps kept)."""
    idx = _thin(len(arrays["steps"]), max_points)
    frames = []
    for b, beta in enumerate(np.asarray(arrays["beta"])):
        w = arrays["w"][idx, b]
        frames.append(pd.DataFrame({
            "problem": attrs.get("problem", ""), "method": _method(beta), "beta": float(beta),
            "eta": float(arrays["eta"][b]), "h": float(arrays["h"][b]),
            "step": np.asarray(arrays["steps"])[idx], "w1": w[:, 0], "w2": w[:, 1]}))
    return pd.concat(frames, ignore_index=True)


def tidy_finals(arrays, attrs) -> pd.DataFrame:
    """One row per run: problem, method, beta, eta, h, w1, w2, loss, sharpness,
    diverged_step (and sharpness_at_min for toy 1)."""
    fw = np.asarray(arrays["final_w"])
    df = pd.DataFrame({"problem": attrs.get("problem", ""),
                       "method": [_method(b) for b in arrays["beta"]],
                       "beta": arrays["beta"], "eta": arrays["eta"], "h": arrays["h"],
                       "w1": fw[:, 0], "w2": fw[:, 1], "loss": arrays["final_loss"],
                       "sharpness": arrays["final_sharpness"],
                       "diverged_step": arrays["diverged_step"]})
    if "sharpness_at_min" in arrays:
        df["sharpness_at_min"] = arrays["sharpness_at_min"]
    return df


def tidy_sharpness(arrays, attrs) -> pd.DataFrame:
    """One row per (eta, beta): eta, beta, h, lam, sharpness_gdm, sharpness_flow2,
    sharpness_flow1, rel_err = (gdm − flow2)/flow2, rel_err_flow1 = (gdm − flow1)/flow1,
    gnorm_gdm, diverged_step, flow2_converged, sharpness_init."""
    sg, s2, s1 = (np.asarray(arrays[k]) for k in ("sharpness_gdm", "sharpness_flow2", "sharpness_flow1"))
    return pd.DataFrame({
        "eta": arrays["eta"], "beta": arrays["beta"], "h": arrays["h"], "lam": arrays["lam"],
        "sharpness_gdm": sg, "sharpness_flow2": s2, "sharpness_flow1": s1,
        "rel_err": (sg - s2) / s2, "rel_err_flow1": (sg - s1) / s1,
        "gnorm_gdm": arrays["gnorm_gdm"], "diverged_step": arrays["diverged_step"],
        "flow2_converged": np.asarray(arrays["flow2_converged"]).astype(bool),
        "sharpness_init": float(attrs.get("sharpness_init", np.nan))})


def tidy_flows(arrays, attrs) -> pd.DataFrame:
    """The sigmoid problem's ODE curves: columns problem, flow, t, w1, w2."""
    frames = []
    for name, key in ((FLOW_E, "flow_E"), (FLOW_R, "flow_R")):
        w = np.asarray(arrays[f"{key}_w"])
        frames.append(pd.DataFrame({"problem": attrs.get("problem", ""), "flow": name,
                                    "t": arrays[f"{key}_t"], "w1": w[:, 0], "w2": w[:, 1]}))
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------ plots

def _label(beta):
    return "GD (β = 0)" if float(beta) == 0.0 else f"GD+M, β = {float(beta):g}"


def plot_two_factor(traj_df: pd.DataFrame, cfg: Mapping[str, Any] | None, paths: Sequence,
                    finals_df: pd.DataFrame | None = None) -> list:
    """Trajectories over the hyperbola of minima w1 w2 = y/x, and the sharpness
    λ_max(∇²E) of each end point vs β (docs/theory.md (T23)); the end points come
    from ``finals_df`` (:func:`tidy_finals`) when given, else from the last
    trajectory rows."""
    from .figures.style import beta_color, figure, save

    cfg = _cfg(cfg, TWO_FACTOR_DEFAULTS)
    p = _problem(cfg, TwoFactor)
    fig, axes = figure(1, 2, width=3.6, height=3.2)
    ax, axs = axes[0]
    w1 = np.linspace(0.05, 4.0, 400)
    ax.plot(w1, p.y / (p.x * w1), color="0.6", lw=2.5, alpha=0.6,
            label=r"minima $w_1 w_2 = y/x$")
    ends = []
    for i, (beta, g) in enumerate(traj_df.groupby("beta", sort=True)):
        g = g.sort_values("step")
        c = beta_color(beta, i)
        ax.plot(g["w1"], g["w2"], color=c, lw=1.2, label=_label(beta))
        end = g.iloc[-1]
        ax.plot(end["w1"], end["w2"], "o", color=c, ms=5, mec="k", mew=0.5)
        ends.append((beta, float(p.sharpness(np.array([end["w1"], end["w2"]])))))
    start = traj_df.sort_values("step").iloc[0]
    ax.plot(start["w1"], start["w2"], "*", color="k", ms=10, label="start")
    ax.set(xlim=(0, 4), ylim=(0, 4), xlabel=r"$w_1$", ylabel=r"$w_2$",
           title=f"GD / GD+M, η = {float(cfg['eta']):g}, {int(traj_df['step'].max())} steps")
    ax.set_aspect("equal")
    ax.legend(loc="center right", fontsize=7)
    if finals_df is not None and len(finals_df):
        f = finals_df.sort_values("beta")
        ends = list(zip(f["beta"], f["sharpness"]))
    b, s = np.array(ends, dtype=np.float64).T
    axs.plot(b, s, "o-", color="k")
    axs.axhline(2 * abs(p.y * p.x), ls=":", color="0.5", label=r"flattest minimum $2|xy|$")
    axs.set(xlabel="momentum β", ylabel=r"sharpness $\lambda_{max}(\nabla^2 E)$ at end point",
            title="End-point sharpness vs β")
    axs.legend()
    caption = ("Toy 1, E = ½(y − w1 w2 x)², x = 1, y = 0.6: GD and heavy-ball GD+M at equal effective "
               "learning rate η (h = η(1−β)) from the same start. Larger β ends at flatter minima "
               "(smaller λ_max), as the implicit regulariser λ‖∇E‖² of flow (2) predicts.")
    return save(fig, paths, caption)


def plot_sharpness(sweep_df: pd.DataFrame, paths: Sequence) -> list:
    """Limit-point sharpness vs β: GD+M (markers), flow (2) (lines), flow (1) (dashed)."""
    import matplotlib.pyplot as plt

    from .figures.style import figure, save

    fig, axes = figure(1, 1, width=4.6, height=3.4)
    ax = axes[0, 0]
    cmap = plt.get_cmap("viridis")
    etas = sorted(sweep_df["eta"].unique())
    for i, (eta, g) in enumerate(sweep_df.groupby("eta", sort=True)):
        g = g.sort_values("beta")
        c = cmap(i / max(len(etas) - 1, 1) * 0.85)
        ax.plot(g["beta"], g["sharpness_gdm"], "o", color=c, ms=4, label=f"GD+M, η = {eta:g}")
        ax.plot(g["beta"], g["sharpness_flow2"], "-", color=c, label=f"flow (2), η = {eta:g}")
    ax.axhline(float(sweep_df["sharpness_flow1"].iloc[0]), ls="--", color="k",
               label="flow (1) (no regulariser)")
    ax.set(xlabel="momentum β", ylabel=r"sharpness $\lambda_{max}(\nabla^2 E)$ of the limit point",
           title="Toy 1: limit sharpness, GD+M vs modified flows")
    ax.legend(fontsize=7, ncol=2)
    caption = ("Sharpness of the point GD+M converges to (markers) and of the limit of flow (2) "
               "x' = −(1/(1−β))∇(E + λ‖∇E‖²), λ = (1+β)h/(4(1−β)²), h = η(1−β) (lines), vs β at "
               "fixed effective learning rate η. Dashed: flow (1), the plain gradient flow.")
    return save(fig, paths, caption)


def plot_sigmoid(traj_df: pd.DataFrame, flows_df: pd.DataFrame, cfg: Mapping[str, Any] | None,
                 paths: Sequence) -> list:
    """Map of ‖∇E‖² (log colours) with the minima curve, GD/GD+M trajectories and the
    two ODE flows (docs/theory.md (T27))."""
    from matplotlib.colors import LogNorm

    from .figures.style import beta_color, figure, save

    cfg = _cfg(cfg, SIGMOID_DEFAULTS)
    p = _problem(cfg, SigmoidFactor)
    fig, axes = figure(1, 1, width=5.0, height=4.0)
    ax = axes[0, 0]
    pts = pd.concat([traj_df[["w1", "w2"]], flows_df[["w1", "w2"]]])
    lo = np.nanmin(pts.values, axis=0)
    hi = np.nanmax(pts.values, axis=0)
    pad = 0.15 * (hi - lo) + 0.3
    g1 = np.linspace(min(lo[0] - pad[0], 0.0), hi[0] + pad[0], 300)
    g2 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], 300)
    W1, W2 = np.meshgrid(g1, g2)
    G = p.grad_norm2(np.stack([W1, W2], -1))
    G = np.maximum(G, 1e-8)
    levels = np.geomspace(1e-8, G.max() * 1.01, 30)
    cs = ax.contourf(W1, W2, G, levels=levels, norm=LogNorm(), cmap="Greys_r", alpha=0.85)
    fig.colorbar(cs, ax=ax, label=r"$\|\nabla E(w)\|^2$ (log scale)", format="%.0e")
    w2c = np.linspace(g2[0], g2[-1], 400)
    w1c = p.minima_w1(w2c)
    keep = (w1c >= g1[0]) & (w1c <= g1[-1])
    ax.plot(w1c[keep], w2c[keep], color="gold", lw=2, label=r"minima $w_1 = y/\sigma(w_2 x)$")
    for i, (beta, g) in enumerate(traj_df.groupby("beta", sort=True)):
        g = g.sort_values("step")
        c = beta_color(beta, i)
        ax.plot(g["w1"], g["w2"], color=c, lw=1.3, label=_label(beta))
        ax.plot(g["w1"].iloc[-1], g["w2"].iloc[-1], "o", color=c, ms=4, mec="w", mew=0.5)
    for name, style, lab in ((FLOW_E, dict(color="tab:cyan", ls="--"), r"gradient flow $w' = -\nabla E$"),
                             (FLOW_R, dict(color="magenta", ls=":"), r"regulariser flow $w' = -\nabla\|\nabla E\|^2$")):
        f = flows_df[flows_df["flow"] == name].sort_values("t")
        ax.plot(f["w1"], f["w2"], lw=2, label=lab, **style)
    s = traj_df.sort_values("step").iloc[0]
    ax.plot(s["w1"], s["w2"], "*", color="k", mec="w", ms=11, label="start")
    ax.set(xlim=(g1[0], g1[-1]), ylim=(g2[0], g2[-1]), xlabel=r"$w_1$", ylabel=r"$w_2$",
           title=f"Toy 2: E = ½(y − w1 σ(w2 x))², η = {float(cfg['eta']):g}")
    ax.legend(fontsize=6.5, loc="lower right")
    caption = ("Toy 2 over a map of ‖∇E‖² (log colours): GD and GD+M at equal effective learning rate "
               "η, the gradient flow of E and the flow of the implicit regulariser ‖∇E‖² (both "
               "solved as ODEs). Larger β bends the path toward the regulariser flow.")
    return save(fig, paths, caption)


# ------------------------------------------------------------------ claims

def toy_claims(sweep_df: pd.DataFrame, finals_df: pd.DataFrame | None,
               cfg: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Claims rows for the toy problems (tolerances: config ``toy.claims``, docs/toy.md).

    - ``toy/flatter_minima/eta<η>``: limit sharpness falls with β at fixed η
      (Spearman ρ(β, sharpness) ≤ ``spearman_max``), one row per η.
    - ``toy/flow2_closer_than_flow1``: flow (2)'s limit predicts GD+M's better than
      flow (1)'s at every (η, β) of the sweep.
    - ``toy/limit_matches_flow2/eta<η>``: max over β of |S_GD+M / S_flow(2) − 1| ≤
      ``flow2_rel_tol`` (a quantitative check of flow (2), one row per η).
    - ``toy/igr_order_beta0``: at β = 0 (GD, IGR) the limit-sharpness error of flow (2)
      falls like η² (expected slope 2 of log|err| vs log η, ± ``order_tol``).
    """
    from scipy.stats import spearmanr

    c = _cfg((cfg or {}).get("claims"), CLAIMS_DEFAULTS)
    rows = []
    ok = sweep_df[np.isfinite(sweep_df["sharpness_gdm"])]
    n_div = int((sweep_df["diverged_step"] >= 0).sum())
    div_note = f"; {n_div} diverged runs excluded" if n_div else ""

    smax = float(c["spearman_max"])
    for eta, g in ok.groupby("eta", sort=True):
        g = g.sort_values("beta")
        rho = float(spearmanr(g["beta"], g["sharpness_gdm"]).statistic) if len(g) > 2 else math.nan
        verdict = (_claims.INCONCLUSIVE if not math.isfinite(rho)
                   else _claims.REPRODUCES if rho <= smax else _claims.FAILS)
        detail = "limit sharpness by β: " + ", ".join(
            f"{b:g}: {s:.3f}" for b, s in zip(g["beta"], g["sharpness_gdm"])) + div_note
        rows.append(_claims.row(f"toy/flatter_minima/eta{num(eta)}",
                                f"larger β finds flatter minima at fixed effective learning rate η={eta:g} (toy 1)",
                                "slides: two-factor toy figure; docs/theory.md (T6), (T10)",
                                -1.0, rho, f"Spearman ρ ≤ {smax:g}", verdict, detail=detail))

    err2 = np.abs(ok["rel_err"].to_numpy())
    err1 = np.abs(ok["rel_err_flow1"].to_numpy())
    frac = float(np.mean(err2 < err1)) if err2.size else math.nan
    rows.append(_claims.row(
        "toy/flow2_closer_than_flow1",
        "flow (2) predicts GD+M's limit point better than flow (1) (toy 1 sweep)",
        "docs/theory.md (T5), (T6)", 1.0, frac, "every (η, β)",
        _claims.INCONCLUSIVE if not math.isfinite(frac) else
        (_claims.REPRODUCES if frac == 1.0 else _claims.FAILS),
        detail=(f"fraction of {err2.size} (η, β) with |err vs flow (2)| < |err vs flow (1)|; "
                f"median |rel err| flow (2) {np.median(err2):.3g}, flow (1) {np.median(err1):.3g}"
                if err2.size else "")))

    tol = float(c["flow2_rel_tol"])
    for eta, g in ok.groupby("eta", sort=True):
        e2 = np.abs(g["rel_err"].to_numpy())
        i = int(np.argmax(e2))
        within = g[np.abs(g["rel_err"]) <= tol]
        rows.append(_claims.row(
            f"toy/limit_matches_flow2/eta{num(eta)}",
            f"GD+M converges where flow (2) predicts, η={eta:g} (limit-point sharpness, toy 1)",
            "docs/theory.md (T6) (O(h²) close)", 0.0, float(e2[i]), tol,
            _claims.within(float(e2[i]), 0.0, tol),
            detail=(f"max |S_GD+M/S_flow(2) − 1| at β={g['beta'].iloc[i]:g}; vs flow (1) "
                    f"{np.max(np.abs(g['rel_err_flow1'])):.3g}; within tolerance up to β="
                    f"{within['beta'].max() if len(within) else math.nan:g}; "
                    f"expansion parameter η·S0/(1−β) up to {eta * g['sharpness_init'].iloc[0] / (1 - g['beta'].max()):.3g}"
                    if "sharpness_init" in g else "")))

    g0 = ok[ok["beta"] == 0.0].sort_values("eta")
    otol = float(c["order_tol"])
    if len(g0) >= 2:
        from .orders import loglog_slope

        fit2 = loglog_slope(g0["eta"].to_numpy(), np.abs(g0["rel_err"].to_numpy()))
        fit1 = loglog_slope(g0["eta"].to_numpy(), np.abs(g0["rel_err_flow1"].to_numpy()))
        s2, se2 = float(fit2[0]), float(fit2[1])
        s1 = float(fit1[0])
        rows.append(_claims.row(
            "toy/igr_order_beta0",
            "GD (β=0): the limit-point error of the IGR flow (2) is O(η²) (flow (1): O(η))",
            "Barrett & Dherin 2021; docs/theory.md (T9)", 2.0, s2, otol, _claims.within(s2, 2.0, otol),
            uncertainty=se2,
            detail=f"log-log slope over η = {', '.join(f'{e:g}' for e in g0['eta'])}; flow (1) slope {s1:.3f}"))
    else:
        rows.append(_claims.row("toy/igr_order_beta0",
                                "GD (β=0): the limit-point error of the IGR flow (2) is O(η²)",
                                "Barrett & Dherin 2021; docs/theory.md (T9)", 2.0, math.nan, otol,
                                _claims.INCONCLUSIVE, detail="needs β = 0 and at least two η in the sweep"))
    return _claims.frame(rows)
