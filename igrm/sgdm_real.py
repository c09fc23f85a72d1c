"""SGD+M on real data: the piecewise flow with historical losses G_k (docs/theory.md (T19))
checked on a float64 logistic regression over PCA features of two Fashion-MNIST classes.

Problem (docs/theory.md (T96)): n examples a_i ∈ R^p (p = n_features PCA scores, standardised,
and an intercept 1), labels y_i ∈ {0, 1}; per-example loss ℓ_i(x) = log(1 + e^{z_i}) − y_i z_i,
z = A x. Mini-batch r of a stream is a set B_r of b distinct examples (sampled without
replacement, one seeded generator per stream); E_r = mean of ℓ_i over B_r. Every h uses the
same stream r ↦ B_r, as the two-factor study does (docs/modified_flows.md §4).

Exact closed forms (no truncation of the history; derivation docs/modified_flows.md §4.5):

    G_k = Σ_i c_{k,i} ℓ_i,   c_k = β c_{k−1} + 1_{B_k}/b,   c_{−1} = 0                     (T96)
    Σ_{r≤k} w_r ‖∇G_r‖² = ρᵀ (K ∘ Ω_k) ρ,   w_k = 1, w_{r<k} = 2β^{k−r},
    Ω_k = c_k c_kᵀ + 2 P_k,   P_k = β (P_{k−1} + c_{k−1} c_{k−1}ᵀ),  P_0 = 0,  K = A Aᵀ      (T97)
    −∇F_k = −g − (h/2) Aᵀ [ s ∘ ( c_k ∘ (A g) + 2 (K ∘ P_k) ρ ) ],
    g = ∇G_k = Aᵀ (c_k ∘ ρ),   ρ = σ(z) − y,   s = σ(z)(1 − σ(z))                          (T98)

"Without the h/4 terms" is −g alone. Time t_k = k h; the discrete method is heavy ball from
rest, x_{k+1} = x_k − h ∇E_k(x_k) + β (x_k − x_{k−1}), x_{−1} = x_0 (docs/theory.md (T18)).
Errors, ε units, RMS over streams and the reference check as in :func:`igrm.orders.sgdm_error_orders`
(docs/theory.md (T99)).
"""

from __future__ import annotations

import time
from typing import Any

import numba as nb
import numpy as np

from .orders import h_values, n_steps

PROBLEM = {"fashion_mnist": "logreg_fmnist", "mnist": "logreg_mnist"}


# --------------------------------------------------------------------------------------
# data: PCA features of two classes
# --------------------------------------------------------------------------------------


def logreg_features(*, images, labels, classes, n_examples, n_features) -> tuple[np.ndarray, np.ndarray]:
    """(A, y): the first n_examples/2 training images of each of ``classes`` (file order),
    pixels/255 flattened and centred, projected on their top ``n_features`` principal
    components (SVD), each standardised to unit variance, and an intercept column of ones
    (A: (n, n_features + 1) float64); y = 1 for the second class, 0 for the first (T96)."""
    c0, c1 = (int(c) for c in classes)
    if c0 == c1:
        raise ValueError(f"orders.sgdm_real.classes must be two different labels, got {list(classes)}")
    n = int(n_examples)
    if n % 2:
        raise ValueError(f"orders.sgdm_real.n_examples must be even (n/2 per class), got {n}")
    labels = np.asarray(labels).astype(np.int64).ravel()
    picks = []
    for c in (c0, c1):
        idx = np.flatnonzero(labels == c)[: n // 2]
        if len(idx) < n // 2:
            raise ValueError(f"class {c} has {len(idx)} images, orders.sgdm_real.n_examples needs {n // 2}")
        picks.append(idx)
    idx = np.concatenate(picks)
    X = np.asarray(images)[idx].reshape(n, -1).astype(np.float64) / 255.0
    y = np.concatenate([np.zeros(n // 2), np.ones(n // 2)])
    X = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    Z = X @ vt[: int(n_features)].T
    Z = Z / Z.std(axis=0)
    return np.concatenate([Z, np.ones((n, 1))], axis=1), y


def batch_stream(*, n, batch_size, n_steps, streams, seed) -> np.ndarray:
    """Batch indices (streams, n_steps, batch_size): batch r of stream s is ``batch_size``
    distinct examples of range(n), drawn with np.random.default_rng([seed, s])."""
    out = np.empty((int(streams), int(n_steps), int(batch_size)), dtype=np.int64)
    for s in range(int(streams)):
        rng = np.random.default_rng([int(seed), s])
        for r in range(int(n_steps)):
            out[s, r] = rng.choice(int(n), size=int(batch_size), replace=False)
    return out


# --------------------------------------------------------------------------------------
# closed forms (numpy; reference implementations for the tests)
# --------------------------------------------------------------------------------------


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def weighted_loss(x, A, y, c):
    """Σ_i c_i ℓ_i(x), ℓ_i = log(1 + e^{z_i}) − y_i z_i, z = A x (T96): E_r for c = 1_{B_r}/b,
    G_k for c = c_k."""
    z = A @ x
    return float(c @ (np.logaddexp(0.0, z) - y * z))


def weighted_grad(x, A, y, c):
    """∇ Σ_i c_i ℓ_i = Aᵀ (c ∘ (σ(Ax) − y)) (T98)."""
    return A.T @ (c * (_sigmoid(A @ x) - y))


def weighted_hess(x, A, y, c):
    """∇² Σ_i c_i ℓ_i = Aᵀ diag(c ∘ σ(1 − σ)) A."""
    p = _sigmoid(A @ x)
    return A.T @ ((c * p * (1.0 - p))[:, None] * A)


def stream_coefficients(batches, n, beta):
    """c_k (N, n) and P_k (N, n, n) of one stream (batches: (N, b)) by the recursions (T96), (T97)."""
    N, b = batches.shape
    C = np.zeros((N, n))
    P = np.zeros((N, n, n))
    c = np.zeros(n)
    Pk = np.zeros((n, n))
    for k in range(N):
        if k > 0:
            Pk = beta * (Pk + np.outer(c, c))
        c = beta * c
        np.add.at(c, batches[k], 1.0 / b)
        C[k], P[k] = c, Pk
    return C, P


def potential(x, A, y, c, P, h, regularise=True):
    """F_k(x) = G_k + (h/4) ρᵀ (K ∘ (c cᵀ + 2P)) ρ (T97); G_k alone if not ``regularise``."""
    G = weighted_loss(x, A, y, c)
    if not regularise:
        return G
    rho = _sigmoid(A @ x) - y
    K = A @ A.T
    return G + 0.25 * h * float(rho @ ((K * (np.outer(c, c) + 2.0 * P)) @ rho))


def force(x, A, y, c, P, h, regularise=True):
    """−∇F_k(x) in closed form (T98); −∇G_k if not ``regularise``."""
    p = _sigmoid(A @ x)
    rho = p - y
    g = A.T @ (c * rho)
    if not regularise:
        return -g
    s = p * (1.0 - p)
    K = A @ A.T
    u = c * (A @ g) + 2.0 * ((K * P) @ rho)
    return -g - 0.5 * h * (A.T @ (s * u))


# --------------------------------------------------------------------------------------
# compiled kernel: discrete SGD+M and the two flows in lock step, running max errors
# --------------------------------------------------------------------------------------


@nb.njit(cache=True, inline="always")
def _sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@nb.njit(cache=True)
def _field(x, A, y, c, KP, hreg, out, reg):  # pragma: no cover - compiled
    """out = −∇F_k(x) (T98) with KP = K ∘ P_k; the h/4 terms only if ``reg``."""
    n, d = A.shape
    rho = np.empty(n)
    sp = np.empty(n)
    for i in range(n):
        z = 0.0
        for a in range(d):
            z += A[i, a] * x[a]
        p = _sig(z)
        rho[i] = p - y[i]
        sp[i] = p * (1.0 - p)
    for a in range(d):
        out[a] = 0.0
    for i in range(n):
        w = c[i] * rho[i]
        for a in range(d):
            out[a] -= A[i, a] * w  # −g
    if reg:
        # u_i = c_i (A g)_i + 2 (KP ρ)_i;  out −= (h/2) Aᵀ (s ∘ u)   (g = −out before the update)
        g = out.copy()
        kp = np.dot(KP, rho)  # the O(n²) part: (K ∘ P_k) ρ (BLAS)
        for i in range(n):
            ag = 0.0
            for a in range(d):
                ag -= A[i, a] * g[a]
            u = sp[i] * (c[i] * ag + 2.0 * kp[i])
            for a in range(d):
                out[a] -= 0.5 * hreg * A[i, a] * u
    return out


@nb.njit(cache=True)
def _rk4(x, A, y, c, KP, h, reg, m, k1, k2, k3, k4, tmp):  # pragma: no cover - compiled
    """m classical RK4 steps of size h/m of the field of one interval, in place on x."""
    d = x.shape[0]
    dt = h / m
    for _ in range(m):
        _field(x, A, y, c, KP, h, k1, reg)
        for a in range(d):
            tmp[a] = x[a] + 0.5 * dt * k1[a]
        _field(tmp, A, y, c, KP, h, k2, reg)
        for a in range(d):
            tmp[a] = x[a] + 0.5 * dt * k2[a]
        _field(tmp, A, y, c, KP, h, k3, reg)
        for a in range(d):
            tmp[a] = x[a] + dt * k3[a]
        _field(tmp, A, y, c, KP, h, k4, reg)
        for a in range(d):
            x[a] += dt / 6.0 * (k1[a] + 2.0 * k2[a] + 2.0 * k3[a] + k4[a])


@nb.njit(cache=True)
def _stationary_coefficients(c, KP, K, beta):  # pragma: no cover - compiled
    """c, KP of the k → ∞ coefficients of a constant full batch (T20), in place."""
    n = c.shape[0]
    for i in range(n):
        c[i] = 1.0 / (n * (1.0 - beta))
    for i in range(n):
        for j in range(n):
            KP[i, j] = K[i, j] * beta / (1.0 - beta) * c[i] * c[j]


@nb.njit(cache=True)
def _advance_coefficients(c, KP, K, beta, batch, k):  # pragma: no cover - compiled
    """c, KP from interval k − 1 to k with batch k (T96), (T97), in place."""
    n = c.shape[0]
    b = batch.shape[0]
    if k > 0:  # (T97)
        for i in range(n):
            for jj in range(n):
                KP[i, jj] = beta * (KP[i, jj] + K[i, jj] * c[i] * c[jj])
    for i in range(n):  # (T96)
        c[i] *= beta
    for q in range(b):
        c[batch[q]] += 1.0 / b


@nb.njit(cache=True)
def _heavy_ball_step(x, xp, A, y, batch, beta, hj, gd):  # pragma: no cover - compiled
    """One heavy-ball step with batch k (T18), ∇E_k = Σ_{i∈B_k} a_i (σ(a_i·x) − y_i)/b, in place."""
    d = x.shape[0]
    b = batch.shape[0]
    for a in range(d):
        gd[a] = 0.0
    for q in range(b):
        i = batch[q]
        z = 0.0
        for a in range(d):
            z += A[i, a] * x[a]
        r = (_sig(z) - y[i]) / b
        for a in range(d):
            gd[a] += A[i, a] * r
    for a in range(d):
        xn = x[a] - hj * gd[a] + beta * (x[a] - xp[a])
        xp[a] = x[a]
        x[a] = xn


@nb.njit(cache=True)
def _distance(u, v):  # pragma: no cover - compiled
    err = 0.0
    for a in range(u.shape[0]):
        err += (u[a] - v[a]) ** 2
    return np.sqrt(err)


@nb.njit(cache=True)
def _track_errors(x, Y, e, j, checked):  # pragma: no cover - compiled
    """e[f, j] = max over steps of ‖x − Y[f, j]‖ (f: full, noreg) and, on checked streams,
    e[2 + f, j] of ‖Y[f, j] − Y[f + 2, j]‖ (the flow against its rerun at 2·substeps)."""
    for f in range(2):
        err = _distance(x, Y[f, j])
        if not err <= e[f, j]:  # also propagates NaN
            e[f, j] = err
        if checked:
            err = _distance(Y[f, j], Y[f + 2, j])
            if not err <= e[2 + f, j]:
                e[2 + f, j] = err


@nb.njit(cache=True)
def _kernel(x0, A, K, y, batches, stationary, check, beta, h, n_steps, substeps):  # pragma: no cover
    S, N, b = batches.shape
    n, d = A.shape
    Hn = h.shape[0]
    out = np.full((4, Hn, S), np.nan)
    for s in range(S):
        c = np.zeros(n)
        KP = np.zeros((n, n))
        if stationary[s]:
            _stationary_coefficients(c, KP, K, beta)
        X = np.empty((Hn, d))
        Xp = np.empty((Hn, d))
        Y = np.empty((4, Hn, d))
        for j in range(Hn):
            for a in range(d):
                X[j, a] = x0[a]
                Xp[j, a] = x0[a]
                for f in range(4):
                    Y[f, j, a] = x0[a]
        e = np.zeros((4, Hn))
        k1 = np.empty(d)
        k2 = np.empty(d)
        k3 = np.empty(d)
        k4 = np.empty(d)
        tmp = np.empty(d)
        gd = np.empty(d)
        nmax = 0
        for j in range(Hn):
            nmax = max(nmax, n_steps[j])
        for k in range(nmax):
            if not stationary[s]:
                _advance_coefficients(c, KP, K, beta, batches[s, k], k)
            for j in range(Hn):
                if k >= n_steps[j]:
                    continue
                _heavy_ball_step(X[j], Xp[j], A, y, batches[s, k], beta, h[j], gd)
                nf = 4 if check[s] else 2
                for f in range(nf):
                    _rk4(Y[f, j], A, y, c, KP, h[j], f % 2 == 0, substeps * (1 + f // 2), k1, k2, k3, k4, tmp)
                _track_errors(X[j], Y, e, j, check[s])
        for j in range(Hn):
            for f in range(4):
                if f < 2 or check[s]:
                    out[f, j, s] = e[f, j]
    return out


def stream_max_errors(x0, A, y, batches, beta, h, n_steps, *, substeps, check, stationary=None):
    """max_{k ≤ n_j} ‖x_k − x(t_k)‖ of heavy ball from rest on the batch stream against the
    SGD+M flow with ("full") and without ("noreg") its h/4 terms, per (h_j, stream s).

    ``batches``: (S, N, b) indices; ``check`` (S,) bool: rerun that stream's flows at
    2·substeps (the reference error); ``stationary`` (S,) bool: use the k → ∞ coefficients of
    a constant full batch, i.e. flow (2) / flow (1) (T20). Returns (H, S) arrays full, noreg,
    full_check, noreg_check (NaN where not checked).
    """
    # fresh writeable C arrays, so that every call has the one compiled signature
    batches = np.array(batches, dtype=np.int64, order="C")
    S = batches.shape[0]
    h = np.array(np.atleast_1d(h), dtype=np.float64, order="C")
    n_steps = np.array(np.broadcast_to(np.asarray(n_steps, dtype=np.int64), h.shape), order="C")
    if int(n_steps.max()) > batches.shape[1]:
        raise ValueError(f"need {int(n_steps.max())} batches per stream, have {batches.shape[1]}")
    stationary = np.zeros(S, np.bool_) if stationary is None else np.array(stationary, np.bool_, order="C")
    check = np.array(np.broadcast_to(np.asarray(check, np.bool_), (S,)), order="C")
    A = np.array(A, np.float64, order="C")
    out = _kernel(
        np.array(x0, np.float64, order="C"),
        A,
        np.array(A @ A.T, order="C"),
        np.array(y, np.float64, order="C"),
        batches,
        stationary,
        check,
        float(beta),
        h,
        n_steps,
        int(substeps),
    )
    return {nm: out[i] for i, nm in enumerate(("full", "noreg", "full_check", "noreg_check"))}


# --------------------------------------------------------------------------------------
# the study of one β
# --------------------------------------------------------------------------------------


def sgdm_real_error_orders(
    *,
    images,
    labels,
    dataset,
    beta,
    classes,
    n_examples,
    n_features,
    batch_size,
    h_grid,
    T,
    streams,
    check_streams,
    seed,
    init_scale,
    substeps,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Global errors of SGD+M on the real-data logistic regression against the SGD+M flow with
    and without its h/4 terms, over an h grid, for one β (docs/theory.md (T96)–(T99)).

    Keywords: ``images``, ``labels`` (the training split of the prepared ``dataset``), one
    ``beta`` and the other keys of ``orders.sgdm_real``. x_0 = init_scale · N(0, I) drawn with
    np.random.default_rng(seed); L0 = λ_max of the full-data Hessian at x_0 (ε units, (T99)).
    The full-batch stream (GD+M) runs alongside: against the SGD+M flow with running
    coefficients, and with the stationary ones against flow (2) and flow (1) (T20).

    Arrays: h, eps, n_steps (H,); x0 (p,); err_full, err_noreg, check_full, check_noreg (S, H)
    (check_*: NaN on streams not rerun); det_err_full, det_err_noreg, det_err_flow2,
    det_err_flow1 (H,); det_check (4, H).
    """
    t0 = time.perf_counter()
    if dataset not in PROBLEM:
        raise ValueError(f"orders.sgdm_real.dataset must be one of {sorted(PROBLEM)}, got {dataset!r}")
    if int(batch_size) > int(n_examples):
        raise ValueError(f"orders.sgdm_real.batch_size {batch_size} exceeds n_examples {n_examples}")
    beta = float(beta)
    A, y = logreg_features(images=images, labels=labels, classes=classes, n_examples=n_examples, n_features=n_features)
    n, p = A.shape
    rng = np.random.default_rng(int(seed))
    x0 = float(init_scale) * rng.standard_normal(p)
    L0 = float(np.linalg.eigvalsh(weighted_hess(x0, A, y, np.full(n, 1.0 / n))).max())
    h, eps = h_values(h_grid, beta, L0)
    ns = n_steps(float(T), h)
    N = int(ns.max())
    S = int(streams)
    batches = batch_stream(n=n, batch_size=batch_size, n_steps=N, streams=S, seed=seed)
    check = np.arange(S) < int(check_streams)
    out = stream_max_errors(x0, A, y, batches, beta, h, ns, substeps=substeps, check=check)
    full = np.broadcast_to(np.arange(n), (2, N, n))
    det = stream_max_errors(
        x0, A, y, full, beta, h, ns, substeps=substeps, check=True, stationary=np.array([False, True])
    )
    t1 = time.perf_counter()
    arrays = {
        "h": h,
        "eps": eps,
        "n_steps": ns,
        "x0": x0,
        "err_full": out["full"].T,
        "err_noreg": out["noreg"].T,
        "check_full": out["full_check"].T,
        "check_noreg": out["noreg_check"].T,
        "det_err_full": det["full"][:, 0],
        "det_err_noreg": det["noreg"][:, 0],
        "det_err_flow2": det["full"][:, 1],
        "det_err_flow1": det["noreg"][:, 1],
        "det_check": np.stack(
            [det["full_check"][:, 0], det["noreg_check"][:, 0], det["full_check"][:, 1], det["noreg_check"][:, 1]]
        ),
    }
    errs = np.concatenate([out["full"].ravel(), out["noreg"].ravel()])
    checks = np.concatenate([v.ravel() for k, v in {**out, **det}.items() if k.endswith("check")])
    attrs = {
        "kind": "sgdm_real",
        "problem": PROBLEM[dataset],
        "beta": beta,
        "T": float(T),
        "L0": L0,
        "n_examples": n,
        "n_params": p,
        "streams": S,
        "seed": int(seed),
        "substeps": int(substeps),
        "reference_error_max": float(np.nanmax(checks)),
        "min_error": float(np.nanmin(errs)),
        "diverged": bool(not np.all(np.isfinite(errs))),
        "runtime_s": t1 - t0,
    }
    return arrays, attrs
