"""Exact finite-k theory of the gradient noise of heavy-ball momentum at a fixed parameter
point (docs/noise.md §2, §3): numpy only, no torch, so tables and figures can use it.

    ratio_iid(beta, k)                                  §2.1
    ratio_epoch(beta, k, n_examples, batch_size)        §2.2 (phase-averaged)
    epoch_quadratic(weights, n_examples, batch_size)    §2.2 (the general quadratic form)
    igrm_coefficients(beta, k, sampler, ...) -> (a, b)  §3.1: E[IGRM_s]/(h/4) = a‖m‖² + b trΣ
    igrm_ratio_theory(beta, k, mean_sq, trace, ...)     §3.1: E[IGRM_s]/E[IGR_s]
    igrm_ratio_limits(beta)                             §3.2

The Monte-Carlo estimators that these are compared with are in igrm/noise.py.
"""

from __future__ import annotations

import numpy as np

#: the mini-batch samplers the theory covers: iid (with replacement) and epoch (without)
SAMPLERS = ("iid", "epoch")


def history_weights(beta: float, k: int, normalised: bool = True) -> np.ndarray:
    """w_r, r = 0..k, of the historical gradient: (1−β) β^{k−r} (normalised) or β^{k−r}."""
    w = float(beta) ** np.arange(k, -1, -1, dtype=np.float64)
    return (1.0 - beta) * w if normalised else w


def ratio_iid(beta, k):
    """tr Cov((1−β)∇G_k) / tr Cov(g) for iid mini-batches (docs/noise.md §2.1):
    (1−β)²(1−β^{2(k+1)})/(1−β²) = (1−β)/(1+β)·(1−β^{2(k+1)})."""
    beta = np.asarray(beta, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    return (1 - beta) / (1 + beta) * (1 - beta ** (2 * (k + 1)))


def epoch_covariance_factor(n_examples: int, batch_size: int) -> tuple[int, float]:
    """M = ⌊N/b⌋ batches per epoch and c = b/(N−b): Cov(g_i, g_j) = −c·Σ_b for two
    distinct batches of one epoch (docs/noise.md §2.2)."""
    M = int(n_examples) // int(batch_size)
    if M < 2:
        raise ValueError(f"epoch sampler needs at least 2 batches per epoch (N={n_examples}, b={batch_size})")
    return M, float(batch_size) / float(n_examples - batch_size)


def epoch_quadratic(weights, n_examples: int, batch_size: int, phase: int | None = None) -> np.ndarray:
    """E‖Σ_j w_j (g_j − m)‖² / tr Σ_b under without-replacement epochs (docs/noise.md §2.2):

        Σ_j w_j² − c Σ_e [ (Σ_{j∈e} w_j)² − Σ_{j∈e} w_j² ],   c = b/(N−b),

    where e runs over the epochs the window touches and position j of the window lies in
    epoch ⌊(φ + j)/M⌋. ``phase`` φ ∈ [0, M): fixed, or None = average over φ uniform.
    ``weights``: (..., L) array; returns (...)."""
    w = np.asarray(weights, dtype=np.float64)
    M, c = epoch_covariance_factor(n_examples, batch_size)
    L = w.shape[-1]
    if phase is not None:
        phases, counts = [int(phase)], [1.0]
    elif M >= L:  # phases 0..M−L put the whole window in one epoch: one layout, weight M−L+1
        phases, counts = [0, *range(M - L + 1, M)], [float(M - L + 1)] + [1.0] * (L - 1)
    else:
        phases, counts = list(range(M)), [1.0] * M
    out = np.zeros(w.shape[:-1])
    sq = np.sum(w * w, axis=-1)
    for phi, cnt in zip(phases, counts):
        ep = (phi + np.arange(L)) // M
        n_e = int(ep[-1]) + 1
        onehot = np.zeros((L, n_e))
        onehot[np.arange(L), ep] = 1.0
        W = w @ onehot  # (..., n_e)
        out += cnt * (sq - c * (np.sum(W * W, axis=-1) - sq))
    return out / sum(counts)


def ratio_epoch(beta, k: int, n_examples: int, batch_size: int, phase: int | None = None) -> float:
    """tr Cov((1−β)∇G_k) / tr Cov(g) when mini-batches are the consecutive batches of
    fresh random permutations (one per epoch), the window's first step at a uniformly
    random phase of its epoch (phase=None) or at ``phase`` (docs/noise.md §2.2)."""
    return float(epoch_quadratic(history_weights(float(beta), int(k)), n_examples, batch_size, phase))


def _igrm_weight_matrix(beta: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows r = 0..k: coefficients of g_j in ∇G_r = Σ_{j≤r} β^{r−j} g_j (zero for j > r), and
    c_r = 1 (r = k), 2β^{k−r} (r < k): IGRM_s/(h/4) = Σ_r c_r ‖∇G_r‖² (docs/noise.md §3.1)."""
    r = np.arange(k + 1)
    diff = r[:, None] - r[None, :]
    A = np.where(diff >= 0, float(beta) ** np.maximum(diff, 0), 0.0)
    cr = 2.0 * float(beta) ** (k - r).astype(np.float64)
    cr[-1] = 1.0
    return A, cr


def igrm_coefficients(
    beta: float, k: int, sampler: str = "iid", n_examples: int | None = None, batch_size: int | None = None
) -> tuple[float, float]:
    """(a, b) with E[IGRM_s]/(h/4) = a‖m‖² + b·tr Σ_b at step k of a run from rest
    (docs/noise.md §3.1). iid: a = Σ_r c_r S_r², b = Σ_r c_r V_r with S_r = Σ_{j≤r} β^{r−j},
    V_r = Σ_{j≤r} β^{2(r−j)}; epoch: V_r replaced by the quadratic form of §2.2."""
    A, cr = _igrm_weight_matrix(beta, k)
    S = A.sum(1)
    a = float(np.sum(cr * S * S))
    if sampler == "iid":
        V = np.sum(A * A, axis=1)
    elif sampler == "epoch":
        V = epoch_quadratic(A, int(n_examples), int(batch_size))
    else:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    return a, float(np.sum(cr * V))


def igrm_ratio_theory(
    beta: float,
    k: int,
    mean_sq: float,
    trace: float,
    sampler: str = "iid",
    n_examples: int | None = None,
    batch_size: int | None = None,
) -> float:
    """E[IGRM_s]/E[IGR_s] = (a‖m‖² + b trΣ)/(‖m‖² + trΣ), same raw step h, unnormalised
    G_k as in the slides' flow (docs/noise.md §3.1)."""
    a, b = igrm_coefficients(beta, k, sampler, n_examples, batch_size)
    return (a * mean_sq + b * trace) / (mean_sq + trace)


def igrm_ratio_limits(beta) -> dict[str, np.ndarray]:
    """k → ∞ limits of E[IGRM_s]/E[IGR_s] (iid) under three normalisations (docs/noise.md §3.2):
    same h, unnormalised G (as written):   mean-dominated (1+β)/(1−β)³, noise-dominated 1/(1−β)²;
    same h, regulariser relative to the normalised force (1−β)G_k ≈ E (×(1−β)):
                                           (1+β)/(1−β)², 1/(1−β)  ← the slides' factor;
    same effective lr η, normalised G (×(1−β)²): (1+β)/(1−β), 1."""
    b = np.asarray(beta, dtype=np.float64)
    return {
        "raw_mean": (1 + b) / (1 - b) ** 3,
        "raw_noise": 1 / (1 - b) ** 2,
        "force_mean": (1 + b) / (1 - b) ** 2,
        "force_noise": 1 / (1 - b),
        "eta_mean": (1 + b) / (1 - b),
        "eta_noise": np.ones_like(b),
    }


# --------------------------------------------------------------------------- BatchNorm: mixed model
def ratio_mixed(beta, k: int, n_examples: int, batch_size: int, share, phase: int | None = None):
    """tr Cov((1−β)∇G_k)/tr Cov(g) without replacement when a batch gradient is an additive
    part (a mean of per-example terms) plus a non-additive part that is uncorrelated between
    batches (BatchNorm's coupling; docs/noise.md §8.1, docs/theory.md (T77)):

        R_mix = ρ R_epoch + (1 − ρ) R_iid,   ρ = tr Σ_add / tr Σ_b  (``share``).

    ρ = 1 is the exact without-replacement theory (T35), ρ = 0 the iid one (T34)."""
    share = np.asarray(share, dtype=np.float64)
    return share * ratio_epoch(beta, k, n_examples, batch_size, phase) + (1.0 - share) * ratio_iid(beta, k)


def mixed_moment_matrix(n, n_seg, pairs, c) -> np.ndarray:
    """(..., 2, 2) coefficients of (τ_add, τ_non) in the expectations of Q_0 and Q_s
    (docs/noise.md §8.2, docs/theory.md (T78)) for a group of n gradients in n_seg epoch
    segments with ``pairs`` = Σ_e n_e(n_e − 1) ordered same-segment pairs:

        E Q_0 = (n − 1 + cP/n) τ_add + (n − 1) τ_non
        E Q_s = (n_seg − 1 − c(n − n_seg) + cP/n) τ_add + (n_seg − 1) τ_non."""
    n, n_seg, pairs = (np.asarray(v, dtype=np.float64) for v in (n, n_seg, pairs))
    n, n_seg, pairs = np.broadcast_arrays(n, n_seg, pairs)
    A = np.empty(n.shape + (2, 2))
    A[..., 0, 0] = n - 1 + c * pairs / n
    A[..., 0, 1] = n - 1
    A[..., 1, 0] = n_seg - 1 - c * (n - n_seg) + c * pairs / n
    A[..., 1, 1] = n_seg - 1
    return A
