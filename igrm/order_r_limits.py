"""What the orders buy: the limit sharpness of GD+M against the limits of its order-R flows,
R = 1…5, on the two-factor toy (docs/modified_flows.md §8.6, (M24), its floor (M26) and the
range of validity (M27)).

GD+M starts on its slow manifold to matching order ((M20), as the error orders of §8.2) and
runs to convergence; the order-R flow (M19) from x₀ runs until ‖field‖ < gtol. Error
δ_S = |S_flow/S_GD+M − 1|, S = λ_max(∇²E) at the limit; expected O(h^R) at fixed β (the
flow is O(h^R) close over any finite time and both converge to nearby points of the valley).
The from-rest start of §7.7 needs the rest offset to O(h^{R−1}), derived only to O(h²) (T94),
so it is not used here.
"""

from __future__ import annotations

import functools
import time as _time

import numpy as np

from . import flows as F
from .higher_limits import limit_arrays, limit_grid
from .order_r_study import compiled_fields


def limit_labels(R: int) -> str:
    """The tidy tables' name of the order-R flow's limit."""
    return f"order-{R} flow"


@functools.cache
def _fields(p, R: int, beta: float, dtype=np.float64):
    """compiled_fields, compiled once per job (every (R, β) is used by several runs)."""
    return compiled_fields(p, R, beta, dtype=dtype)


def _gdm_starts(p, w0, Bt, h, orders, dtype):
    """(x₀, x_{−1}) per (R, lane) stacked R-major, x_{−1} on the slow manifold of the order-R
    flow (M20): ((R·N, 2), (R·N, 2)) in ``dtype``."""
    X0 = np.tile(np.asarray(w0, dtype=dtype), (len(orders) * len(Bt), 1))
    Xp = X0.copy()
    for ri, R in enumerate(orders):
        for b in dict.fromkeys(Bt.tolist()):
            lanes = ri * len(Bt) + np.flatnonzero(Bt == b)
            start = _fields(p, int(R), float(b), dtype)["start"]
            Xp[lanes] = X0[lanes] + start(X0[lanes], h[Bt == b].astype(dtype))
    return X0, Xp


def gdm_limits_longdouble(p, w0, Bt, h, steps: int, orders):
    """GD+M's limits per (R, lane) in x87 extended precision after ``steps`` and 2·``steps``
    steps: ((R, N, 2), (R, N, 2)) as float64.

    Why not float64: past convergence, β·(x_k − x_{k−1}) with a one-ulp velocity rounds back to
    one ulp for β > ½, so float64 heavy ball drifts one ulp per step along the valley forever
    (measured: S moves 1.2e−10 (β = 0.8) and 2.4e−10 (β = 0.9) per 2.8e5 steps, docs §8.6). In
    longdouble the same drift is 2048× smaller, and the gap between the two horizons bounds it
    together with the unconverged rest ((M26))."""
    ld = np.longdouble
    X0, Xp = _gdm_starts(p, w0, Bt, h, orders, ld)
    hl, bl = (np.tile(np.asarray(v, dtype=ld), len(orders)) for v in (h, Bt))
    cx, cy = ld(p.x), ld(p.y)
    a1, a2, p1, p2 = X0[:, 0].copy(), X0[:, 1].copy(), Xp[:, 0].copy(), Xp[:, 1].copy()
    out = []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(2):
            for _ in range(int(steps)):
                # heavy ball on E = ½(y − w1 w2 x)²: ∇E = r x (w2, w1), r = x w1 w2 − y (T23)
                r = (cx * a1 * a2 - cy) * cx
                n1 = a1 - hl * (r * a2) + bl * (a1 - p1)
                n2 = a2 - hl * (r * a1) + bl * (a2 - p2)
                p1, p2, a1, a2 = a1, a2, n1, n2
            out.append(np.stack([a1, a2], axis=-1).astype(np.float64).reshape(len(orders), len(Bt), 2))
    return out[0], out[1]


def _gdm_limits_float64(p, w0, Bt, h, steps: int, orders) -> np.ndarray:
    """The same runs in float64 (compiled loop), kept only to measure its drift: (R, N, 2)."""
    X0, Xp = _gdm_starts(p, w0, Bt, h, orders, np.float64)
    W = F.heavy_ball_two_factor_final_from(p, X0, Xp, np.tile(Bt, len(orders)), np.tile(h, len(orders)), steps)
    return W.reshape(len(orders), len(Bt), 2)


def _flow_limits(p, w0, Bt, h, horizon, orders, *, rtol, atol, gtol, t_end=None):
    """The order-R flows' limits per (R, lane) (DOP853 at rtol, atol until ‖field‖ < gtol, or
    to the times ``t_end`` (R, β) if given), whether every lane converged, and the final times:
    ((R, N, 2), (R,), (R, β))."""
    out = np.full((len(orders), len(Bt), 2), np.nan)
    conv = np.zeros(len(orders), dtype=bool)
    betas = list(dict.fromkeys(Bt.tolist()))
    times = np.full((len(orders), len(betas)), np.nan)
    for ri, R in enumerate(orders):
        ok = True
        for bi, b in enumerate(betas):
            lanes = np.flatnonzero(Bt == b)
            field = _fields(p, int(R), float(b))["flow"]
            hl = h[lanes]
            res = F.solve_flow(
                lambda w, hl=hl, field=field: -field(w, hl),
                np.tile(w0, (len(lanes), 1)),
                horizon if t_end is None else float(t_end[ri, bi]),
                gtol=gtol if t_end is None else None,
                method="DOP853",
                rtol=rtol,
                atol=atol,
            )
            out[ri, lanes] = res["w"]
            times[ri, bi] = res["t"]
            ok = ok and res["converged"]
        conv[ri] = ok
    return out, conv, times


def _references(p, w0, Bt, h, horizon, Rs, rtol, atol, gtol, check_factor):
    """The flows' limit sharpness at (rtol, atol, gtol) and the two reruns of (M26): at
    check_factor × looser rtol and atol to the same final time (near the valley the looser run's
    own noise lies above gtol, so it is not stopped by gtol), and at check_factor × looser gtol:
    ((R, N) × 3, converged (R,))."""
    c = float(check_factor)
    kw = {"rtol": float(rtol), "atol": float(atol)}
    W, conv, t_end = _flow_limits(p, w0, Bt, h, horizon, Rs, gtol=float(gtol), **kw)
    W_tol, _, _ = _flow_limits(
        p, w0, Bt, h, horizon, Rs, gtol=None, rtol=kw["rtol"] * c, atol=kw["atol"] * c, t_end=t_end
    )
    W_gtol, _, _ = _flow_limits(p, w0, Bt, h, horizon, Rs, gtol=float(gtol) * c, **kw)
    return [p.sharpness(w) for w in (W, W_tol, W_gtol)], conv


def limit_sharpness_any_order(
    *, betas, eps, range_eps, range_tol, time, gtol, rtol, atol, check_factor, orders, two_factor
):
    """Limit sharpness of GD+M (slow start to matching order) vs its order-R flows over (β, ε).

    Keywords: the keys of ``orders.higher.any_order_limits`` (betas, eps — the fitted grid —,
    range_eps — the range-of-validity grid, not fitted —, range_tol — the declared accuracy of
    the range finding, recorded with the result —, time, gtol, rtol, atol, check_factor,
    orders) and ``two_factor``, the ``toy.two_factor`` section (x, y, init). The grid is
    eps ∪ range_eps; η = ε(1−β)/λ_max(∇²E(x₀)), h = η(1−β); GD+M takes 2N steps in longdouble,
    N = ⌈time / min η⌉ (:func:`gdm_limits_longdouble`); the flows run with DOP853.

    Arrays as igrm.higher_limits (kind "limits", comparison "limit_slow"): beta, eps, eta, h;
    fitted, in_range (N,) (ε in eps, in range_eps); sharpness_gdm (R, N) per start;
    sharpness, errors, reference_error (R, N) with reference_error the floor (M26) =
    reference_error_tol + reference_error_gtol + reference_error_gdm (each (R, N));
    converged (R,); flows (R,) labels.
    """
    t0 = _time.perf_counter()
    grid_eps = sorted(set(map(float, eps)) | set(map(float, range_eps)))
    p, w0, s0, (Bt, Ep, eta, h), steps = limit_grid(betas, grid_eps, time, two_factor)
    Rs = [int(r) for r in sorted(orders)]
    W_half, W = gdm_limits_longdouble(p, w0, Bt, h, steps, Rs)
    W64 = _gdm_limits_float64(p, w0, Bt, h, 2 * steps, Rs)
    t_gdm = _time.perf_counter()
    (S, S_tol, S_gtol), conv = _references(p, w0, Bt, h, float(steps * np.min(h)), Rs, rtol, atol, gtol, check_factor)
    arrays = limit_arrays(p, (Bt, Ep, eta, h), W, S, S_tol)
    S_gdm = arrays["sharpness_gdm"]
    parts = {
        "reference_error_tol": np.abs(S - S_tol) / S_gdm,
        "reference_error_gtol": np.abs(S - S_gtol) / S_gdm,
        "reference_error_gdm": np.abs(p.sharpness(W_half) / S_gdm - 1.0),
    }
    arrays.update(parts)
    arrays["reference_error"] = sum(parts.values())
    arrays.update(
        {
            "fitted": np.isin(Ep, np.asarray(eps, dtype=np.float64)),
            "in_range": np.isin(Ep, np.asarray(range_eps, dtype=np.float64)),
            "converged": conv,
            "flows": np.array([limit_labels(R) for R in Rs]),
            "comparison": np.array("limit_slow"),
        }
    )
    attrs = {
        "kind": "limits",
        "problem": "two_factor",
        "steps": 2 * steps,
        "sharpness_init": s0,
        "gtol": float(gtol),
        "rtol": float(rtol),
        "atol": float(atol),
        "check_factor": float(check_factor),
        "range_tol": float(range_tol),
        "flows_converged": bool(conv.all()),
        "gdm_float64_gap_max": float(np.nanmax(np.abs(p.sharpness(W64) / S_gdm - 1.0))),
        "runtime_gdm_s": t_gdm - t0,
        "runtime_s": _time.perf_counter() - t0,
    }
    return arrays, attrs


def order_of_label(label: str) -> int:
    """R of :func:`limit_labels`' name 'order-R flow'."""
    return int(str(label).split("-")[1].split(" ")[0])


def range_of_validity(eps, errors, reference_error, orders, tol) -> dict:
    """The range-of-validity finding at one β (docs/modified_flows.md (M27)) on a grid ``eps``
    (n,) with errors δ_R and their floors (R, n) for ``orders`` (R,):

        ε_acc  = the largest ε of the grid up to which (at every grid ε' ≤ ε) min_R δ_R ≤ tol
        ε_stop = the smallest ε where one more order stops helping: δ_{R−1}/δ_R ≤ 1 for some R

    A gain counts only where δ_R lies above its floor (below it the ratio measures the reference).
    Returns eps_max, accurate_eps (NaN: not even at the first ε), accurate_order (the best order
    there), stop_eps, stop_order (NaN: none), min_gain with its eps and order (NaN: no gain)."""
    eps = np.asarray(eps, dtype=np.float64)
    order = np.argsort(eps)
    eps, err = eps[order], np.asarray(errors, dtype=np.float64)[:, order]
    ref = np.asarray(reference_error, dtype=np.float64)[:, order]
    Rs = np.asarray(orders, dtype=int)
    best = np.nanmin(err, axis=0)
    ok = np.cumprod(best <= float(tol)).astype(bool)
    acc = int(np.flatnonzero(ok)[-1]) if ok.any() else -1
    out = {
        "eps_max": float(eps[-1]),
        "accurate_eps": float(eps[acc]) if acc >= 0 else np.nan,
        "accurate_order": float(Rs[np.nanargmin(err[:, acc])]) if acc >= 0 else np.nan,
        "stop_eps": np.nan,
        "stop_order": np.nan,
        "min_gain": np.nan,
        "min_gain_eps": np.nan,
        "min_gain_order": np.nan,
    }
    prev = {int(R): i for i, R in enumerate(Rs)}
    gains = [
        (float(err[prev[R - 1], j] / err[i, j]), float(eps[j]), float(R))
        for j in range(len(eps))
        for i, R in enumerate(Rs)
        if R - 1 in prev and err[i, j] > ref[i, j]
    ]
    if gains:
        out["min_gain"], out["min_gain_eps"], out["min_gain_order"] = min(gains)
        stops = [(e, R) for g, e, R in gains if g <= 1.0]
        if stops:
            out["stop_eps"], out["stop_order"] = min(stops)
    return out
