"""Modified flows of heavy-ball momentum and the starts that make them accurate.

Everything here is float64 numpy and vectorised over leading "lane" axes, so a
whole grid of step sizes (and starts, and sample streams) runs in one loop.

Numbering: "flow (1)", "flow (2)" and "SGD+M flow" are docs/theory.md (T5), (T6)
and (T19); "(M1)…(M13)" are the numbered equations of docs/modified_flows.md,
where every formula below is derived.

GD+M (deterministic)
    heavy ball       x_{k+1} = x_k − h ∇E(x_k) + β (x_k − x_{k−1}),  t_k = k h      (M1)
    flow (1)         x' = −∇E / (1 − β)
    flow (2)         x' = −(∇E + λ ∇‖∇E‖²) / (1 − β),  λ = (1+β) h / (4 (1−β)²)
    rest offset      x_k − x̃(t_k) → h β/(1−β)² ∇E(x_0)   (start x_{−1} = x_0)      (M4)
    slow manifold    x_{−1} = x_0 + h ∇E(x_0)/(1−β) [+ h² H∇E(x_0)/(1−β)³]          (M7)

GD+M beyond the paper (docs/theory.md (T87)–(T94), docs/modified_flows.md §7)
    flow (3)         x' = −g/m − h(1+β)Hg/(2m³) − h²[(1+4β+β²)H²g/(3m⁵) + (1+10β+β²)T[g,g]/(12m⁵)]
    slow start O(h³) x_{−1} = x_0 + hg/m + h²Hg/m³ + h³(1+β)(H²g + ½T[g,g])/m⁵            (T88)
    rest offset O(h²) Δ₂ = hβg/m² + h²β(2+β)Hg/m⁴                                           (T94)
    linear series    log r₁(z) = Σ l_n zⁿ, the exact modified flow of a quadratic            (T90)

SGD+M on the two-factor stream E_r(w) = ½ (y_r − w1 w2 x_r)², u = w1 w2:
    G_k = A_k − B_k u + ½ C_k u²,  C_k = β C_{k−1} + x_k²,  B_k = β B_{k−1} + x_k y_k (M9)
    Σ_{r<k} β^{k−r} ‖∇G_r‖² = (w1² + w2²)(P_k u² − 2 Q_k u + R_k),
    P_k = β (P_{k−1} + C_{k−1}²), Q_k = β (Q_{k−1} + C_{k−1} B_{k−1}),
    R_k = β (R_{k−1} + B_{k−1}²)                                                   (M10)
    force −∇F_k of the SGD+M flow in closed form                                   (M11)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp

from .problems import Problem, TwoFactor

# --------------------------------------------------------------------------------------
# GD+M: flows (1) and (2)
# --------------------------------------------------------------------------------------


def flow2_lambda(beta, h):
    """λ = (1+β) h / (4 (1−β)²), the coefficient of ‖∇E‖² in flow (2)."""
    beta = np.asarray(beta, dtype=np.float64)
    return (1.0 + beta) * np.asarray(h, dtype=np.float64) / (4.0 * (1.0 - beta) ** 2)


def flow_field(problem: Problem, x, beta, lam):
    """x' = −(∇E + λ ∇‖∇E‖²)/(1−β): flow (2) for λ = flow2_lambda(β, h), flow (1) for λ = 0.

    ``x`` has shape (..., d); ``beta`` and ``lam`` broadcast against the lane axes (...).
    ∇‖∇E‖² = 2 H ∇E is ``problem.grad_norm2_grad`` (docs/theory.md (T4)).
    """
    x = np.asarray(x, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)[..., None]
    beta = np.asarray(beta, dtype=np.float64)[..., None]
    g = problem.grad(x)
    if np.any(lam != 0):
        g = g + lam * problem.grad_norm2_grad(x)
    return -g / (1.0 - beta)


def flow1_field(problem: Problem, x, beta):
    """Flow (1): x' = −∇E(x)/(1−β)."""
    return flow_field(problem, x, beta, 0.0)


def flow2_field(problem: Problem, x, beta, h):
    """Flow (2): x' = −(1/(1−β)) ∇(E + λ‖∇E‖²), λ = (1+β)h/(4(1−β)²)."""
    return flow_field(problem, x, beta, flow2_lambda(beta, h))


def solve_flow(
    field: Callable[[np.ndarray], np.ndarray],
    w0,
    t_end: float,
    *,
    rtol: float,
    atol: float,
    method: str,
    speed=1.0,
    gtol: float | None = None,
    t_eval=None,
    max_extend: int = 12,
) -> dict:
    """Integrate the batched flow w' = −speed · field(w) with ``solve_ivp`` (the one ODE
    driver of the toy and limit studies; the error-order lanes use :func:`solve_lanes`).

    w0: (B, d); speed: scalar or (B,); field maps (B, d) -> (B, d). ``rtol``, ``atol`` and
    ``method`` are each caller's own (no default: the toy flows use DOP853 at 1e-10/1e-13,
    the O(h³) limits LSODA at 1e-11/1e-14).
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

    def solve(t0, t1, y, **kw):
        sol = solve_ivp(rhs, (t0, t1), y, method=method, rtol=rtol, atol=atol, **kw)
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed: {sol.message}")
        return sol

    def gnorm(y):
        return np.sqrt(np.sum(field(y.reshape(B, d)) ** 2, axis=1))

    state = {"y": w0.ravel().copy(), "t": 0.0, "nfev": 0, "w_eval": None, "converged": gtol is None}
    with np.errstate(over="ignore", invalid="ignore"):
        if t_eval is not None:
            t_eval = np.asarray(t_eval, dtype=np.float64)
            sol = solve(0.0, float(t_end), state["y"], t_eval=t_eval)
            state.update(y=sol.y[:, -1], t=float(sol.t[-1]), nfev=sol.nfev, w_eval=sol.y.T.reshape(-1, B, d))
        if gtol is not None:
            _extend_until_converged(solve, gnorm, state, float(t_end), gtol, max_extend)
        elif t_eval is None:
            sol = solve(0.0, float(t_end), state["y"])
            state.update(y=sol.y[:, -1], t=float(sol.t[-1]), nfev=state["nfev"] + sol.nfev)
    w = state["y"].reshape(B, d)
    return {
        "w": w,
        "t": state["t"],
        "converged": bool(state["converged"]),
        "nfev": int(state["nfev"]),
        "t_eval": t_eval,
        "w_eval": state["w_eval"],
        "gnorm": np.sqrt(np.sum(field(w) ** 2, axis=1)),
    }


def _extend_until_converged(solve, gnorm, state: dict, T: float, gtol: float, max_extend: int) -> None:
    """Integrate on from ``state`` until max ‖field‖ < gtol (a terminal event at gtol/2),
    doubling the horizon T up to ``max_extend`` times; updates y, t, nfev, converged."""

    def done(t, y):
        return math.log(max(float(np.max(gnorm(y))), 1e-300)) - math.log(0.5 * gtol)

    done.terminal = True
    done.direction = -1
    for _ in range(max_extend + 1):
        if np.max(gnorm(state["y"])) < gtol:
            state["converged"] = True
            return
        sol = solve(state["t"], state["t"] + T, state["y"], events=[done])
        state.update(y=sol.y[:, -1], t=float(sol.t[-1]), nfev=state["nfev"] + sol.nfev)
        T *= 2.0
    state["converged"] = bool(np.max(gnorm(state["y"])) < gtol)


def solve_lanes(problem: Problem, X0, beta, lam, t_eval, rtol=1e-12, atol=1e-12, dense_output=False, squeeze=False):
    """Solve x' = flow_field(x; β, λ_l) for L lanes (X0: (L, d), lam: (L,)) as one DOP853 run."""
    X0 = np.asarray(X0, dtype=np.float64)
    L, d = X0.shape
    lam = np.asarray(lam, dtype=np.float64).reshape(L)
    t_eval = np.atleast_1d(np.asarray(t_eval, dtype=np.float64))
    t_end = float(t_eval.max())

    def rhs(t, y):
        return flow_field(problem, y.reshape(L, d), beta, lam).ravel()

    if dense_output:
        sol = solve_ivp(rhs, (0.0, t_end), X0.ravel(), method="DOP853", rtol=rtol, atol=atol, dense_output=True)
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed: {sol.message}")

        def call(t):
            t = np.atleast_1d(np.asarray(t, dtype=np.float64))
            y = sol.sol(t).T.reshape(len(t), L, d)
            return y[:, 0] if squeeze else y

        call.nfev = sol.nfev  # type: ignore[attr-defined]
        return call
    sol = solve_ivp(rhs, (0.0, t_end), X0.ravel(), method="DOP853", rtol=rtol, atol=atol, t_eval=t_eval)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    y = sol.y.T.reshape(len(t_eval), L, d)
    return y[:, 0] if squeeze else y


def rest_offset(problem: Problem, x0, beta, h):
    """h β/(1−β)² ∇E(x_0): the lag of heavy ball started from rest behind the flow
    started at x_0, built up in its first ~1/(1−β) steps (eq. M4). The flow started at
    x̃_0 = x_0 + rest_offset follows the from-rest iterates to O(h²) (eq. M5)."""
    beta = np.asarray(beta, dtype=np.float64)
    c = np.asarray(h, dtype=np.float64) * beta / (1.0 - beta) ** 2
    return c[..., None] * problem.grad(np.asarray(x0, dtype=np.float64))


def slow_manifold_prev(problem: Problem, x0, beta, h, order: int = 1):
    """x_{−1} on the slow manifold through x_0 (eq. M7):

        order 1:  x_{−1} = x_0 + h ∇E(x_0)/(1−β)
        order 2:  x_{−1} = x_0 + h ∇E(x_0)/(1−β) + h² H∇E(x_0)/(1−β)³

    The order-1 start is already enough for O(h²) global error against flow (2)
    (eq. M8: a start δ off the manifold shifts the smooth solution by −β δ/(1−β));
    the h² term only lowers the error constant.
    """
    x0 = np.asarray(x0, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)[..., None]
    h = np.asarray(h, dtype=np.float64)[..., None]
    g = problem.grad(x0)
    prev = x0 + h * g / (1.0 - beta)
    if order == 2:
        prev = prev + h * h * problem.hvp(x0, g) / (1.0 - beta) ** 3
    elif order != 1:
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    return prev


# --------------------------------------------------------------------------------------
# GD+M: the O(h³) flow (docs/theory.md (T86)–(T88); derived in igrm/modified_series.py)
# --------------------------------------------------------------------------------------


def flow3_coefficients(beta) -> dict:
    """Coefficients of x' = a_g g + h a_Hg Hg + h² (a_HHg H²g + a_Tgg T[g, g]) (docs/theory.md
    (T87)); the test checks them against the SymPy derivation (igrm.modified_series)."""
    b = np.asarray(beta, dtype=np.float64)
    m = 1.0 - b
    return {
        "g": -1.0 / m,
        "Hg": -(1.0 + b) / (2.0 * m**3),
        "HHg": -(1.0 + 4.0 * b + b * b) / (3.0 * m**5),
        "Tgg": -(1.0 + 10.0 * b + b * b) / (12.0 * m**5),
    }


def flow3_field(problem: Problem, x, beta, h1, h2, hT):
    """x' = a_g g + h1 a_Hg Hg + h2 a_HHg H²g + hT a_Tgg T[g, g] (docs/theory.md (T87)).

    ``h1``, ``h2``, ``hT`` broadcast against the lane axes of ``x`` (..., d): (h, h², h²) is
    the O(h³) flow, (h, 0, 0) flow (2) (T6) and (h, h², 0) the ablation without the
    third-derivative term. Uses ``problem.hvp`` and ``problem.third``.
    """
    x = np.asarray(x, dtype=np.float64)
    a = {k: np.asarray(v)[..., None] for k, v in flow3_coefficients(beta).items()}
    h1, h2, hT = (np.asarray(v, dtype=np.float64)[..., None] for v in (h1, h2, hT))
    g = problem.grad(x)
    Hg = problem.hvp(x, g)
    out = a["g"] * g + h1 * a["Hg"] * Hg
    if np.any(h2 != 0):
        out = out + h2 * a["HHg"] * problem.hvp(x, Hg)
    if np.any(hT != 0) and not problem.third_vanishes:
        out = out + hT * a["Tgg"] * problem.third(x, g, g)
    return out


def solve_flow3_lanes(problem: Problem, X0, beta, h1, h2, hT, t_end, rtol, atol):
    """Dense DOP853 solution of :func:`flow3_field` for L lanes (X0: (L, d); h1, h2, hT: (L,))
    as one stacked system; returns ``sol(t) -> (len(t), L, d)`` with ``sol.nfev``."""
    X0 = np.asarray(X0, dtype=np.float64)
    L, d = X0.shape

    def rhs(t, y):
        return flow3_field(problem, y.reshape(L, d), beta, h1, h2, hT).ravel()

    sol = solve_ivp(rhs, (0.0, float(t_end)), X0.ravel(), method="DOP853", rtol=rtol, atol=atol, dense_output=True)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")

    def call(t):
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        return sol.sol(t).T.reshape(len(t), L, d)

    call.nfev = sol.nfev  # type: ignore[attr-defined]
    return call


def slow_manifold_prev3(problem: Problem, x0, beta, h):
    """x_{−1} on the slow manifold through x_0 to O(h³) (error O(h⁴); docs/theory.md (T88)):

        x_{−1} = x_0 + h g/(1−β) + h² Hg/(1−β)³ + h³ (1+β)/(1−β)⁵ (H²g + ½ T[g, g])

    at x_0 (the first two terms are (M7)). ``h``: (H,) → (H, d)."""
    x0 = np.asarray(x0, dtype=np.float64)
    b = float(beta)
    h = np.asarray(h, dtype=np.float64)[..., None]
    m = 1.0 - b
    g = problem.grad(x0)
    Hg = problem.hvp(x0, g)
    c3 = problem.hvp(x0, Hg)
    if not problem.third_vanishes:
        c3 = c3 + 0.5 * problem.third(x0, g, g)
    return x0 + h * g / m + h * h * Hg / m**3 + h**3 * (1.0 + b) / m**5 * c3


def rest_offset2(problem: Problem, x0, beta, h):
    """The rest offset to O(h²) (docs/theory.md (T94)): the flow started at x_0 + Δ₂ follows
    heavy ball from rest (x_{−1} = x_0) after its β^k transient, to O(h³),

        Δ₂ = h β/(1−β)² g_0 + h² β(2+β)/(1−β)⁴ H g_0          (the first term is (M4))

    ``h``: (H,) → (H, d)."""
    x0 = np.asarray(x0, dtype=np.float64)
    b = float(beta)
    h = np.asarray(h, dtype=np.float64)[..., None]
    m = 1.0 - b
    g = problem.grad(x0)
    return h * b / m**2 * g + h * h * b * (2.0 + b) / m**4 * problem.hvp(x0, g)


def rest_offset_series(beta, z):
    """s(z) = r₁ (r₂ − 1)/(r₂ − r₁) (r₁, r₂ = β/r₁ the roots (T90)): on E = ½λ(x − x*)² heavy
    ball from rest has slow part s(hλ)(x_0 − x*) r₁^k, i.e. it follows the exact modified flow
    from x* + s(hλ)(x_0 − x*) (docs/theory.md (T94); the test expands it)."""
    r1 = slow_root(beta, z)
    r2 = beta / r1
    return r1 * (r2 - 1.0) / (r2 - r1)


# --------------------------------------------------------------------------------------
# GD+M on a quadratic loss: the modified flow to every order (docs/theory.md (T90), (T91))
# --------------------------------------------------------------------------------------


def log_slow_root_coefficients(beta, order: int) -> np.ndarray:
    """[c_1, …, c_order] of log r₁(z) = Σ c_n zⁿ, r₁ the slow root of r² − (1+β−z) r + β = 0
    (docs/theory.md (T90)): a_0 = 1, (1−β) a_n = −a_{n−1} − Σ_{0<i<n} a_i a_{n−i} (series of r₁),
    n l_n = n a_n − Σ_{0<k<n} k l_k a_{n−k} (its log). Checked against SymPy's series of log r₁."""
    b = float(beta)
    a = [1.0]
    for n in range(1, order + 1):
        a.append((-a[n - 1] - sum(a[i] * a[n - i] for i in range(1, n))) / (1.0 - b))
    lg = [0.0]
    for n in range(1, order + 1):
        lg.append(a[n] - sum(k * lg[k] * a[n - k] for k in range(1, n)) / n)
    return np.array(lg[1:])


def slow_root(beta, z):
    """The slow root r₁ = [b + √(b² − 4β)]/2, b = 1 + β − z, of heavy ball on a quadratic
    along an eigenvalue λ (z = hλ; real for z ≤ (1−√β)², docs/theory.md (T51))."""
    b = 1.0 + beta - np.asarray(z, dtype=np.float64)
    return 0.5 * (b + np.sqrt(b * b - 4.0 * beta))


def series_rate(beta, h, lam, order: int):
    """μ_R(λ) = Σ_{n=1}^{R} c_n h^{n−1} λⁿ: the order-R truncation of log r₁(hλ)/h (T91)."""
    c = log_slow_root_coefficients(beta, order)
    lam = np.asarray(lam, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)[..., None]
    return sum(c[n - 1] * h ** (n - 1) * lam**n for n in range(1, order + 1))


def heavy_ball(problem: Problem, x0, x_prev, beta, h, n_steps):
    """Heavy ball (eq. M1) for L lanes in lock step, each with its own h and step count.

    ``x0``, ``x_prev``: (L, d); ``h``: (L,); ``n_steps``: (L,) ints. Returns the
    trajectories X of shape (max(n_steps)+1, L, d) with X[k, l] = x_k of lane l and NaN
    after a lane's last step. A lane that produces a non-finite value stays NaN (a
    diverged run is a result, docs/theory.md (T44)).
    """
    x = np.array(x0, dtype=np.float64)
    xp = np.array(x_prev, dtype=np.float64)
    L, d = x.shape
    h = np.broadcast_to(np.asarray(h, dtype=np.float64), (L,))[:, None]
    n_steps = np.broadcast_to(np.asarray(n_steps, dtype=np.int64), (L,))
    N = int(n_steps.max())
    if isinstance(problem, TwoFactor):  # the same recursion, compiled (tested against the loop below)
        return _heavy_ball_two_factor(
            x,
            xp,
            float(np.asarray(beta)),
            np.ascontiguousarray(h[:, 0]),
            np.ascontiguousarray(n_steps),
            float(problem.x),
            float(problem.y),
        )
    X = np.full((N + 1, L, d), np.nan)
    X[0] = x
    n_min = int(n_steps.min())
    for k in range(N):
        x_new = x - h * problem.grad(x) + beta * (x - xp)
        if k >= n_min:  # finished lanes stay frozen (no work wasted on overflow)
            active = (n_steps > k)[:, None]
            x_new = np.where(active, x_new, x)
            xp = np.where(active, x, xp)
            X[k + 1] = np.where(active, x_new, np.nan)
            x = x_new
        else:
            xp, x = x, x_new
            X[k + 1] = x
    return X


# --------------------------------------------------------------------------------------
# SGD+M on the two-factor stream: exact piecewise flow
# --------------------------------------------------------------------------------------


def two_factor_stream(
    rng: np.random.Generator,
    streams: int,
    n_steps: int,
    x_noise: float = 0.3,
    y_noise: float = 0.1,
    x_mean: float = 1.0,
    slope: float = 0.6,
):
    """Samples (x_r, y_r), r = 0..n_steps−1, for ``streams`` independent streams:
    x_r = x_mean + x_noise·N(0,1), y_r = slope·x_r + y_noise·N(0,1). Sample r is used at
    step r, so every step size sees the same sequence. Returns xs, ys of shape (S, N)."""
    xs = x_mean + x_noise * rng.standard_normal((streams, n_steps))
    ys = slope * xs + y_noise * rng.standard_normal((streams, n_steps))
    return xs, ys


def sgdm_coefficients(xs, ys, beta):
    """Running coefficients of G_k and of the history sum (eqs. M9, M10), shape (S, N) each.

    C_k = β C_{k−1} + x_k²,  B_k = β B_{k−1} + x_k y_k,  A_k = β A_{k−1} + ½ y_k²
    (C_{−1} = B_{−1} = A_{−1} = 0);
    P_k = β (P_{k−1} + C_{k−1}²),  Q_k = β (Q_{k−1} + C_{k−1} B_{k−1}),
    R_k = β (R_{k−1} + B_{k−1}²)  (P_0 = Q_0 = R_0 = 0).
    Each is a first-order recursive filter (scipy.signal.lfilter along the step axis).
    """
    from scipy.signal import lfilter

    xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
    ys = np.atleast_2d(np.asarray(ys, dtype=np.float64))
    ema = ([1.0], [1.0, -beta])  # y_k = β y_{k−1} + v_k        (M9)
    lag = ([0.0, beta], [1.0, -beta])  # y_k = β y_{k−1} + β v_{k−1}  (M10)
    C = lfilter(*ema, xs * xs, axis=1)
    B = lfilter(*ema, xs * ys, axis=1)
    A = lfilter(*ema, 0.5 * ys * ys, axis=1)
    return {
        "A": A,
        "B": B,
        "C": C,
        "P": lfilter(*lag, C * C, axis=1),
        "Q": lfilter(*lag, C * B, axis=1),
        "R": lfilter(*lag, B * B, axis=1),
    }


def sgdm_stationary_coefficients(x, y, beta):
    """k → ∞ limits of (M9, M10) for a constant sample (x, y): C = x²/(1−β), B = x y/(1−β),
    P = β C²/(1−β), Q = β C B/(1−β), R = β B²/(1−β). With them the SGD+M flow is exactly
    flow (2) of E = ½ (y − w1 w2 x)² (eq. M12)."""
    C = x * x / (1.0 - beta)
    B = x * y / (1.0 - beta)
    A = 0.5 * y * y / (1.0 - beta)
    f = beta / (1.0 - beta)
    return {"A": A, "B": B, "C": C, "P": f * C * C, "Q": f * C * B, "R": f * B * B}


def sgdm_potential(w, coef: dict, h, regularise: bool = True):
    """F_k(w) = G_k + (h/4)(‖∇G_k‖² + 2 Σ_{r<k} β^{k−r}‖∇G_r‖²) (SGD+M flow) in closed
    form via (M9, M10); ``coef`` holds A, B, C, P, Q, R broadcastable to w[..., 0]."""
    w = np.asarray(w, dtype=np.float64)
    w1, w2 = w[..., 0], w[..., 1]
    u = w1 * w2
    s = w1 * w1 + w2 * w2
    G = coef["A"] - coef["B"] * u + 0.5 * coef["C"] * u * u
    if not regularise:
        return G
    reg = s * ((coef["C"] * u - coef["B"]) ** 2 + 2.0 * (coef["P"] * u * u - 2.0 * coef["Q"] * u + coef["R"]))
    return G + 0.25 * h * reg


def sgdm_force(w, B, C, P, Q, R, h, regularise: bool = True):
    """−∇F_k(w), the SGD+M flow's vector field on [t_k, t_{k+1}) in closed form (eq. M11).

    With u = w1 w2, s = w1² + w2², ∇u = (w2, w1), ∇s = 2 (w1, w2):
        ∇G_k = (C u − B) ∇u,
        reg = s q(u), q(u) = a u² − 2 b u + c, a = C² + 2P, b = C B + 2Q, c = B² + 2R,
        ∇reg = q(u) ∇s + s (2 a u − 2 b) ∇u,
        −∇F_k = −∇G_k − (h/4) ∇reg.
    ``regularise=False`` drops the h/4 terms (the flow of G_k alone).
    All coefficients and h broadcast against w[..., 0].
    """
    w1, w2 = w[..., 0], w[..., 1]
    u = w1 * w2
    gu = C * u - B
    f1 = -gu * w2
    f2 = -gu * w1
    if regularise:
        a = C * C + 2.0 * P
        b = C * B + 2.0 * Q
        c = B * B + 2.0 * R
        q = (a * u - 2.0 * b) * u + c
        s = w1 * w1 + w2 * w2
        dq = 2.0 * s * (a * u - b)
        hq = 0.25 * h
        f1 = f1 - hq * (2.0 * q * w1 + dq * w2)
        f2 = f2 - hq * (2.0 * q * w2 + dq * w1)
    return np.stack([f1, f2], axis=-1)


def integrate_sgdm_flow(x0, coef: dict, h, n_steps, substeps: int = 2, regularise: bool = True):
    """Integrate the piecewise SGD+M flow (docs/theory.md (T19)) exactly interval by interval.

    On [t_k, t_{k+1}) the field is sgdm_force with the coefficients of step k; each
    interval is integrated with ``substeps`` classical RK4 steps (fixed step h/substeps;
    the field is smooth inside an interval, so no step straddles a switch).

    ``x0``: (2,) or broadcastable to (H, S, 2); ``coef``: B, C, P, Q, R of shape (S, N)
    (from :func:`sgdm_coefficients`); ``h``: (H,); ``n_steps``: (H,) ints ≤ N.
    Returns X of shape (max(n_steps)+1, H, S, 2): the flow at t_k = k h of every lane,
    NaN after a lane's end.
    """
    h = np.atleast_1d(np.asarray(h, dtype=np.float64))
    n_steps = np.broadcast_to(np.asarray(n_steps, dtype=np.int64), h.shape)
    S, N = coef["C"].shape
    Hn = len(h)
    Nmax = int(n_steps.max())
    if Nmax > N:
        raise ValueError(f"need {Nmax} samples per stream, have {N}")
    x = np.broadcast_to(np.asarray(x0, dtype=np.float64), (Hn, S, 2)).copy()
    X = np.full((Nmax + 1, Hn, S, 2), np.nan)
    X[0] = x
    dt = (h / substeps)[:, None, None]  # (H,1,1) for the state update
    hk = h[:, None]  # (H,1) for the h/4 terms
    for k in range(Nmax):
        cf = [coef[n][:, k][None, :] for n in "BCPQR"]  # (1,S)

        def f(y):
            return sgdm_force(y, *cf, hk, regularise=regularise)

        for _ in range(substeps):
            k1 = f(x)
            k2 = f(x + 0.5 * dt * k1)
            k3 = f(x + 0.5 * dt * k2)
            k4 = f(x + dt * k3)
            x = x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        active = n_steps > k
        X[k + 1, active] = x[active]
    return X


def heavy_ball_two_factor_stream(x0, xs, ys, beta, h, n_steps):
    """Discrete SGD+M on the stream: x_{k+1} = x_k − h ∇E_k(x_k) + β (x_k − x_{k−1}),
    x_{−1} = x_0, ∇E_k(w) = (x_k² u − x_k y_k)(w2, w1), u = w1 w2 (docs/theory.md (T2), (T21)).

    ``xs``, ``ys``: (S, N); ``h``: (H,); ``n_steps``: (H,). Returns (max(n_steps)+1, H, S, 2),
    NaN after a lane's end.
    """
    xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
    ys = np.atleast_2d(np.asarray(ys, dtype=np.float64))
    h = np.atleast_1d(np.asarray(h, dtype=np.float64))
    n_steps = np.broadcast_to(np.asarray(n_steps, dtype=np.int64), h.shape)
    S, N = xs.shape
    Hn = len(h)
    Nmax = int(n_steps.max())
    x = np.broadcast_to(np.asarray(x0, dtype=np.float64), (Hn, S, 2)).copy()
    xp = x.copy()
    X = np.full((Nmax + 1, Hn, S, 2), np.nan)
    X[0] = x
    hh = h[:, None]
    for k in range(Nmax):
        xr = xs[:, k][None, :]
        yr = ys[:, k][None, :]
        w1, w2 = x[..., 0], x[..., 1]
        gu = xr * xr * w1 * w2 - xr * yr
        step = np.stack([gu * w2, gu * w1], axis=-1)
        x_new = x - hh[..., None] * step + beta * (x - xp)
        xp, x = x, x_new
        active = n_steps > k
        X[k + 1, active] = x[active]
    return X


# --------------------------------------------------------------------------------------
# Fused compiled kernel: discrete SGD+M and its flows in lock step, running max errors
# --------------------------------------------------------------------------------------

import numba as _nb


@_nb.njit(cache=True)
def _heavy_ball_two_factor_final(x, xp, beta, h, n_steps, cx, cy):  # pragma: no cover - compiled
    """The last iterate of heavy ball on TwoFactor(x=cx, y=cy) per lane (beta, h: (L,))."""
    L = x.shape[0]
    out = np.empty((L, 2))
    for l in range(L):
        a1 = x[l, 0]
        a2 = x[l, 1]
        p1 = xp[l, 0]
        p2 = xp[l, 1]
        hl = h[l]
        bl = beta[l]
        for k in range(n_steps):
            r = cx * a1 * a2 - cy
            n1 = a1 - hl * (r * cx * a2) + bl * (a1 - p1)
            n2 = a2 - hl * (r * cx * a1) + bl * (a2 - p2)
            p1 = a1
            p2 = a2
            a1 = n1
            a2 = n2
            if not (np.isfinite(a1) and np.isfinite(a2)):
                break
        out[l, 0] = a1
        out[l, 1] = a2
    return out


def heavy_ball_two_factor_final(problem, x0, beta, h, n_steps: int):
    """Heavy ball from rest (x_{−1} = x_0) on a TwoFactor problem, ``n_steps`` steps per lane
    with per-lane β and h ((L,)); returns the last iterates (L, 2), non-finite if diverged."""
    x0 = np.ascontiguousarray(np.atleast_2d(x0), dtype=np.float64)
    beta = np.ascontiguousarray(np.broadcast_to(np.asarray(beta, dtype=np.float64), (x0.shape[0],)))
    h = np.ascontiguousarray(np.broadcast_to(np.asarray(h, dtype=np.float64), (x0.shape[0],)))
    return _heavy_ball_two_factor_final(x0, x0.copy(), beta, h, int(n_steps), float(problem.x), float(problem.y))


def heavy_ball_two_factor_final_from(problem, x0, x_prev, beta, h, n_steps: int):
    """As :func:`heavy_ball_two_factor_final` from a given x_{−1} per lane (e.g. on the slow
    manifold, docs/modified_flows.md (M20))."""
    x0 = np.ascontiguousarray(np.atleast_2d(x0), dtype=np.float64)
    xp = np.ascontiguousarray(np.atleast_2d(x_prev), dtype=np.float64)
    beta = np.ascontiguousarray(np.broadcast_to(np.asarray(beta, dtype=np.float64), (x0.shape[0],)))
    h = np.ascontiguousarray(np.broadcast_to(np.asarray(h, dtype=np.float64), (x0.shape[0],)))
    return _heavy_ball_two_factor_final(x0, xp, beta, h, int(n_steps), float(problem.x), float(problem.y))


@_nb.njit(cache=True)
def _heavy_ball_two_factor(x, xp, beta, h, n_steps, cx, cy):  # pragma: no cover - compiled
    """:func:`heavy_ball` on TwoFactor(x=cx, y=cy): ∇E = r cx (w2, w1), r = cx w1 w2 − cy (T23)."""
    L = x.shape[0]
    N = 0
    for l in range(L):
        N = max(N, n_steps[l])
    X = np.full((N + 1, L, 2), np.nan)
    for l in range(L):
        a1 = x[l, 0]
        a2 = x[l, 1]
        p1 = xp[l, 0]
        p2 = xp[l, 1]
        X[0, l, 0] = a1
        X[0, l, 1] = a2
        hl = h[l]
        for k in range(n_steps[l]):
            r = cx * a1 * a2 - cy
            n1 = a1 - hl * (r * cx * a2) + beta * (a1 - p1)
            n2 = a2 - hl * (r * cx * a1) + beta * (a2 - p2)
            p1 = a1
            p2 = a2
            a1 = n1
            a2 = n2
            X[k + 1, l, 0] = a1
            X[k + 1, l, 1] = a2
            if not (np.isfinite(a1) and np.isfinite(a2)):
                break
    return X


@_nb.njit(cache=True, inline="always")
def _force(w1, w2, B, C, P, Q, R, h, reg):
    """Scalar version of :func:`sgdm_force` (eq. M11)."""
    u = w1 * w2
    gu = C * u - B
    f1 = -gu * w2
    f2 = -gu * w1
    if reg:
        a = C * C + 2.0 * P
        b = C * B + 2.0 * Q
        c = B * B + 2.0 * R
        q = (a * u - 2.0 * b) * u + c
        dq = 2.0 * (w1 * w1 + w2 * w2) * (a * u - b)
        hq = 0.25 * h
        f1 -= hq * (2.0 * q * w1 + dq * w2)
        f2 -= hq * (2.0 * q * w2 + dq * w1)
    return f1, f2


@_nb.njit(cache=True)
def _rk4_interval(w1, w2, B, C, P, Q, R, h, reg, m):
    """m classical RK4 steps of size h/m of the field on one interval [t_k, t_{k+1})."""
    dt = h / m
    for _ in range(m):
        a1, a2 = _force(w1, w2, B, C, P, Q, R, h, reg)
        b1, b2 = _force(w1 + 0.5 * dt * a1, w2 + 0.5 * dt * a2, B, C, P, Q, R, h, reg)
        c1, c2 = _force(w1 + 0.5 * dt * b1, w2 + 0.5 * dt * b2, B, C, P, Q, R, h, reg)
        d1, d2 = _force(w1 + dt * c1, w2 + dt * c2, B, C, P, Q, R, h, reg)
        w1 = w1 + dt / 6.0 * (a1 + 2.0 * b1 + 2.0 * c1 + d1)
        w2 = w2 + dt / 6.0 * (a2 + 2.0 * b2 + 2.0 * c2 + d2)
    return w1, w2


@_nb.njit(cache=True, parallel=True)
def _sgdm_kernel(x0, xs, ys, stationary, beta, h, n_steps, substeps):  # pragma: no cover - compiled
    Hn = h.shape[0]
    S = xs.shape[0]
    out = np.zeros((6, Hn, S))
    for idx in _nb.prange(Hn * S):
        j = idx // S
        s = idx % S
        hj = h[j]
        # discrete SGD+M (from rest) and four flows: full / no-reg at m and 2m substeps
        d1 = x0[0]
        d2 = x0[1]
        p1 = d1
        p2 = d2
        y = np.empty((4, 2))
        for i in range(4):
            y[i, 0] = x0[0]
            y[i, 1] = x0[1]
        B = 0.0
        C = 0.0
        P = 0.0
        Q = 0.0
        R = 0.0
        if stationary[s]:
            xr = xs[s, 0]
            yr = ys[s, 0]
            C = xr * xr / (1.0 - beta)
            B = xr * yr / (1.0 - beta)
            P = beta * C * C / (1.0 - beta)
            Q = beta * C * B / (1.0 - beta)
            R = beta * B * B / (1.0 - beta)
        e = np.zeros(6)
        for k in range(n_steps[j]):
            xr = xs[s, k]
            yr = ys[s, k]
            if not stationary[s]:
                if k > 0:  # (M10)
                    P = beta * (P + C * C)
                    Q = beta * (Q + C * B)
                    R = beta * (R + B * B)
                C = beta * C + xr * xr  # (M9)
                B = beta * B + xr * yr
            # heavy ball with the sample of step k (docs/theory.md (T2))
            gu = xr * xr * d1 * d2 - xr * yr
            n1 = d1 - hj * gu * d2 + beta * (d1 - p1)
            n2 = d2 - hj * gu * d1 + beta * (d2 - p2)
            p1 = d1
            p2 = d2
            d1 = n1
            d2 = n2
            y[0, 0], y[0, 1] = _rk4_interval(y[0, 0], y[0, 1], B, C, P, Q, R, hj, True, substeps)
            y[1, 0], y[1, 1] = _rk4_interval(y[1, 0], y[1, 1], B, C, P, Q, R, hj, False, substeps)
            y[2, 0], y[2, 1] = _rk4_interval(y[2, 0], y[2, 1], B, C, P, Q, R, hj, True, 2 * substeps)
            y[3, 0], y[3, 1] = _rk4_interval(y[3, 0], y[3, 1], B, C, P, Q, R, hj, False, 2 * substeps)
            for i in range(2):
                ex = d1 - y[i, 0]
                ey = d2 - y[i, 1]
                err = np.sqrt(ex * ex + ey * ey)
                if not err <= e[i]:  # also propagates NaN
                    e[i] = err
                ex = y[i, 0] - y[i + 2, 0]
                ey = y[i, 1] - y[i + 2, 1]
                err = np.sqrt(ex * ex + ey * ey)
                if not err <= e[2 + i]:
                    e[2 + i] = err
                # the finer-substep flow against the discrete path (reference-error check)
                ex = d1 - y[i + 2, 0]
                ey = d2 - y[i + 2, 1]
                err = np.sqrt(ex * ex + ey * ey)
                if not err <= e[4 + i]:
                    e[4 + i] = err
        for i in range(6):
            out[i, j, s] = e[i]
    return out


def sgdm_max_errors(x0, xs, ys, beta, h, n_steps, substeps: int = 1, stationary=None):
    """max_{k ≤ n_j} ‖x_k − x(t_k)‖ of discrete SGD+M against the SGD+M flow, for every
    step size h_j and stream s, computed in one compiled pass without storing paths.

    The discrete method is the heavy ball from rest with sample k at step k; the flows
    are the piecewise SGD+M flow (docs/theory.md (T19)) with the h/4 terms ("full") and without
    them ("noreg"), each integrated interval by interval with ``substeps`` RK4 steps and,
    as a reference check, again with ``2·substeps``. A stream flagged ``stationary``
    uses the k → ∞ coefficients of its first sample instead of the running ones (for a
    constant stream that is flow (2) / flow (1), eq. M12).

    Returns a dict of (H, S) arrays: full, noreg (max error against the flow),
    full_check, noreg_check (max difference between the m- and 2m-substep flows),
    full_fine, noreg_fine (max error against the 2m-substep flow).
    """
    x0 = np.ascontiguousarray(x0, dtype=np.float64)
    xs = np.ascontiguousarray(np.atleast_2d(xs), dtype=np.float64)
    ys = np.ascontiguousarray(np.atleast_2d(ys), dtype=np.float64)
    h = np.ascontiguousarray(np.atleast_1d(h), dtype=np.float64)
    n_steps = np.ascontiguousarray(np.broadcast_to(np.asarray(n_steps, dtype=np.int64), h.shape))
    if int(n_steps.max()) > xs.shape[1]:
        raise ValueError(f"need {int(n_steps.max())} samples per stream, have {xs.shape[1]}")
    if stationary is None:
        stationary = np.zeros(xs.shape[0], dtype=np.bool_)
    stationary = np.ascontiguousarray(stationary, dtype=np.bool_)
    out = _sgdm_kernel(x0, xs, ys, stationary, float(beta), h, n_steps, int(substeps))
    names = ("full", "noreg", "full_check", "noreg_check", "full_fine", "noreg_fine")
    return {n: out[i] for i, n in enumerate(names)}
