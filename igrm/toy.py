"""Simulations, ODE flows and theory for the two toy problems of the paper (docs/theory.md §5).

Conventions: η is the effective learning rate, the raw step is h = η (1 − β)
(docs/theory.md (T1)); β = 0 is plain GD. GD+M is the heavy-ball update of
docs/theory.md (T2) started from rest (:mod:`igrm.heavyball`).

Simulations (``simulate_two_factor``, ``sharpness_sweep``, ``limit_convergence``,
``simulate_sigmoid``) take the keys of their config section (schemas/config.schema.yaml,
``toy.*``; a sweep job one ``eta`` in place of the grid ``etas``) as keyword-only
arguments without defaults, the sweep and the convergence study also the section
``toy.two_factor`` whole (``two_factor``: the problem and start), and return
``(arrays, attrs)`` for one HDF5 file. Their tidy
tables are in :mod:`igrm.tidy.toy`, figures in :mod:`igrm.figures.toy`, claims rows in
:mod:`igrm.claims.toy`.

Flows are integrated as ODEs with scipy's ``solve_ivp`` (:func:`igrm.flows.solve_flow`,
at :data:`FLOW_TOL`), batched by stacking all trajectories into one system.
"""

from __future__ import annotations

import math

import numpy as np

from .flows import solve_flow
from .heavyball import run
from .problems import Problem, SigmoidFactor, TwoFactor

FLOW_E = "gradient_flow_E"
FLOW_R = "regulariser_flow"
#: the toy flows' solver and tolerances (igrm.flows.solve_flow takes them from each caller)
FLOW_TOL = {"method": "DOP853", "rtol": 1e-10, "atol": 1e-13}


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


def flow2_limit(problem: Problem, w0, eta, beta, t_end: float, *, gtol: float) -> dict:
    """Limit point of flow (2), x' = −(1/(1−β)) ∇(E + λ‖∇E‖²), λ = (1+β) h / (4 (1−β)²),
    h = η (1 − β), batched over (η, β) (docs/theory.md (T6), (T7), (T1))."""
    beta = np.asarray(beta, dtype=np.float64)
    lam = igr_lambda(raw_step(eta, beta), beta)
    w0 = np.broadcast_to(np.asarray(w0, dtype=np.float64), (beta.size, problem.dim))
    return solve_flow(
        lambda w: modified_gradient(problem, w, lam), w0, t_end, speed=1.0 / (1.0 - beta), gtol=gtol, **FLOW_TOL
    )


def flow1_limit(problem: Problem, w0, t_end: float, *, gtol: float) -> dict:
    """Limit point of flow (1), x' = −∇E/(1−β): the gradient flow up to a time change,
    so one solve (β = 0) gives the limit for every β (docs/theory.md (T5))."""
    return solve_flow(problem.grad, np.atleast_2d(w0), t_end, speed=1.0, gtol=gtol, **FLOW_TOL)


# ------------------------------------------------------------------ simulations


def _gdm(problem, *, init, eta, betas, steps, record_every):
    """GD/GD+M from ``init``, one run per β at one η: the arrays both toys share."""
    betas = np.asarray(betas, dtype=np.float64)
    eta = float(eta)
    h = raw_step(eta, betas)
    x0 = np.tile(np.asarray(init, dtype=np.float64), (betas.size, 1))
    res = run(problem, x0, h, betas, int(steps), record_every=int(record_every))
    final = res.final
    arrays = {
        "beta": betas,
        "eta": np.full(betas.size, eta),
        "h": h,
        "steps": res.steps,
        "w": res.x,
        "final_w": final,
        "final_loss": problem.loss(final),
        "final_sharpness": _sharpness(problem, final),
        "diverged_step": res.diverged_step,
    }
    return arrays


def _sharpness(problem, w):
    """λ_max of the closed-form Hessian; NaN for diverged (NaN) points."""
    w = np.asarray(w, dtype=np.float64)
    out = np.full(w.shape[:-1], np.nan)
    ok = np.all(np.isfinite(w), axis=-1)
    out[ok] = problem.sharpness(w[ok])
    return out


def _attrs(problem, init, **extra):
    """The attributes every toy result carries: the problem and its start."""
    return {
        "problem": problem.name,
        "x": float(problem.x),
        "y": float(problem.y),
        "init": list(map(float, init)),
        **extra,
    }


def simulate_two_factor(*, x, y, init, eta, betas, steps, record_every):
    """GD and GD+M on E = ½ (y − w1 w2 x)² (docs/theory.md (T22)), one run per β at fixed η.

    arrays: beta, eta, h (B,); steps (n_rec,); w (n_rec, B, 2); final_w (B, 2);
    final_loss, final_sharpness (λ_max of ∇²E), sharpness_at_min = x²(w1²+w2²),
    diverged_step (B,).
    """
    p = TwoFactor(x=float(x), y=float(y))
    arrays = _gdm(p, init=init, eta=eta, betas=betas, steps=steps, record_every=record_every)
    arrays["sharpness_at_min"] = p.sharpness_at_minimum(arrays["final_w"])
    return arrays, _attrs(p, init, eta=float(eta))


def expansion_parameter(h, beta, lam_max):
    """ε = h λ_max / (1 − β)² = η λ_max / (1 − β), the expansion parameter of the modified
    flows (docs/theory.md (T11), (T45)); λ_max the sharpness (largest eigenvalue of ∇²E)."""
    beta = np.asarray(beta, dtype=np.float64)
    return np.asarray(h, dtype=np.float64) * np.asarray(lam_max, dtype=np.float64) / (1.0 - beta) ** 2


def real_root_bound(beta):
    """1/(1 + √β)²: the largest ε at which the heavy-ball characteristic polynomial
    r² − (1 + β − hλ) r + β has real, positive roots, i.e. hλ ≤ (1 − √β)², so that a slow
    (real) root and a slow manifold exist (docs/theory.md (T51), docs/toy.md "Range of validity")."""
    return 1.0 / (1.0 + np.sqrt(np.asarray(beta, dtype=np.float64))) ** 2


def epsilon_threshold(beta, max_epsilon):
    """The ε up to which a flow-(2) limit claim is judged: min(max_epsilon, 1/(1+√β)²)
    (docs/theory.md (T52))."""
    return np.minimum(float(max_epsilon), real_root_bound(beta))


def _limits(p, w0, E, Bt, steps, flow_time, gtol):
    """GD+M (``steps`` steps from rest at h = η(1−β)), flow (2) and flow (1) limits at the
    (η, β) pairs E, Bt (flat arrays); the arrays of :func:`sharpness_sweep` and its attrs."""
    h = raw_step(E, Bt)
    lam = igr_lambda(h, Bt)
    X0 = np.tile(w0, (E.size, 1))
    steps = int(steps)
    res = run(p, X0, h, Bt, steps, record_every=steps)
    gtol = float(gtol)
    # horizon (flow_time null): the GD+M run's time k h, in the flow's own time t (docs/theory.md (T1))
    t_end = float(flow_time) if flow_time else float(steps * np.min(h))
    f2 = flow2_limit(p, w0, E, Bt, t_end, gtol=gtol)
    f1 = flow1_limit(p, w0, t_end, gtol=gtol)
    w1 = np.tile(f1["w"], (E.size, 1))
    s0 = float(p.sharpness(w0))
    arrays = {
        "eta": E,
        "beta": Bt,
        "h": h,
        "lam": lam,
        "final_w_gdm": res.final,
        "sharpness_gdm": _sharpness(p, res.final),
        "gnorm_gdm": np.sqrt(p.grad_norm2(res.final)),
        "final_w_flow2": f2["w"],
        "sharpness_flow2": _sharpness(p, f2["w"]),
        "flow2_converged": np.full(E.size, f2["converged"]),
        "final_w_flow1": w1,
        "sharpness_flow1": _sharpness(p, w1),
        "sharpness_init": np.full(E.size, s0),
        "diverged_step": res.diverged_step,
    }
    attrs = {
        "sharpness_init": s0,
        "flow2_t": f2["t"],
        "flow2_nfev": f2["nfev"],
        "flow1_t": f1["t"],
        "flow1_converged": f1["converged"],
        "flow2_all_converged": f2["converged"],
        "gtol": gtol,
        "steps": steps,
    }
    return arrays, attrs


def sharpness_sweep(*, eta, betas, steps, flow_time, gtol, two_factor):
    """Limit-point sharpness of GD+M vs flow (2) and flow (1) on toy 1, over β at one η.

    Keywords: one ``eta`` of ``toy.sharpness_sweep.etas`` (one job per η), the other keys of
    ``toy.sharpness_sweep``, and ``two_factor``: the ``toy.two_factor`` section (the problem
    x, y and the start init). GD+M: ``steps`` heavy-ball steps from rest at h = η(1−β).
    Flow (2) at the same (η, β) and flow (1) (the same limit for every β) integrated until
    ‖field‖ < ``gtol``, from the horizon ``flow_time`` (null: the GD+M run's time
    steps · min h) on.
    arrays (N = #β): eta, beta, h, lam, final_w_gdm (N, 2), sharpness_gdm,
    final_w_flow2 (N, 2), sharpness_flow2, flow2_converged, final_w_flow1 (N, 2),
    sharpness_flow1, sharpness_init (λ_max at the start, for ε), diverged_step,
    gnorm_gdm (‖∇E‖ at the GD+M end point).
    """
    p = TwoFactor(x=float(two_factor["x"]), y=float(two_factor["y"]))
    init = two_factor["init"]
    E, Bt = (
        a.ravel()
        for a in np.meshgrid(np.asarray([eta], dtype=np.float64), np.asarray(betas, dtype=np.float64), indexing="ij")
    )
    arrays, extra = _limits(p, np.asarray(init, dtype=np.float64), E, Bt, steps, flow_time, gtol)
    return arrays, _attrs(p, init, **extra)


def limit_convergence(*, betas, eps, time, gtol, two_factor):
    """Convergence in η of GD+M's limit point to flow (2)'s at fixed β (docs/toy.md,
    "Range of validity"; expected order docs/theory.md (T53)).

    Keywords: the keys of ``toy.limit_convergence`` and ``two_factor``, the
    ``toy.two_factor`` section (x, y, init). For each β and each ε of ``eps`` (the expansion
    parameter at the start, docs/theory.md (T11)): η = ε (1−β) / λ_max(∇²E(x₀)). Every run
    takes the same number of steps, ⌈``time`` / min η⌉ (``time``: the gradient-flow time η k
    the slowest run covers), and the flows run until ‖field‖ < ``gtol``. arrays: those of
    :func:`sharpness_sweep` (N = #β · #ε, β-major) plus eps_target (the ε asked for).
    """
    p = TwoFactor(x=float(two_factor["x"]), y=float(two_factor["y"]))
    init = two_factor["init"]
    w0 = np.asarray(init, dtype=np.float64)
    s0 = float(p.sharpness(w0))
    Bt, Ep = (
        a.ravel()
        for a in np.meshgrid(np.asarray(betas, dtype=np.float64), np.asarray(eps, dtype=np.float64), indexing="ij")
    )
    E = Ep * (1.0 - Bt) / s0
    steps = int(math.ceil(float(time) / float(np.min(E))))
    arrays, extra = _limits(p, w0, E, Bt, steps, None, gtol)
    arrays["eps_target"] = Ep
    return arrays, _attrs(p, init, **extra)


def simulate_sigmoid(*, x, y, init, eta, betas, steps, record_every, flow_time, reg_flow_time, flow_points, gtol):
    """GD/GD+M on E = ½ (y − w1 σ(w2 x))² (docs/theory.md (T25), (T27)), plus two ODE flows
    from the same init: the gradient flow of E, x' = −∇E, over ``flow_time``
    (default: the GD run's time steps·η), and the implicit-regulariser flow
    x' = −∇‖∇E‖² = −2 H ∇E, run until ‖∇‖∇E‖²‖ < gtol (or over ``reg_flow_time``).
    Both sampled from the dense solution at ``flow_points`` times (0 and geometric).

    arrays: as :func:`simulate_two_factor` (without sharpness_at_min) plus
    flow_E_t (n,), flow_E_w (n, 2), flow_R_t (n,), flow_R_w (n, 2).
    """
    p = SigmoidFactor(x=float(x), y=float(y))
    arrays = _gdm(p, init=init, eta=eta, betas=betas, steps=steps, record_every=record_every)
    w0 = np.asarray(init, dtype=np.float64)[None]
    tE = float(flow_time) if flow_time else float(steps) * float(eta)
    fE = solve_flow(p.grad, w0, tE, t_eval=_flow_times(tE, flow_points), **FLOW_TOL)  # gradient flow of E
    tR, conv_R = _regulariser_horizon(p, w0, reg_flow_time, gtol)
    fR = solve_flow(p.grad_norm2_grad, w0, tR, t_eval=_flow_times(tR, flow_points), **FLOW_TOL)  # x' = −∇‖∇E‖²
    arrays.update(
        {
            "flow_E_t": fE["t_eval"],
            "flow_E_w": fE["w_eval"][:, 0],
            "flow_R_t": fR["t_eval"],
            "flow_R_w": fR["w_eval"][:, 0],
        }
    )
    attrs = _attrs(
        p,
        init,
        eta=float(eta),
        flow_E_time=tE,
        flow_R_time=tR,
        flow_R_converged=conv_R if conv_R is not None else "not checked",
        flow_E_end=fE["w"][0].tolist(),
        flow_R_end=fR["w"][0].tolist(),
        flow_E_gnorm=float(fE["gnorm"][0]),
        flow_R_gnorm=float(fR["gnorm"][0]),
    )
    return arrays, attrs


def _flow_times(t_end, flow_points):
    """0 and ``flow_points`` − 1 geometric times up to ``t_end``: where a flow is sampled."""
    return np.concatenate([[0.0], np.geomspace(t_end * 1e-6, t_end, int(flow_points) - 1)])


def _regulariser_horizon(p, w0, reg_flow_time, gtol):
    """(time, converged) of the regulariser flow: ``reg_flow_time`` when set (not checked:
    None), else the time it takes to converge to ‖∇‖∇E‖²‖ < gtol from ``w0``."""
    if reg_flow_time:
        return float(reg_flow_time), None
    probe = solve_flow(p.grad_norm2_grad, w0, 10.0, gtol=float(gtol), **FLOW_TOL)
    return probe["t"], probe["converged"]
