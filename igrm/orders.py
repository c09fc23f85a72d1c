"""Error orders of heavy-ball momentum against its modified flows: the simulations
(``gdm_error_orders``, ``sgdm_error_orders``: keyword-only arguments, the keys of the
config sections ``orders.gdm`` / ``orders.sgdm`` for one β, no defaults) and the statistics
of their results (``loglog_slope``, ``fit_slopes``, expected slopes). Tidy tables are in
:mod:`igrm.tidy.orders`, claims rows in :mod:`igrm.claims.orders`, figures in
:mod:`igrm.figures.orders`.

Global error of a run of N = ⌊T/h⌋ steps against a flow x̃:
    e(h) = max_{k: t_k = kh ∈ window} ‖x_k − x̃(t_k)‖
with window "all" (0 ≤ t_k ≤ T) or "late" (t_burn ≤ t_k ≤ T). The derivations and the
expected slopes are in docs/modified_flows.md (equations M1–M13).

Comparisons (GD+M; each against flow (1) and flow (2), docs/theory.md (T5), (T6)):
    naive      heavy ball from rest (x_{−1} = x_0)       vs the flow from x_0
    manifold   x_{−1} on the slow manifold to O(h)  (M7)  vs the flow from x_0
    manifold2  x_{−1} on the slow manifold to O(h²) (M7)  vs the flow from x_0
    shifted    heavy ball from rest                       vs the flow from x_0 + rest offset (M4)
Beyond the paper (docs/modified_flows.md §7, docs/theory.md (T86)–(T95)):
    manifold3  x_{−1} on the slow manifold to O(h³) (T88) vs flow (2), flow (3) (T87) and
               flow (3) without its T term, from x_0
    shifted3   heavy ball from rest vs flow (3) from x_0 + Δ₂ (T94), t ≥ t_burn
    series     lstsq, exact slow start vs the order-R truncations of log r₁(hλ)/h (T91)
    limit      (igrm.higher_limits) limit sharpness of GD+M from rest vs the flows' limits (T95)
SGD+M (two-factor stream, docs/theory.md (T19), (T21)):
    sgdm                 discrete SGD+M from rest vs the piecewise SGD+M flow from x_0,
                         with and without its h/4 terms (RMS over sample streams)
    sgdm_deterministic   the same on the constant stream x_r ≡ 1, y_r ≡ 0.6, plus
                         flow (2) and flow (1) from x_0 (M12)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from . import flows as F
from .problems import LeastSquares, Problem, TwoFactor

COMPARISONS = ("naive", "manifold", "manifold2", "shifted")
FLOWS = ("flow (1)", "flow (2)")
WINDOWS = ("all", "late")
SGDM_FLOWS = ("SGD+M flow", "SGD+M flow without h/4 terms")
DET_FLOWS = ("SGD+M flow", "SGD+M flow without h/4 terms", "flow (2)", "flow (1)")

#: the window each comparison is judged on: the shifted flow starts O(h) away from x_0
#: by construction, so its all-window error is O(h) at k = 0 (eq. M6); it is judged on
#: t ≥ t_burn, after the parasitic β^k transient has died out.
PRIMARY_WINDOW = {
    "naive": "all",
    "manifold": "all",
    "manifold2": "all",
    "shifted": "late",
    "sgdm": "all",
    "sgdm_deterministic": "all",
    "manifold3": "all",
    "series": "all",
    "shifted3": "late",
    "limit": "all",
    "order_r": "all",
    "gd_loss": "all",
    "limit_slow": "all",
}


def gd_label(R: int) -> str:
    """The name of gradient descent on the order-R modified loss (comparison gd_loss,
    docs/modified_flows.md §8.5; its order-(R−1) truncation is the order-(R−1) row)."""
    return f"GD on the order-{R} modified loss"


#: expected slopes (docs/modified_flows.md §5), by (comparison, flow, window)
EXPECTED = {
    ("naive", "flow (1)", "all"): 1,
    ("naive", "flow (2)", "all"): 1,
    ("naive", "flow (1)", "late"): 1,
    ("naive", "flow (2)", "late"): 1,
    ("manifold", "flow (1)", "all"): 1,
    ("manifold", "flow (2)", "all"): 2,
    ("manifold", "flow (1)", "late"): 1,
    ("manifold", "flow (2)", "late"): 2,
    ("manifold2", "flow (1)", "all"): 1,
    ("manifold2", "flow (2)", "all"): 2,
    ("manifold2", "flow (1)", "late"): 1,
    ("manifold2", "flow (2)", "late"): 2,
    ("shifted", "flow (1)", "all"): 1,
    ("shifted", "flow (2)", "all"): 1,
    ("shifted", "flow (1)", "late"): 1,
    ("shifted", "flow (2)", "late"): 2,
    ("sgdm", "SGD+M flow", "all"): 2,
    ("sgdm", "SGD+M flow without h/4 terms", "all"): 1,
    ("sgdm_deterministic", "SGD+M flow", "all"): 2,
    ("sgdm_deterministic", "SGD+M flow without h/4 terms", "all"): 1,
    ("sgdm_deterministic", "flow (2)", "all"): 1,
    ("sgdm_deterministic", "flow (1)", "all"): 1,
    # beyond the paper (docs/modified_flows.md §7): slow-manifold start to O(h³) (T88)
    ("manifold3", "flow (2)", "all"): 2,
    ("manifold3", "flow (3)", "all"): 3,
    ("manifold3", "flow (3) without T term", "all"): 2,
    ("shifted3", "flow (3)", "late"): 3,  # from rest vs flow (3) from x_0 + Δ₂ (T94)
    # limit sharpness of GD+M from rest vs the flows' limits, in h at fixed β (T95)
    ("limit", "flow (2)", "all"): 2,
    ("limit", "flow (3)", "all"): 2,
    ("limit", "flow (3) from x_0 + Delta_2", "all"): 3,
    # quadratic loss, exact slow start: the order-R truncation of the exact series (T91)
    **{("series", f"order {R}", "all"): R for R in range(1, 11)},
    # any order R (docs/modified_flows.md §8, (M19)-(M21)): the order-R flow and its ablation
    **{("order_r", f"order-{R} flow", "all"): R for R in range(1, 6)},
    **{("order_r", f"order-{R} flow without its new term", "all"): R - 1 for R in range(2, 6)},
    # heavy ball vs gradient descent on its order-R modified loss (M23)
    **{("gd_loss", gd_label(R), "all"): R for R in range(1, 6)},
    # limit sharpness of GD+M (slow start to matching order) vs the order-R flow's limit (M24)
    **{("limit_slow", f"order-{R} flow", "all"): R for R in range(1, 6)},
}


# --------------------------------------------------------------------------------------
# problems and step sizes
# --------------------------------------------------------------------------------------


def two_factor_setup(*, x, y, init, T) -> tuple[Problem, np.ndarray, float]:
    """The two-factor problem of ``orders.gdm.two_factor``: (problem, x_0, T)
    (docs/theory.md (T22))."""
    problem = TwoFactor(x=x, y=y)
    return problem, _point(problem, init), float(T)


def lstsq_setup(*, dim, n, cond, seed, init_seed, init_scale, T) -> tuple[Problem, np.ndarray, float]:
    """The least-squares problem of ``orders.gdm.lstsq``: (problem, x_0, T); x_0 is
    init_scale × a standard normal vector drawn with init_seed."""
    problem = LeastSquares.random(dim=dim, n=n, cond=cond, seed=seed)
    rng = np.random.default_rng(int(init_seed))
    return problem, float(init_scale) * rng.standard_normal(problem.dim), float(T)


#: the problems of orders.gdm.problems, each set up from its config section
SETUPS = {"two_factor": two_factor_setup, "lstsq": lstsq_setup}


def _point(problem: Problem, init) -> np.ndarray:
    x0 = np.asarray(init, dtype=np.float64)
    if x0.shape != (problem.dim,):
        raise ValueError(f"init must have {problem.dim} entries, got shape {x0.shape}")
    return x0


def spectral_radius(problem: Problem, x0) -> float:
    """L0 = max |eig ∇²E(x_0)|, the curvature scale of the ε units."""
    return float(np.abs(np.linalg.eigvalsh(problem.hess(np.asarray(x0, dtype=np.float64)))).max())


def h_values(h_grid: Mapping[str, Any], beta: float, L0: float) -> tuple[np.ndarray, np.ndarray]:
    """Geometric grid of ``num`` values in [min, max]; returns (h, ε) with ε = h L0/(1−β)².

    units "eps": the grid is in ε, the small parameter of the modified-equation
    expansion of heavy ball (docs/modified_flows.md §1), so one grid fits every β and
    problem; units "h": the grid is in h directly.
    """
    g = np.geomspace(float(h_grid["min"]), float(h_grid["max"]), int(h_grid["num"]))
    units = h_grid["units"]
    scale = (1.0 - beta) ** 2 / L0
    if units == "eps":
        return g * scale, g
    if units == "h":
        return g, g / scale
    raise ValueError(f"h_grid units must be 'eps' or 'h', got {units!r}")


def n_steps(T: float, h: np.ndarray) -> np.ndarray:
    """N = ⌊T/h⌋ steps per h (with a 1e-12 relative allowance, so that T/h a whole number
    in exact arithmetic is not rounded down)."""
    return np.floor(T / h * (1 + 1e-12)).astype(np.int64)


# --------------------------------------------------------------------------------------
# GD+M
# --------------------------------------------------------------------------------------


def setup_problem(problem: str, sections: Mapping[str, Mapping[str, Any]]) -> tuple[Problem, np.ndarray, float]:
    """(problem, x_0, T) of the error-order problem named ``problem``, set up from its own
    section of ``sections`` (orders.gdm.two_factor, orders.gdm.lstsq; a missing or unknown
    key is a TypeError)."""
    if problem not in SETUPS:
        raise ValueError(f"unknown error-order problem {problem!r}; expected one of {', '.join(SETUPS)}")
    return SETUPS[problem](**sections[problem])


def gdm_error_orders(
    *, problem: str, beta, h_grid, t_burn_fraction, rtol, atol, check_factor, two_factor, lstsq
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Global errors of GD+M against flows (1) and (2) for four starts, over an h grid.

    Keywords: the section ``orders.gdm`` for one job: ``problem`` (two_factor | lstsq) and
    ``beta`` in place of its grids ``problems`` and ``betas``; h_grid, t_burn_fraction (the
    "late" window starts at t_burn = t_burn_fraction · T), rtol, atol, check_factor; and the
    problems' own sections ``two_factor``, ``lstsq`` (:func:`two_factor_setup`,
    :func:`lstsq_setup`), of which the job's ``problem`` is used.

    Arrays: h, eps, n_steps (H,); x0 (d,); errors, errors_late, reference_error (C, F, H)
    with C = comparisons (naive, manifold, manifold2, shifted) and F = flows (flow (1),
    flow (2)); comparisons (C,), flows (F,) labels. ``reference_error`` is the largest
    difference between the DOP853 reference and a rerun at check_factor × looser
    tolerances, over the same points — an upper bound of the reference's own error.
    """
    t_start = time.perf_counter()
    name = problem
    problem, x0, T = setup_problem(name, {"two_factor": two_factor, "lstsq": lstsq})
    beta = float(beta)
    t_burn = float(t_burn_fraction * T)
    L0 = spectral_radius(problem, x0)
    h, eps = h_values(h_grid, beta, L0)
    n = n_steps(T, h)
    X = _gdm_runs(problem, x0, beta, h, n)
    t_hb = time.perf_counter()
    sol, loose = _gdm_references(problem, x0, beta, h, T, rtol, atol, check_factor)
    t_ode = time.perf_counter()
    err, err_late, ref_err = _gdm_errors(X, sol, loose, h, n, t_burn)
    t_end = time.perf_counter()

    arrays = {
        "h": h,
        "eps": eps,
        "n_steps": n,
        "x0": x0,
        "errors": err,
        "errors_late": err_late,
        "reference_error": ref_err,
        "comparisons": np.array(COMPARISONS),
        "flows": np.array(FLOWS),
    }
    attrs = {
        "kind": "gdm",
        "problem": name,
        "beta": beta,
        "T": T,
        "t_burn": t_burn,
        "L0": L0,
        "rtol": rtol,
        "atol": atol,
        "check_factor": check_factor,
        "reference_error_max": float(np.nanmax(ref_err)),
        "min_error": float(np.nanmin(np.concatenate([err.ravel(), err_late.ravel()]))),
        "nfev": int(sol.nfev),
        "runtime_s": t_end - t_start,
        "runtime_heavy_ball_s": t_hb - t_start,
        "runtime_ode_s": t_ode - t_hb,
        "runtime_eval_s": t_end - t_ode,
    }
    attrs["diverged"] = bool(not np.all(np.isfinite(err)))
    return arrays, attrs


def _gdm_runs(problem: Problem, x0, beta: float, h, n) -> np.ndarray:
    """The discrete runs, lanes [from rest | slow manifold to O(h) | to O(h²)] (eq. M7),
    each over the h grid: (max n + 1, 3 H, d)."""
    Hn = len(h)
    X0 = np.tile(x0, (3 * Hn, 1))
    Xp = np.concatenate(
        [
            np.tile(x0, (Hn, 1)),
            F.slow_manifold_prev(problem, x0, beta, h, order=1),
            F.slow_manifold_prev(problem, x0, beta, h, order=2),
        ]
    )
    return F.heavy_ball(problem, X0, Xp, beta, np.tile(h, 3), np.tile(n, 3))


def _gdm_references(problem: Problem, x0, beta: float, h, T: float, rtol, atol, check_factor):
    """The reference flows as one stacked DOP853 system, lanes [flow (1) from x0 | flow (2)_h
    from x0 | flow (1) and flow (2)_h from the shifted start x0 + rest offset (eq. M4)],
    dense; and the same at check_factor × looser tolerances: (sol, loose)."""
    Hn = len(h)
    shifted = x0 + F.rest_offset(problem, x0, beta, h)
    lam = F.flow2_lambda(beta, h)
    starts = np.concatenate([x0[None], np.tile(x0, (Hn, 1)), shifted, shifted])
    lams = np.concatenate([[0.0], lam, np.zeros(Hn), lam])
    sol = F.solve_lanes(problem, starts, beta, lams, [T], rtol=rtol, atol=atol, dense_output=True)
    loose = F.solve_lanes(
        problem, starts, beta, lams, [T], rtol=rtol * check_factor, atol=atol * check_factor, dense_output=True
    )
    return sol, loose


def _gdm_errors(X, sol, loose, h, n, t_burn: float):
    """(errors, errors_late, reference_error), each (C, F, H): the largest distance of each
    comparison's run from its flow over all of [0, T] and over t ≥ t_burn, and of the
    reference from its looser rerun."""
    Hn = len(h)
    C, Fn = len(COMPARISONS), len(FLOWS)
    err = np.full((C, Fn, Hn), np.nan)
    err_late = np.full((C, Fn, Hn), np.nan)
    ref_err = np.full((C, Fn, Hn), np.nan)
    for j in range(Hn):
        t = np.arange(n[j] + 1) * h[j]
        late = t >= t_burn
        R = sol(t)
        Rl = loose(t)
        lanes_x0 = (0, 1 + j)  # flow (1), flow (2)_h from x0
        lanes_sh = (1 + Hn + j, 1 + 2 * Hn + j)  # the same from the shifted start
        paths = {
            "naive": X[: n[j] + 1, j],
            "manifold": X[: n[j] + 1, Hn + j],
            "manifold2": X[: n[j] + 1, 2 * Hn + j],
            "shifted": X[: n[j] + 1, j],
        }
        for ci, comp in enumerate(COMPARISONS):
            lanes = lanes_sh if comp == "shifted" else lanes_x0
            for fi, lane in enumerate(lanes):
                dist = np.linalg.norm(paths[comp] - R[:, lane], axis=-1)
                err[ci, fi, j] = _nanmax(dist)
                err_late[ci, fi, j] = _nanmax(dist[late])
                ref_err[ci, fi, j] = np.max(np.linalg.norm(R[:, lane] - Rl[:, lane], axis=-1))
    return err, err_late, ref_err


def _nanmax(a) -> float:
    a = np.asarray(a)
    if a.size == 0:
        return math.nan
    if not np.all(np.isfinite(a)):
        return math.inf if np.any(np.isinf(a)) else math.nan
    return float(a.max())


# --------------------------------------------------------------------------------------
# GD+M beyond the paper: the O(h³) flow and the linear series (docs/modified_flows.md §7)
# --------------------------------------------------------------------------------------

#: flows of the O(h³) study: flow (2) (T6), the O(h³) flow (T87) and its ablation
#: without the third-derivative term (only where ∇³E ≢ 0: on a quadratic it equals the O(h³) flow)
HIGHER_FLOWS = ("flow (2)", "flow (3)", "flow (3) without T term")


def gdm3_error_orders(
    *, problem: str, beta, h_grid, t_burn_fraction, rtol, atol, check_factor, two_factor, lstsq, series_orders
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Global errors of GD+M started on its slow manifold to O(h³) (T88) against flow (2),
    the O(h³) flow (T87) and its ablation, over an h grid (window: all of [0, T]).

    Also ("shifted3"): GD+M from rest against the O(h³) flow from the shifted start
    x_0 + Δ₂ (T94), on the late window t ≥ t_burn (after the β^k transient, as (M5)):
    shifted3_errors, shifted3_reference_error (H,).

    Keywords: the section ``orders.gdm`` for one job, as :func:`gdm_error_orders` takes it
    (``problem`` and ``beta`` from the grid of ``orders.higher``), and ``series_orders`` of
    ``orders.higher``. On lstsq (quadratic) with ``series_orders`` non-empty the same job
    also runs :func:`series_error_orders` (one job instead of two: the pipeline's cost is
    mostly per-job start-up), stored as series_orders, series_errors (R, H),
    series_reference_error (H,).

    Arrays: h, eps, n_steps (H,); x0 (d,); errors, reference_error (F, H) with F = flows
    (the ablation is left out where ∇³E ≡ 0); flows (F,) labels. ``reference_error``: the
    largest difference between the DOP853 reference and a rerun at check_factor × looser
    tolerances (an upper bound of the reference's own error).
    """
    t_start = time.perf_counter()
    name = problem
    problem, x0, T = setup_problem(name, {"two_factor": two_factor, "lstsq": lstsq})
    beta = float(beta)
    L0 = spectral_radius(problem, x0)
    h, eps = h_values(h_grid, beta, L0)
    n = n_steps(T, h)
    flows = HIGHER_FLOWS[:2] if problem.third_vanishes else HIGHER_FLOWS
    t_burn = float(t_burn_fraction) * T
    X0 = np.tile(x0, (2 * len(h), 1))
    Xp = np.concatenate([F.slow_manifold_prev3(problem, x0, beta, h), np.tile(x0, (len(h), 1))])
    X = F.heavy_ball(problem, X0, Xp, beta, np.tile(h, 2), np.tile(n, 2))  # slow start; from rest
    t_hb = time.perf_counter()
    sol, loose = _gdm3_references(problem, x0, beta, h, T, len(flows), rtol, atol, check_factor)
    t_ode = time.perf_counter()
    err, ref_err, err_sh, ref_sh = _gdm3_errors(X, sol, loose, h, n, t_burn, len(flows))
    t_end = time.perf_counter()
    arrays = {
        "h": h,
        "eps": eps,
        "n_steps": n,
        "x0": x0,
        "errors": err,
        "reference_error": ref_err,
        "flows": np.array(flows),
        "shifted3_errors": err_sh,
        "shifted3_reference_error": ref_sh,
    }
    attrs = {
        "kind": "gdm3",
        "problem": name,
        "beta": beta,
        "T": T,
        "t_burn": t_burn,
        "L0": L0,
        "rtol": float(rtol),
        "atol": float(atol),
        "check_factor": float(check_factor),
        "reference_error_max": float(max(np.nanmax(ref_err), np.nanmax(ref_sh))),
        "min_error": float(min(np.nanmin(err), np.nanmin(err_sh))),
        "nfev": int(sol.nfev),
        "diverged": bool(not (np.all(np.isfinite(err)) and np.all(np.isfinite(err_sh)))),
        "runtime_s": t_end - t_start,
        "runtime_heavy_ball_s": t_hb - t_start,
        "runtime_ode_s": t_ode - t_hb,
        "runtime_eval_s": t_end - t_ode,
    }
    if name == "lstsq" and len(series_orders):
        _add_series(arrays, attrs, beta=beta, h_grid=h_grid, series_orders=series_orders, **lstsq)
    return arrays, attrs


def _gdm3_references(problem: Problem, x0, beta: float, h, T: float, Fn: int, rtol, atol, check_factor):
    """Dense reference solutions, lanes: flow f at step j -> f · H + j (flow (2), flow (3),
    [its ablation]); then flow (3) from x0 + Δ₂ at step j -> Fn · H + j; and the same at
    check_factor × looser tolerances: (sol, loose)."""
    Hn = len(h)
    h1 = np.tile(h, Fn + 1)
    h2 = np.concatenate([np.zeros(Hn), h * h, h * h][:Fn] + [h * h])
    hT = np.concatenate([np.zeros(Hn), h * h, np.zeros(Hn)][:Fn] + [h * h])
    starts = np.concatenate([np.tile(x0, (Fn * Hn, 1)), x0 + F.rest_offset2(problem, x0, beta, h)])
    sol = F.solve_flow3_lanes(problem, starts, beta, h1, h2, hT, T, rtol=float(rtol), atol=float(atol))
    loose = F.solve_flow3_lanes(
        problem,
        starts,
        beta,
        h1,
        h2,
        hT,
        T,
        rtol=float(rtol) * float(check_factor),
        atol=float(atol) * float(check_factor),
    )
    return sol, loose


def _gdm3_errors(X, sol, loose, h, n, t_burn: float, Fn: int):
    """(errors (F, H), reference_error (F, H), shifted3_errors (H,), shifted3_reference_error (H,)):
    the slow-start run (lanes 0..H−1 of X) against each flow over [0, T]; the run from rest
    (lanes H..2H−1) against flow (3) from x0 + Δ₂ over t ≥ t_burn."""
    Hn = len(h)
    err = np.full((Fn, Hn), np.nan)
    ref_err = np.full((Fn, Hn), np.nan)
    err_sh = np.full(Hn, np.nan)
    ref_sh = np.full(Hn, np.nan)
    for j in range(Hn):
        t = np.arange(n[j] + 1) * h[j]
        late = t >= t_burn
        R, Rl = sol(t), loose(t)
        for fi in range(Fn):
            lane = fi * Hn + j
            err[fi, j] = _nanmax(np.linalg.norm(X[: n[j] + 1, j] - R[:, lane], axis=-1))
            ref_err[fi, j] = np.max(np.linalg.norm(R[:, lane] - Rl[:, lane], axis=-1))
        lane = Fn * Hn + j
        err_sh[j] = _nanmax(np.linalg.norm(X[: n[j] + 1, Hn + j] - R[:, lane], axis=-1)[late])
        ref_sh[j] = np.max(np.linalg.norm(R[late, lane] - Rl[late, lane], axis=-1))
    return err, ref_err, err_sh, ref_sh


def _add_series(arrays: dict, attrs: dict, **keys) -> None:
    """The linear-series study of the same lstsq job (:func:`series_error_orders`, on the
    same h grid) added to its arrays and attrs."""
    sa, sat = series_error_orders(**keys)
    np.testing.assert_array_equal(sa["h"], arrays["h"])
    arrays.update(
        {"series_orders": sa["orders"], "series_errors": sa["errors"], "series_reference_error": sa["reference_error"]}
    )
    attrs.update(
        {
            "series_reference_error_max": sat["reference_error_max"],
            "series_min_error": sat["min_error"],
            "runtime_series_s": sat["runtime_s"],
        }
    )
    attrs["diverged"] = attrs["diverged"] or sat["diverged"]


def series_error_orders(
    *, beta, h_grid, series_orders, dim, n, cond, seed, init_seed, init_scale, T
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Global errors of GD+M on the least-squares problem against the modified flows of
    order R truncated from the exact slow-root series (T91), R in ``series_orders``.

    Keywords: one ``beta``, h_grid of ``orders.gdm``, ``series_orders`` of ``orders.higher``
    and the keys of ``orders.gdm.lstsq``. The method starts on its exact slow manifold,
    x_{−1} − x* = V r₁(hΛ)^{−1} Vᵀ (x_0 − x*) (H = VΛVᵀ), so its iterates are
    x_k − x* = V r₁(hΛ)^k Vᵀ(x_0 − x*) up to rounding; the flow of order R is solved exactly,
    x(t) − x* = V exp(t μ_R(Λ)) Vᵀ (x_0 − x*). ``reference_error`` (H,) is the largest
    distance between the heavy-ball run and the exact slow solution: the rounding floor.

    Arrays: h, eps, n_steps (H,); orders (R,); errors (R, H); reference_error (H,).
    """
    t_start = time.perf_counter()
    problem, x0, T = lstsq_setup(dim=dim, n=n, cond=cond, seed=seed, init_seed=init_seed, init_scale=init_scale, T=T)
    beta = float(beta)
    L0 = spectral_radius(problem, x0)
    h, eps = h_values(h_grid, beta, L0)
    Hn = len(h)
    ns = n_steps(T, h)
    lam, V = np.linalg.eigh(problem.H)
    xs = problem.minimiser
    q0 = V.T @ (x0 - xs)  # (d,)
    r1 = F.slow_root(beta, h[:, None] * lam[None, :])  # (H, d)
    prev = xs + (q0[None, :] / r1) @ V.T
    X = F.heavy_ball(problem, np.tile(x0, (Hn, 1)), prev, beta, h, ns)
    orders_ = np.array(sorted(int(r) for r in series_orders))
    err = np.full((len(orders_), Hn), np.nan)
    floor = np.full(Hn, np.nan)
    for j in range(Hn):
        k = np.arange(ns[j] + 1)
        path = X[: ns[j] + 1, j]
        exact = xs + (q0[None, :] * r1[j][None, :] ** k[:, None]) @ V.T
        floor[j] = np.max(np.linalg.norm(path - exact, axis=-1))
        t = k * h[j]
        for ri, R in enumerate(orders_):
            mu = F.series_rate(beta, h[j], lam, int(R))  # (d,)
            flow = xs + (q0[None, :] * np.exp(t[:, None] * mu[None, :])) @ V.T
            err[ri, j] = _nanmax(np.linalg.norm(path - flow, axis=-1))
    t_end = time.perf_counter()
    arrays = {"h": h, "eps": eps, "n_steps": ns, "x0": x0, "orders": orders_, "errors": err, "reference_error": floor}
    attrs = {
        "kind": "series",
        "problem": "lstsq",
        "beta": beta,
        "T": T,
        "L0": L0,
        "reference_error_max": float(np.nanmax(floor)),
        "min_error": float(np.nanmin(err)),
        "diverged": bool(not np.all(np.isfinite(err))),
        "runtime_s": t_end - t_start,
    }
    return arrays, attrs


# --------------------------------------------------------------------------------------
# SGD+M
# --------------------------------------------------------------------------------------


def sgdm_error_orders(
    *, beta, init, h_grid, T, streams, seed, x_mean, slope, x_noise, y_noise, substeps
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Global errors of SGD+M against the piecewise SGD+M flow, over an h grid.

    Keywords: one ``beta`` and the other keys of the config section ``orders.sgdm``.

    Samples: x_r = x_mean + x_noise·N(0,1), y_r = slope·x_r + y_noise·N(0,1), sample r at
    step r for every h, ``streams`` independent streams from ``seed``. Errors are
    max_{kh ≤ T} ‖x_k − x(t_k)‖ per stream; the deterministic stream x_r ≡ x_mean,
    y_r ≡ slope·x_mean is run alongside (against the SGD+M flow and, via the stationary
    coefficients (M12), flow (2) and flow (1)).

    Arrays: h, eps, n_steps (H,); err_full, err_noreg, check_full, check_noreg (S, H)
    (check_* = max difference of the RK flow at substeps vs 2·substeps: the reference
    error); det_err_full, det_err_noreg, det_err_flow2, det_err_flow1 (H,);
    det_check (4, H).
    """
    t_start = time.perf_counter()
    beta = float(beta)
    x0 = np.asarray(init, dtype=np.float64)
    mean_problem = TwoFactor(x=float(x_mean), y=float(slope) * float(x_mean))
    L0 = spectral_radius(mean_problem, x0)
    h, eps = h_values(h_grid, beta, L0)
    T = float(T)
    n = n_steps(T, h)
    N = int(n.max())
    S = int(streams)
    rng = np.random.default_rng(int(seed))
    xs, ys = F.two_factor_stream(
        rng, S, N, x_noise=float(x_noise), y_noise=float(y_noise), x_mean=float(x_mean), slope=float(slope)
    )
    xd = np.full((2, N), float(x_mean))
    yd = np.full((2, N), float(slope) * float(x_mean))
    xs = np.concatenate([xs, xd])
    ys = np.concatenate([ys, yd])
    stationary = np.zeros(S + 2, dtype=bool)
    stationary[-1] = True  # the constant stream with k → ∞ coefficients = flows (2)/(1), eq. M12
    out = F.sgdm_max_errors(x0, xs, ys, beta, h, n, substeps=int(substeps), stationary=stationary)
    t_end = time.perf_counter()

    arrays = {
        "h": h,
        "eps": eps,
        "n_steps": n,
        "x0": x0,
        "err_full": out["full"][:, :S].T,
        "err_noreg": out["noreg"][:, :S].T,
        "check_full": out["full_check"][:, :S].T,
        "check_noreg": out["noreg_check"][:, :S].T,
        "det_err_full": out["full"][:, S],
        "det_err_noreg": out["noreg"][:, S],
        "det_err_flow2": out["full"][:, S + 1],
        "det_err_flow1": out["noreg"][:, S + 1],
        "det_check": np.stack(
            [
                out["full_check"][:, S],
                out["noreg_check"][:, S],
                out["full_check"][:, S + 1],
                out["noreg_check"][:, S + 1],
            ]
        ),
    }
    checks = np.concatenate([out["full_check"].ravel(), out["noreg_check"].ravel()])
    errs = np.concatenate([out["full"].ravel(), out["noreg"].ravel()])
    attrs = {
        "kind": "sgdm",
        "problem": "two_factor",
        "beta": beta,
        "T": T,
        "L0": L0,
        "streams": S,
        "seed": int(seed),
        "substeps": int(substeps),
        "reference_error_max": float(np.nanmax(checks)),
        "min_error": float(np.nanmin(errs)),
        "diverged": bool(not np.all(np.isfinite(errs))),
        "runtime_s": t_end - t_start,
    }
    return arrays, attrs


# --------------------------------------------------------------------------------------
# statistics: fitted orders
# --------------------------------------------------------------------------------------


def flow_labels(R: int) -> tuple[str, str]:
    """The names of the order-R flow and of its ablation (comparison order_r, docs/modified_flows.md §8)."""
    return f"order-{R} flow", f"order-{R} flow without its new term"


def expected_slope(comparison: str, flow: str, window: str = "all") -> float:
    return float(EXPECTED.get((comparison, flow, window), math.nan))


def loglog_slope(h, err) -> tuple[float, float, int]:
    """Least-squares slope of log(err) on log(h) and its standard error (finite,
    positive points only); returns (slope, se, n_points)."""
    h = np.asarray(h, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    ok = np.isfinite(err) & (err > 0) & np.isfinite(h) & (h > 0)
    x, y = np.log(h[ok]), np.log(err[ok])
    n = int(ok.sum())
    if n < 2:
        return math.nan, math.nan, n
    xm = x - x.mean()
    sxx = float(xm @ xm)
    slope = float(xm @ (y - y.mean()) / sxx)
    if n < 3:
        return slope, math.nan, n
    resid = y - y.mean() - slope * xm
    se = math.sqrt(float(resid @ resid) / (n - 2) / sxx)
    return slope, se, n


SLOPE_COLUMNS = [
    "problem",
    "beta",
    "comparison",
    "flow",
    "window",
    "primary",
    "slope",
    "slope_se",
    "n_points",
    "expected_slope",
    "h_min",
    "h_max",
    "eps_max",
    "min_error",
    "max_reference_error",
    "min_error_floor_ratio",
]


def floor_ratio(err, ref) -> float:
    """min over the grid of error / reference error (NaN where no reference error is known)."""
    r = np.asarray(err, dtype=np.float64) / np.asarray(ref, dtype=np.float64)
    return float(np.nanmin(r)) if np.any(np.isfinite(r)) else math.nan


def fit_slopes(df: pd.DataFrame) -> pd.DataFrame:
    """Slope of log(error) vs log(h) over the whole grid for every (problem, β,
    comparison, flow, window); ``primary`` marks the window the comparison is judged on;
    ``min_error_floor_ratio`` is min_h error/reference_error (how far the reference's floor
    lies under the errors)."""
    rows = []
    for (problem, beta, comp, flow, window), g in df.groupby(
        ["problem", "beta", "comparison", "flow", "window"], sort=False
    ):
        slope, se, n = loglog_slope(g["h"], g["error"])
        rows.append(
            {
                "problem": problem,
                "beta": beta,
                "comparison": comp,
                "flow": flow,
                "window": window,
                "primary": PRIMARY_WINDOW.get(comp) == window,
                "slope": slope,
                "slope_se": se,
                "n_points": n,
                "expected_slope": expected_slope(comp, flow, window),
                "h_min": float(g["h"].min()),
                "h_max": float(g["h"].max()),
                "eps_max": float(g["eps"].max()) if "eps" in g else math.nan,
                "min_error": float(g["error"].min()),
                "max_reference_error": float(g["reference_error"].max()),
                "min_error_floor_ratio": floor_ratio(g["error"], g["reference_error"]),
            }
        )
    return pd.DataFrame(rows, columns=SLOPE_COLUMNS)
