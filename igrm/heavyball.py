"""Heavy-ball momentum (GD+M) on the toy problems, batched.

The update (docs/theory.md (T2), (T3))::

    x_{k+1} = x_k − h ∇E(x_k) + β (x_k − x_{k−1}),   x_{−1} = x_0 ("from rest"),

identical to ``torch.optim.SGD(lr=h, momentum=β, dampening=0, nesterov=False)``
(v_k = β v_{k−1} + g_k, x_{k+1} = x_k − h v_k, so h v_k = x_k − x_{k+1}).
β = 0 is plain GD. ``x_prev`` starts elsewhere than at rest (e.g. on the slow
manifold).

Three implementations with the same semantics:

* :func:`heavy_ball` — numpy, for any :class:`igrm.problems.Problem`, vectorised
  over a batch of trajectories (each with its own h, β);
* numba kernels for :class:`~igrm.problems.TwoFactor` and
  :class:`~igrm.problems.SigmoidFactor` with the closed-form scalar gradients
  inside the loop (docs/theory.md (T22), (T25));
* :func:`run` — dispatches to the numba kernel when there is one.

Divergence (a non-finite iterate or ‖x‖ > ``blowup``) is a result: the
trajectory is frozen at NaN from that step on, its step is recorded in
``diverged_step`` and the other trajectories go on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .problems import Problem, SigmoidFactor, TwoFactor


@dataclass
class HBResult:
    """Output of a heavy-ball run.

    steps: (n_rec,) int64 recorded step indices k = 0, r, 2r, ..., n_steps (the
    final step is always included); x: (n_rec, B, d) iterates at those steps;
    final: (B, d) iterate after n_steps; diverged_step: (B,) int64, first step k
    whose iterate x_k is non-finite or has ‖x_k‖ > blowup, −1 if none.
    """

    steps: np.ndarray
    x: np.ndarray
    final: np.ndarray
    diverged_step: np.ndarray

    def __getitem__(self, key):  # dict-style access too
        return getattr(self, key)


def record_steps(n_steps: int, record_every: int = 1) -> np.ndarray:
    """Steps 0, r, 2r, ... ≤ n_steps, plus n_steps itself if not a multiple of r."""
    if n_steps < 0 or record_every < 1:
        raise ValueError(f"need n_steps >= 0 and record_every >= 1, got {n_steps}, {record_every}")
    s = np.arange(0, n_steps + 1, record_every, dtype=np.int64)
    if s[-1] != n_steps:
        s = np.append(s, np.int64(n_steps))
    return s


def _prepare(x0, h, beta, x_prev):
    x0 = np.asarray(x0, dtype=np.float64)
    single = x0.ndim == 1
    x0 = np.atleast_2d(x0).copy()
    B = x0.shape[0]
    h = np.broadcast_to(np.asarray(h, dtype=np.float64), (B,)).copy()
    beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), (B,)).copy()
    if x_prev is None:
        xp = x0.copy()  # from rest: x_{−1} = x_0
    else:
        xp = np.broadcast_to(np.asarray(x_prev, dtype=np.float64), x0.shape).copy()
    return x0, xp, h, beta, single


def _finish(steps, rec, final, div, single):
    if single:
        rec, final, div = rec[:, 0], final[0], div[0]
    return HBResult(steps=steps, x=rec, final=final, diverged_step=div)


def heavy_ball(
    problem: Problem, x0, h, beta, n_steps: int, record_every: int = 1, x_prev=None, blowup: float = 1e8
) -> HBResult:
    """GD+M on ``problem`` (docs/theory.md (T2)), numpy, batched.

    x0: (B, d) or (d,); h, beta: scalars or (B,). See :class:`HBResult`.
    A (d,) input gives outputs without the batch axis.
    """
    x, xp, h, beta, single = _prepare(x0, h, beta, x_prev)
    B, d = x.shape
    steps = record_steps(n_steps, record_every)
    rec = np.empty((len(steps), B, d))
    div = np.full(B, -1, dtype=np.int64)
    hcol, bcol = h[:, None], beta[:, None]

    def check(k):
        bad = (~np.all(np.isfinite(x), axis=1)) | (np.sqrt(np.sum(x * x, axis=1)) > blowup)
        new = bad & (div < 0)
        if np.any(new):
            div[new] = k
            x[new] = np.nan
            xp[new] = np.nan

    check(0)
    j = 0
    if steps[0] == 0:
        rec[0] = x
        j = 1
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(n_steps):
            g = problem.grad(x)
            x_new = x - hcol * g + bcol * (x - xp)  # heavy-ball update
            xp = x
            x = x_new
            check(k + 1)
            if j < len(steps) and steps[j] == k + 1:
                rec[j] = x
                j += 1
    return _finish(steps, rec, x.copy(), div, single)


# ---------------------------------------------------------------- numba kernels


@njit(cache=True)
def _grad_two_factor(w1, w2, x, y):
    # E = ½ (y − w1 w2 x)²  (docs/theory.md (T22)): ∇E = r x (w2, w1), r = w1 w2 x − y
    r = w1 * w2 * x - y
    return r * x * w2, r * x * w1


@njit(cache=True)
def _sigmoid_scalar(z):
    if z >= 0.0:
        return 1.0 / (1.0 + np.exp(-z))
    ez = np.exp(z)
    return ez / (1.0 + ez)


@njit(cache=True)
def _grad_sigmoid(w1, w2, x, y):
    # E = ½ (y − w1 σ(w2 x))²  (docs/theory.md (T25)): ∇E = (r s, r w1 x s(1−s)), r = w1 s − y
    s = _sigmoid_scalar(w2 * x)
    r = w1 * s - y
    return r * s, r * w1 * x * s * (1.0 - s)


@njit(cache=True)
def _hb_kernel(kind, px, py, x0, xprev, h, beta, n_steps, steps, blowup):
    """kind 0: TwoFactor, 1: SigmoidFactor. Steps in the outer loop, batch in the
    inner one, so independent trajectories overlap in the CPU pipeline."""
    B = x0.shape[0]
    nrec = steps.shape[0]
    rec = np.empty((nrec, B, 2))
    div = np.full(B, -1, dtype=np.int64)
    a1 = x0[:, 0].copy()
    a2 = x0[:, 1].copy()
    p1 = xprev[:, 0].copy()
    p2 = xprev[:, 1].copy()
    blow2 = blowup * blowup
    for b in range(B):
        r2 = a1[b] * a1[b] + a2[b] * a2[b]
        if not (np.isfinite(a1[b]) and np.isfinite(a2[b])) or r2 > blow2:
            div[b] = 0
            a1[b] = np.nan
            a2[b] = np.nan
    j = 0
    if steps[0] == 0:
        for b in range(B):
            rec[0, b, 0] = a1[b]
            rec[0, b, 1] = a2[b]
        j = 1
    for k in range(n_steps):
        for b in range(B):
            if div[b] >= 0:
                continue
            w1 = a1[b]
            w2 = a2[b]
            if kind == 0:
                g1, g2 = _grad_two_factor(w1, w2, px, py)
            else:
                g1, g2 = _grad_sigmoid(w1, w2, px, py)
            # heavy-ball update, docs/theory.md (T2)
            n1 = w1 - h[b] * g1 + beta[b] * (w1 - p1[b])
            n2 = w2 - h[b] * g2 + beta[b] * (w2 - p2[b])
            p1[b] = w1
            p2[b] = w2
            # NaN fails every comparison, so "not (r2 <= blow2)" catches NaN and inf too
            if not (n1 * n1 + n2 * n2 <= blow2):
                div[b] = k + 1
                n1 = np.nan
                n2 = np.nan
            a1[b] = n1
            a2[b] = n2
        if j < nrec and steps[j] == k + 1:
            for b in range(B):
                rec[j, b, 0] = a1[b]
                rec[j, b, 1] = a2[b]
            j += 1
    final = np.empty((B, 2))
    final[:, 0] = a1
    final[:, 1] = a2
    return rec, final, div


def heavy_ball_numba(
    problem: Problem, x0, h, beta, n_steps: int, record_every: int = 1, x_prev=None, blowup: float = 1e8
) -> HBResult:
    """Same as :func:`heavy_ball`, compiled, for TwoFactor and SigmoidFactor only."""
    if isinstance(problem, TwoFactor):
        kind = 0
    elif isinstance(problem, SigmoidFactor):
        kind = 1
    else:
        raise TypeError(f"no numba kernel for {type(problem).__name__}; use heavy_ball()")
    x, xp, h, beta, single = _prepare(x0, h, beta, x_prev)
    if x.shape[1] != 2:
        raise ValueError(f"{type(problem).__name__} has 2 parameters, got x0 of shape {x.shape}")
    steps = record_steps(n_steps, record_every)
    rec, final, div = _hb_kernel(
        kind, float(problem.x), float(problem.y), x, xp, h, beta, int(n_steps), steps, float(blowup)
    )
    return _finish(steps, rec, final, div, single)


def run(
    problem: Problem, x0, h, beta, n_steps: int, record_every: int = 1, x_prev=None, blowup: float = 1e8
) -> HBResult:
    """Heavy-ball on ``problem``: the numba kernel for TwoFactor/SigmoidFactor,
    the numpy :func:`heavy_ball` otherwise. Same arguments and result."""
    if isinstance(problem, (TwoFactor, SigmoidFactor)):
        return heavy_ball_numba(problem, x0, h, beta, n_steps, record_every, x_prev, blowup)
    return heavy_ball(problem, x0, h, beta, n_steps, record_every, x_prev, blowup)
