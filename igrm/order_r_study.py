"""Error orders of GD+M against its order-R modified flows, R = 1…5 (docs/modified_flows.md §8).

For each R: heavy ball started on the slow manifold of the order-R flow ((M20), error
O(h^{R+1})) against, from x₀, the order-R flow (M19) (expected global error O(h^R)) and its
ablation (expected O(h^{R−1})): the order-R flow without its new nonlinear terms (the trees
with R nodes that are not chains, i.e. that need ∇³E or higher) where E has them, without
all of f_{R−1} otherwise (quadratic E, or R ≤ 2 where every tree is a chain). Fields are
SymPy expressions of the concrete loss (igrm.order_r_flows.flow_expression), lambdified; the
references are one stacked DOP853 solve per R, bounded by a rerun at check_factor × looser
tolerances (reference_error), or, where that floor is not floor_factor × under the errors,
longdouble RK4 on heavy ball's grid (igrm.precise_flow, (M25)).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from . import flows as F
from . import order_r_flows as T
from . import precise_flow as P
from .orders import floor_ratio, h_values, lstsq_setup, n_steps, spectral_radius
from .problems import SigmoidFactor, TwoFactor

KINDS = ("flow", "ablation")


def loss_expression(problem, xs):
    """E as a SymPy expression of the coordinates ``xs`` for the toys and least squares
    (docs/theory.md (T22), (T25); LeastSquares: ½ xᵀHx − (Aᵀb/n)ᵀx up to a constant)."""
    if isinstance(problem, TwoFactor):
        return sp.Rational(1, 2) * (sp.nsimplify(problem.x) * xs[0] * xs[1] - sp.nsimplify(problem.y)) ** 2
    if isinstance(problem, SigmoidFactor):
        s = 1 / (1 + sp.exp(-sp.nsimplify(problem.x) * xs[1]))
        return sp.Rational(1, 2) * (xs[0] * s - sp.nsimplify(problem.y)) ** 2
    H = problem.H
    c = problem.A.T @ problem.b / problem.A.shape[0]
    x = sp.Matrix(xs)
    return (x.T * sp.Matrix(H) * x)[0] / 2 - (sp.Matrix(c).T * x)[0]


def setup(problem: str, *, two_factor, sigmoid, lstsq):
    """(problem, x₀, T) of one of the three problems, from its section."""
    if problem == "two_factor":
        s = two_factor
        return TwoFactor(x=s["x"], y=s["y"]), np.asarray(s["init"], dtype=np.float64), float(s["T"])
    if problem == "sigmoid":
        s = sigmoid
        return SigmoidFactor(x=s["x"], y=s["y"]), np.asarray(s["init"], dtype=np.float64), float(s["T"])
    if problem == "lstsq":
        return lstsq_setup(**lstsq)
    raise ValueError(
        f"unknown problem {problem!r}: expected two_factor, sigmoid or lstsq (orders.higher.any_order.problems)"
    )


def ablated_trees(R: int, nonlinear: bool) -> tuple:
    """The trees the ablation of order R drops: the non-chain trees with R nodes on a loss with
    ∇³E ≢ 0 (R ≥ 3), else every tree with R nodes (f_{R−1} entirely)."""
    new = T.trees(R)
    if nonlinear and any(not T.is_chain(t) for t in new):
        return tuple(t for t in new if not T.is_chain(t))
    return new


def compiled_fields(problem, R: int, beta: float, dtype=np.float64):
    """(field, ablation, start): numpy callables of (X (lanes, d), h (lanes,)) for the order-R
    flow (M19), its ablation and x_{−1} − x₀ (M20), for one β; ``dtype`` longdouble: compiled
    for igrm.precise_flow (rational coefficients exact to longdouble)."""
    xs = sp.symbols(f"x0:{problem.dim}")
    h = sp.Symbol("h")
    E = loss_expression(problem, xs)
    b = sp.nsimplify(beta)
    drop = ablated_trees(R, not getattr(problem, "third_vanishes", False))
    exprs = {
        "flow": T.flow_expression(E, xs, R, h, b),
        "ablation": T.flow_expression(E, xs, R, h, b, drop=drop),
        "start": T.start_expression(E, xs, R, h, b),
    }
    out = {}
    for k, e in exprs.items():
        if dtype == np.float64:
            fn = sp.lambdify((*xs, h), e, modules="numpy", cse=True)
        else:
            fn = P.lambdify_longdouble((*xs, h), e)

        def call(X, hh, fn=fn):
            cols = fn(*(X[:, i] for i in range(X.shape[1])), hh)
            return np.stack([np.broadcast_to(np.asarray(c, dtype=dtype), hh.shape) for c in cols], axis=-1)

        out[k] = call
    return out


def _stacked(fields, Hn: int):
    """The field of the stacked lanes [flow at each h | ablation at each h], (2H, d)."""
    return lambda Y, hh: np.concatenate([fields["flow"](Y[:Hn], hh[:Hn]), fields["ablation"](Y[Hn:], hh[Hn:])])


def _solve(fields, starts, hs, T_end, rtol, atol):
    """One stacked DOP853 solve, lanes [flow at each h | ablation at each h], dense; returns
    (the states at times t: callable t → (len t, lanes, d), nfev)."""
    Hn = len(hs)
    hh = np.concatenate([hs, hs])
    f = _stacked(fields, Hn)
    d = starts.shape[1]

    def rhs(t, y):
        return f(y.reshape(2 * Hn, d), hh).ravel()

    y0 = np.concatenate([starts, starts]).ravel()
    sol = solve_ivp(rhs, (0.0, T_end), y0, method="DOP853", rtol=rtol, atol=atol, dense_output=True)
    if not sol.success:
        raise RuntimeError(f"reference solve failed: {sol.message}")
    return lambda t: sol.sol(t).T.reshape(len(np.atleast_1d(t)), len(hh), d), sol.nfev


def _solve_precise(fields_ld, starts, hs, n, dt: float, coarse: bool):
    """The stacked lanes by longdouble RK4 on heavy ball's grid (igrm.precise_flow, (M25)):
    m = substeps(h, dt) per step, or m/2 (``coarse``, the check); same interface as _solve."""
    Hn = len(hs)
    m = P.substeps(hs, dt) // (2 if coarse else 1)
    m2, n2 = np.concatenate([m, m]), np.concatenate([n, n])
    traj = P.rk4_on_grid(_stacked(fields_ld, Hn), np.concatenate([starts, starts]), np.concatenate([hs, hs]), n2, m2)
    return lambda t: traj[: len(np.atleast_1d(t))], int(4 * (n2 * m2).max())


def _nanmax(a) -> float:
    """max of a, inf if any entry is inf (a diverged run), nan if any is nan."""
    a = np.asarray(a)
    if not np.all(np.isfinite(a)):
        return math.inf if np.any(np.isinf(a)) else math.nan
    return float(a.max())


def _flow_errors(refs, X, h, n, err, ref, R: int) -> None:
    """Fill err, ref (2, H) for one R: the heavy-ball run X against the order-R flow and its
    ablation from x₀ (``refs``: the reference and its check, callables t → states of every lane)."""
    sol, loose = refs
    for j in range(len(h)):
        t = np.arange(n[j] + 1) * h[j]
        S, L = sol(t), loose(t)
        for k in range(1 if R == 1 else 2):  # R = 1: nothing to drop (f₀ is the flow)
            lane = k * len(h) + j
            err[k, j] = _nanmax(np.linalg.norm(X[: n[j] + 1, j] - S[:, lane], axis=-1).astype(np.float64))
            ref[k, j] = float(np.max(np.linalg.norm(S[:, lane] - L[:, lane], axis=-1)))


def _references(problem, R: int, beta: float, fields, X, X0, h, n, T_end, tols, err, ref) -> tuple[str, int]:
    """err, ref for one R from DOP853 (rtol, atol; check: ×check_factor looser); where its floor
    is not floor_factor × under every error, again from the longdouble RK4 reference (M25).
    Returns (the reference used, its field evaluations)."""
    rtol, atol, check, factor, dt = (float(v) for v in tols)
    sol, nfev = _solve(fields, X0, h, T_end, rtol, atol)
    loose, _ = _solve(fields, X0, h, T_end, rtol * check, atol * check)
    _flow_errors((sol, loose), X, h, n, err, ref, R)
    if not floor_ratio(err, ref) < factor:
        return "DOP853", nfev
    ld = compiled_fields(problem, R, beta, dtype=np.longdouble)
    fine, nfev = _solve_precise(ld, X0, h, n, dt, coarse=False)
    coarse, _ = _solve_precise(ld, X0, h, n, dt, coarse=True)
    _flow_errors((fine, coarse), X, h, n, err, ref, R)
    return "RK4 longdouble", nfev


def _polynomial_loss(problem):
    """(E, xs) as SymPy for the polynomial losses (two-factor, least squares), else None."""
    if isinstance(problem, SigmoidFactor):
        return None
    xs = sp.symbols(f"x0:{problem.dim}")
    return loss_expression(problem, xs), xs


def _gd_errors(E_sym, R: int, beta: float, X, X0, h, n, out) -> None:
    """Fill out (H,): heavy ball X against gradient descent with step h on the order-R
    modified loss (M23), from x₀, over each run's steps."""
    from .order_r_losses import modified_loss

    E, xs = E_sym
    Et, _ = modified_loss(E, xs, R, sp.nsimplify(beta))
    if Et is None:
        return
    grad = sp.lambdify((*xs, sp.Symbol("h")), [sp.diff(Et, v) for v in xs], modules="numpy", cse=True)
    Y = X0.copy()
    out[:] = 0.0
    for step in range(1, int(n.max()) + 1):
        G = grad(*(Y[:, i] for i in range(Y.shape[1])), h)
        Y = Y - h[:, None] * np.stack([np.broadcast_to(g, h.shape) for g in G], axis=-1)
        live = step <= n
        out[live] = np.maximum(out[live], np.linalg.norm(Y[live] - X[step, live], axis=-1))


def order_r_error_orders(
    *,
    problem: str,
    beta,
    orders,
    h_grid,
    rtol,
    atol,
    check_factor,
    floor_factor,
    precise_step,
    two_factor,
    sigmoid,
    lstsq,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Global errors of GD+M against the order-R flow and its ablation, R in ``orders``.

    Keywords: one ``problem`` and ``beta`` of ``orders.higher.any_order`` (problems, betas),
    its orders, h_grid (as orders.gdm.h_grid), rtol, atol, check_factor, floor_factor,
    precise_step, its ``sigmoid`` section and the ``two_factor``, ``lstsq`` sections of
    orders.gdm. The reference is DOP853 (rtol, atol); for an order R where its floor is not
    ``floor_factor`` × under every error, longdouble RK4 with steps ≤ ``precise_step``
    (igrm.precise_flow, (M25)).

    Arrays: h, eps, n_steps (H,); orders (R,); errors, reference_error (R, 2, H) for
    KINDS = (flow, ablation): max_k ‖x_k − X(kh)‖ over [0, T] and the largest gap between the
    reference and its check (DOP853: looser rerun; RK4: half the steps); reference_method (R,)
    which reference. gd_errors (R, H): max_k ‖x_k − y_k‖ between heavy ball and
    gradient descent y_{k+1} = y_k − h∇Ẽ(y_k), y_0 = x₀, on the order-R modified loss of
    igrm.order_r_losses.modified_loss (M23); NaN where E is not a polynomial (sigmoid) or no
    such loss exists.
    """
    t0 = time.perf_counter()
    name = problem
    problem, x0, T_end = setup(name, two_factor=two_factor, sigmoid=sigmoid, lstsq=lstsq)
    beta = float(beta)
    L0 = spectral_radius(problem, x0)
    h, eps = h_values(h_grid, beta, L0)
    n = n_steps(T_end, h)
    Rs = np.array(sorted(int(r) for r in orders))
    err = np.full((len(Rs), 2, len(h)), np.nan)
    ref = np.full_like(err, np.nan)
    gd_err = np.full((len(Rs), len(h)), np.nan)
    nfev, method = 0, []
    E_sym = _polynomial_loss(problem)
    for ri, R in enumerate(Rs):
        fields = compiled_fields(problem, int(R), beta)
        X0 = np.tile(x0, (len(h), 1))
        X = F.heavy_ball(problem, X0, X0 + fields["start"](X0, h), beta, h, n)
        tols = (rtol, atol, check_factor, floor_factor, precise_step)
        used, ev = _references(problem, int(R), beta, fields, X, X0, h, n, T_end, tols, err[ri], ref[ri])
        method.append(used)
        nfev += ev
        if E_sym is not None:
            _gd_errors(E_sym, int(R), beta, X, X0, h, n, gd_err[ri])
    arrays = {"h": h, "eps": eps, "n_steps": n, "x0": x0, "orders": Rs, "kinds": np.array(KINDS)}
    arrays.update({"errors": err, "reference_error": ref, "gd_errors": gd_err, "reference_method": np.array(method)})
    attrs = {
        "kind": "order_r",
        "problem": name,
        "beta": beta,
        "T": T_end,
        "L0": L0,
        "rtol": float(rtol),
        "atol": float(atol),
        "check_factor": float(check_factor),
        "floor_factor": float(floor_factor),
        "precise_step": float(precise_step),
        "min_floor_ratio": floor_ratio(err, ref),
        "reference_error_max": float(np.nanmax(ref)),
        "min_error": float(np.nanmin(err)),
        "nfev": int(nfev),
        "diverged": bool(not np.all(np.isfinite(err))),
        "runtime_s": time.perf_counter() - t0,
    }
    return arrays, attrs
