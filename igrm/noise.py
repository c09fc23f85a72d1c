"""Gradient-noise estimates at a fixed parameter point: variance reduction of the
historical gradient (Obs-1) and the expected implicit regulariser of SGD+M vs SGD (Obs-2).

Every formula is derived in docs/noise.md; the section number is cited next to the code.

Public API
----------
Theory (exact, finite k):
    ratio_iid(beta, k)                                  §2.1
    ratio_epoch(beta, k, n_examples, batch_size)        §2.2 (phase-averaged)
    epoch_quadratic(weights, n_examples, batch_size)    §2.2 (the general quadratic form)
    igrm_coefficients(beta, k, sampler, ...) -> (a, b)  §3.1: E[IGRM_s]/(h/4) = a‖m‖² + b trΣ
    igrm_ratio_theory(beta, k, mean_sq, trace, ...)     §3.1: E[IGRM_s]/E[IGR_s]
    igrm_ratio_limits(beta)                             §3.2
Streaming estimator:
    NoiseAccumulator                                    §4 (one pass, batch means over groups)
    summarise(groups, ...)                              §4.3 (ratios and CIs)
Mini-batch gradients:
    minibatch_indices, minibatch_grad_stream            §5
Pipeline stages:
    estimate_noise(cfg, model_state, data) -> (arrays, attrs)
    tidy_noise(results, cfg=None) -> {"ratios", "regularisation"}
    plot_variance_ratio(inputs, cfg, paths), plot_reg_ratio(inputs, cfg, paths)
    noise_claims(inputs, cfg) -> DataFrame
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)

SAMPLERS = ("iid", "epoch")

DEFAULTS: dict[str, Any] = {
    "betas": [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95],
    "ks": [5, 20, 200],
    "n_blocks": 40,            # independent blocks per sampler (each: block_len gradients)
    "n_groups": 20,            # batch-means groups (n_blocks must be a multiple, >= 2 blocks each)
    "block_len": None,         # default k_max + 1
    "batch_size": 128,
    "sampler": "both",         # iid | epoch | both
    "seed": 0,
    "device": "cpu",
    "h": None,                 # raw step for E[IGRM], E[IGR]; None: from model_state, else 1
    "ci_level": 0.95,
    "ci_method": "batch_means",  # batch_means | bootstrap
    "n_boot": 2000,
    "augment": ["none"],
    "pad": 4,
    "cutout_size": 16,
    "train_subset": None,
    "grad_impl": "loop",       # loop | vmap
    "vmap_chunk": 8,
    # model when model_state is None (fresh init; tests/benchmarks)
    "model": "small_cnn",
    "width": 1.0,
    "point": "",               # label of the parameter point (checkpoint), for tables
    # claims
    "slides_rel_tol": 0.10,
}


# =========================================================================== theory
def _weights(beta: float, k: int, normalised: bool = True) -> np.ndarray:
    """w_r, r = 0..k, of the historical gradient: (1−β) β^{k−r} (normalised) or β^{k−r}."""
    w = float(beta) ** np.arange(k, -1, -1, dtype=np.float64)
    return (1.0 - beta) * w if normalised else w


def ratio_iid(beta, k):
    """tr Cov((1−β)∇G_k) / tr Cov(g) for iid mini-batches (docs/noise.md §2.1):
    (1−β)²(1−β^{2(k+1)})/(1−β²) = (1−β)/(1+β)·(1−β^{2(k+1)})."""
    beta = np.asarray(beta, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    return (1 - beta) / (1 + beta) * (1 - beta ** (2 * (k + 1)))


def _epochs_per_batch(n_examples: int, batch_size: int) -> tuple[int, float]:
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
    M, c = _epochs_per_batch(n_examples, batch_size)
    L = w.shape[-1]
    if phase is not None:
        phases, counts = [int(phase)], [1.0]
    elif M >= L:       # phases 0..M−L put the whole window in one epoch: one layout, weight M−L+1
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
        W = w @ onehot                                     # (..., n_e)
        out += cnt * (sq - c * (np.sum(W * W, axis=-1) - sq))
    return out / sum(counts)


def ratio_epoch(beta, k: int, n_examples: int, batch_size: int, phase: int | None = None) -> float:
    """tr Cov((1−β)∇G_k) / tr Cov(g) when mini-batches are the consecutive batches of
    fresh random permutations (one per epoch), the window's first step at a uniformly
    random phase of its epoch (phase=None) or at ``phase`` (docs/noise.md §2.2)."""
    return float(epoch_quadratic(_weights(float(beta), int(k)), n_examples, batch_size, phase))


def _igrm_weight_matrix(beta: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows r = 0..k: coefficients of g_j in ∇G_r = Σ_{j≤r} β^{r−j} g_j (zero for j > r), and
    c_r = 1 (r = k), 2β^{k−r} (r < k): IGRM_s/(h/4) = Σ_r c_r ‖∇G_r‖² (docs/noise.md §3.1)."""
    r = np.arange(k + 1)
    diff = r[:, None] - r[None, :]
    A = np.where(diff >= 0, float(beta) ** np.maximum(diff, 0), 0.0)
    cr = 2.0 * float(beta) ** (k - r).astype(np.float64)
    cr[-1] = 1.0
    return A, cr


def igrm_coefficients(beta: float, k: int, sampler: str = "iid", n_examples: int | None = None,
                      batch_size: int | None = None) -> tuple[float, float]:
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


def igrm_ratio_theory(beta: float, k: int, mean_sq: float, trace: float, sampler: str = "iid",
                      n_examples: int | None = None, batch_size: int | None = None) -> float:
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
    return {"raw_mean": (1 + b) / (1 - b) ** 3, "raw_noise": 1 / (1 - b) ** 2,
            "force_mean": (1 + b) / (1 - b) ** 2, "force_noise": 1 / (1 - b),
            "eta_mean": (1 + b) / (1 - b), "eta_noise": np.ones_like(b)}


# =========================================================================== streaming estimator
class NoiseAccumulator:
    """One pass over a stream of mini-batch gradients, organised in independent blocks
    (docs/noise.md §4). Within a block, for every k of the grid the stream is cut into
    consecutive windows of k+1 gradients; in every window and for every β the historical
    sum restarts from rest (H ← βH + g). At the end of a window it records
    x = (1−β)H (normalised ∇G_k) and I = 2A_k − ‖H_k‖² (with A_r = βA_{r−1} + ‖H_r‖²,
    IGRM_s/(h/4) of §3.1). Blocks are grouped; at the end of a group the group's unbiased
    estimates are stored (batch means, §4.2). Memory: 2·|β|·|k| + 1 vectors of P float64.

    Usage: ``start_block(phase)``, ``push(g)`` × block_len, ``end_block()``; ``end_group()``.
    ``epoch=(N, b)`` turns on the without-replacement corrections (phase = the batch index
    of the block's first gradient within its epoch; each block starts a fresh permutation).
    """

    def __init__(self, betas: Sequence[float], ks: Sequence[int], block_len: int | None = None,
                 epoch: tuple[int, int] | None = None, device="cpu"):
        self.betas = np.asarray(betas, dtype=np.float64)
        self.ks = np.asarray(ks, dtype=np.int64)
        if np.any(self.ks < 0) or np.any(self.betas < 0) or np.any(self.betas >= 1):
            raise ValueError("need k >= 0 and 0 <= beta < 1")
        self.block_len = int(block_len or (int(self.ks.max()) + 1))
        if self.block_len < int(self.ks.max()) + 1:
            raise ValueError(f"block_len {self.block_len} < k_max + 1 = {int(self.ks.max()) + 1}")
        self.epoch = epoch
        if epoch is not None:
            self.M, self.c = _epochs_per_batch(*epoch)
        else:
            self.M, self.c = None, 0.0
        self.device = torch.device(device)
        self._tb = torch.tensor(self.betas, dtype=torch.float64, device=self.device)[:, None, None]
        self._t1mb = (1 - self._tb)
        self.groups: list[dict[str, np.ndarray]] = []
        self.P = None
        self._in_block = False
        self._corr_cache: dict[int, tuple[np.ndarray, float]] = {}
        self.n_grad = 0

    # ---------------------------------------------------------------- group state
    def _alloc(self, P: int):
        nb, nk = len(self.betas), len(self.ks)
        z = lambda *s: torch.zeros(*s, dtype=torch.float64, device=self.device)  # noqa: E731
        self.P = P
        self.H = z(nb, nk, P)                 # running unnormalised historical sums
        self.A = z(nb, nk)                    # running Σ β^{r−j}‖H_j‖²
        self._reset_group()

    def _reset_group(self):
        nb, nk, P = len(self.betas), len(self.ks), self.P
        z = lambda *s: torch.zeros(*s, dtype=torch.float64, device=self.device)  # noqa: E731
        self.g_sum, self.g_sq, self.g_n, self.g_pairs = z(P), 0.0, 0, 0.0
        self.x_sum, self.x_sq = z(nb, nk, P), z(nb, nk)
        self.i_sum = z(nb, nk)
        self.x_n = np.zeros(len(self.ks), dtype=np.int64)
        self.x_corr = np.zeros((nb, nk))
        self.blocks_in_group = 0

    def start_block(self, phase: int = 0):
        if self._in_block:
            raise RuntimeError("start_block inside a block")
        self._in_block, self._pos, self._phase = True, 0, int(phase)

    def push(self, g) -> None:
        """Add one mini-batch gradient (flat tensor or array; converted to float64)."""
        if not self._in_block:
            raise RuntimeError("push outside a block: call start_block() first")
        if self._pos >= self.block_len:
            raise RuntimeError(f"block already has block_len = {self.block_len} gradients")
        g = torch.as_tensor(g).to(device=self.device, dtype=torch.float64).reshape(-1)
        if self.P is None:
            self._alloc(g.numel())
        self.g_sum += g
        self.g_sq += float(g @ g)
        self.g_n += 1
        self.n_grad += 1
        # H <- beta H + g for every (beta, k); A <- beta A + ||H||^2       (docs/noise.md §4.1)
        self.H.mul_(self._tb).add_(g)
        hn = torch.einsum("bkp,bkp->bk", self.H, self.H)
        self.A.mul_(self._tb[:, :, 0]).add_(hn)
        t = self._pos
        self._pos += 1
        ends = np.nonzero((t + 1) % (self.ks + 1) == 0)[0]        # windows ending at this step
        if len(ends):
            ki = torch.as_tensor(ends, device=self.device)
            x = self.H[:, ki] * self._t1mb                          # normalised (1−β)∇G_k
            self.x_sum[:, ki] += x
            self.x_sq[:, ki] += torch.einsum("bkp,bkp->bk", x, x)
            self.i_sum[:, ki] += 2 * self.A[:, ki] - hn[:, ki]     # IGRM_s/(h/4) at step k
            self.x_n[ends] += 1
            self.H[:, ki] = 0.0
            self.A[:, ki] = 0.0

    def _block_corrections(self, phase: int, length: int) -> tuple[np.ndarray, float]:
        """Same-epoch pair terms of one block (docs/noise.md §4.2): for every (β, k)
        Σ_e[(Σ_i W_ie)² − Σ_i W_ie²] over its windows i, and Σ_e n_e(n_e − 1) for the gradients."""
        key = (phase, length)
        if key in self._corr_cache:
            return self._corr_cache[key]
        nb, nk = len(self.betas), len(self.ks)
        corr = np.zeros((nb, nk))
        ep = (phase + np.arange(length)) // self.M
        n_e = int(ep[-1]) + 1 if length else 0
        counts = np.bincount(ep, minlength=n_e).astype(np.float64)
        pairs = float(np.sum(counts * (counts - 1)))
        for j, k in enumerate(self.ks):
            nw = length // (k + 1)
            if nw < 1:
                continue
            pos = np.arange(nw * (k + 1))
            onehot = np.zeros((nw, k + 1, n_e))
            onehot[pos // (k + 1), pos % (k + 1), ep[pos]] = 1.0
            for i, b in enumerate(self.betas):
                W = np.einsum("t,wte->we", _weights(b, int(k)), onehot)   # window × epoch sums
                corr[i, j] = np.sum(W.sum(0) ** 2) - np.sum(W * W)
        self._corr_cache[key] = (corr, pairs)
        return corr, pairs

    def end_block(self):
        if not self._in_block:
            raise RuntimeError("end_block outside a block")
        if self.epoch is not None:
            corr, pairs = self._block_corrections(self._phase, self._pos)
            self.x_corr += corr
            self.g_pairs += pairs
        # windows cut short by the block end are dropped; running sums restart
        self.H.zero_()
        self.A.zero_()
        self._in_block = False
        self.blocks_in_group += 1

    def end_group(self) -> dict[str, np.ndarray]:
        """Close the current group: its unbiased estimates (docs/noise.md §4.2)."""
        if self._in_block:
            raise RuntimeError("end_group inside a block")
        n = self.g_n
        nw = self.x_n.astype(np.float64)
        if n < 2 or np.any(nw < 2):
            raise ValueError(f"a group needs >= 2 windows of every k (got {self.x_n.tolist()}); "
                             "use more blocks per group")
        S2 = float(self.g_sum @ self.g_sum)
        Q0 = self.g_sq - S2 / n
        c = self.c
        trace = Q0 / (n - 1 + c * self.g_pairs / n)                    # tr Σ_b, unbiased
        mean_sq = (S2 - trace * (n - c * self.g_pairs)) / n ** 2         # ‖m‖², unbiased
        Xn = torch.einsum("bkp,bkp->bk", self.x_sum, self.x_sum).cpu().numpy()
        Qx = self.x_sq.cpu().numpy() - Xn / nw
        cov_hist = (Qx - trace * c * self.x_corr / nw) / (nw - 1)        # tr Cov((1−β)∇G_k)
        out = {"trace": trace, "mean_sq": mean_sq, "msq": self.g_sq / n,
               "cov_hist": cov_hist, "igrm": self.i_sum.cpu().numpy() / nw,
               "n_grad": n, "n_windows": self.x_n.copy(), "n_blocks": self.blocks_in_group}
        self.groups.append(out)
        self._reset_group()
        return out

    def add_block(self, grads: Iterable, phase: int = 0):
        self.start_block(phase)
        for g in grads:
            self.push(g)
        self.end_block()


# =========================================================================== CIs
def _tq(level: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


def ratio_ci(num: np.ndarray, den: np.ndarray, level: float = 0.95, method: str = "batch_means",
             n_boot: int = 2000, rng: np.random.Generator | None = None):
    """Ratio of means over groups (axis 0) and its CI (docs/noise.md §4.3).
    batch_means: delta method, se² = Var_g(num − R·den)/(G·mean(den)²), t_{G−1} quantile;
    bootstrap: percentile interval of the ratio of resampled group means."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    G = num.shape[0]
    R = num.mean(0) / den.mean(0)
    if method == "batch_means":
        resid = num - R * den
        se = resid.std(0, ddof=1) / math.sqrt(G) / np.abs(den.mean(0))
        q = _tq(level, G - 1)
        return R, R - q * se, R + q * se, se
    if method == "bootstrap":
        rng = rng or np.random.default_rng(0)
        idx = rng.integers(0, G, size=(n_boot, G))
        Rb = num[idx].mean(1) / den[idx].mean(1)
        lo, hi = np.quantile(Rb, [0.5 - level / 2, 0.5 + level / 2], axis=0)
        return R, lo, hi, Rb.std(0, ddof=1)
    raise ValueError(f"ci_method must be batch_means or bootstrap, got {method!r}")


def _stack(groups, key):
    return np.stack([np.asarray(g[key], dtype=np.float64) for g in groups])


def summarise(groups: Sequence[Mapping[str, Any]], betas, ks, sampler: str = "iid",
              n_examples: int | None = None, batch_size: int | None = None, level: float = 0.95,
              method: str = "batch_means", n_boot: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """Ratios with CIs and the theory values from the group estimates (docs/noise.md §4.3)."""
    betas, ks = np.asarray(betas, float), np.asarray(ks, int)
    rng = np.random.default_rng(seed)
    G = len(groups)
    if G < 2:
        raise ValueError("need at least 2 groups for a confidence interval")
    tr = _stack(groups, "trace")
    ms = _stack(groups, "mean_sq")
    msq = _stack(groups, "msq")
    cov = _stack(groups, "cov_hist")                 # (G, nb, nk)
    ig = _stack(groups, "igrm")
    out: dict[str, np.ndarray] = {}
    R, lo, hi, se = ratio_ci(cov, tr[:, None, None], level, method, n_boot, rng)
    out.update(ratio=R, ratio_lo=lo, ratio_hi=hi, ratio_se=se)
    th_iid = ratio_iid(betas[:, None], ks[None, :])
    out["theory_iid"] = th_iid
    if n_examples is not None and batch_size is not None and n_examples // batch_size >= 2:
        out["theory_epoch"] = np.array([[ratio_epoch(b, k, n_examples, batch_size) for k in ks] for b in betas])
    else:
        out["theory_epoch"] = np.full_like(th_iid, np.nan)
    th = th_iid if sampler == "iid" else out["theory_epoch"]
    out["theory"] = th
    # z of (measured − theory): numerator cov − th·tr has mean 0 under the theory
    d = cov - th[None] * tr[:, None, None]
    out["ratio_z"] = d.mean(0) / (d.std(0, ddof=1) / math.sqrt(G)) / tr.mean()
    # E[IGRM_s]/E[IGR_s] (h cancels), exact theory from the measured ‖m‖², trΣ
    rho, rlo, rhi, rse = ratio_ci(ig, msq[:, None, None], level, method, n_boot, rng)
    out.update(igrm_over_igr=rho, igrm_over_igr_lo=rlo, igrm_over_igr_hi=rhi, igrm_over_igr_se=rse)
    a = np.zeros((len(betas), len(ks)))
    b = np.zeros_like(a)
    for i, be in enumerate(betas):
        for j, k in enumerate(ks):
            a[i, j], b[i, j] = igrm_coefficients(float(be), int(k), sampler, n_examples, batch_size)
    th_num = a[None] * ms[:, None, None] + b[None] * tr[:, None, None]
    t, tlo, thi, _ = ratio_ci(th_num, msq[:, None, None], level, method, n_boot, rng)
    out.update(igrm_theory=t, igrm_theory_lo=tlo, igrm_theory_hi=thi, igrm_a=a, igrm_b=b)
    diff, dlo, dhi, _ = ratio_ci(ig - th_num, msq[:, None, None], level, method, n_boot, rng)
    out.update(igrm_diff=diff, igrm_diff_lo=dlo, igrm_diff_hi=dhi)
    for key, arr in (("mean_sq_norm", ms), ("trace_cov", tr), ("msq", msq)):
        m = arr.mean()
        s = arr.std(ddof=1) / math.sqrt(G)
        out[key], out[key + "_se"] = np.float64(m), np.float64(s)
    out["n_windows"] = np.sum(_stack(groups, "n_windows"), axis=0).astype(np.int64)
    out["n_grad_evals"] = np.int64(sum(int(g["n_grad"]) for g in groups))
    return out


# =========================================================================== mini-batch gradients
def minibatch_indices(n_examples: int, batch_size: int, n: int, sampler: str = "iid",
                      generator: torch.Generator | None = None, phase: int = 0) -> Iterator[Tensor]:
    """Index tensors (CPU, int64) of ``n`` mini-batches (docs/noise.md §5).
    iid: b indices uniform with replacement, batches independent (Cov = Σ_1/b).
    epoch: the batches of fresh random permutations, ⌊N/b⌋ per epoch (the remainder dropped,
    as training does), starting at batch ``phase`` of the first permutation (the earlier
    batches are skipped, no gradient is computed for them)."""
    if sampler == "iid":
        for _ in range(n):
            yield torch.randint(0, n_examples, (batch_size,), generator=generator)
        return
    if sampler != "epoch":
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    M = n_examples // batch_size
    if M < 1:
        raise ValueError(f"batch_size {batch_size} > N = {n_examples}")
    pos, done = int(phase) % M, 0
    while done < n:
        perm = torch.randperm(n_examples, generator=generator)
        while pos < M and done < n:
            yield perm[pos * batch_size:(pos + 1) * batch_size]
            pos += 1
            done += 1
        pos = 0


def _as_tensors(data, device) -> dict[str, Any]:
    """(x, y) float tensors, or the dataset layer's dict (uint8 images, normalised per batch)."""
    if isinstance(data, dict) and data.get("_noise_tensors"):
        return data
    if isinstance(data, (tuple, list)):
        x, y = data
        return {"_noise_tensors": True, "x": torch.as_tensor(x).to(device),
                "y": torch.as_tensor(y).to(device), "u8": False}
    from .train import to_device_uint8, unpack_data

    d = unpack_data(data)
    return {"_noise_tensors": True, "x": to_device_uint8(d["train/images"], device).contiguous(),
            "y": torch.from_numpy(d["train/labels"]).to(device), "u8": True,
            "mean": torch.tensor(d["mean"], dtype=torch.float32, device=device),
            "std": torch.tensor(d["std"], dtype=torch.float32, device=device),
            "num_classes": d["num_classes"]}


def _batch_inputs(t, idx, augment, aug_gen, pad, cutout_size):
    x = t["x"][idx]
    if t["u8"]:
        from .train import augment_batch

        x = augment_batch(x, augment, aug_gen, t["mean"], t["std"], pad, cutout_size).contiguous()
    return x, t["y"][idx]


def minibatch_grad_stream(model: nn.Module, data, batch_size: int, n: int, sampler: str = "iid",
                          generator: torch.Generator | None = None, device="cpu", *, phase: int = 0,
                          augment: Sequence[str] = ("none",), aug_generator: torch.Generator | None = None,
                          pad: int = 4, cutout_size: int = 16, impl: str = "loop",
                          vmap_chunk: int = 8, loss_fn=F.cross_entropy) -> Iterator[Tensor]:
    """Yield ``n`` flattened mini-batch gradients ∇_θ mean-loss(batch) at the model's
    current parameters, as training computes them (docs/noise.md §5): train mode, so
    BatchNorm normalises with the batch's own statistics; the gradient is that of the
    batch's mean loss (not an average of per-example gradients, which differs under BN).
    BN running statistics are left unchanged (saved and restored); the model's mode is
    restored. ``impl``: 'loop' (one forward/backward per batch) or 'vmap' (torch.func over
    ``vmap_chunk`` stacked mini-batches, BN with batch statistics on a copy of the model).
    ``data``: (x, y) tensors (x ready for the model) or the dataset layer's dict."""
    device = torch.device(device)
    t = _as_tensors(data, device)
    N = len(t["y"])
    idx_iter = minibatch_indices(N, batch_size, n, sampler, generator, phase)
    params = [p for p in model.parameters() if p.requires_grad]
    bufs = dict(model.named_buffers())
    saved = {k: v.detach().clone() for k, v in bufs.items()}
    was_training = model.training
    model.train()
    try:
        if impl == "loop":
            for idx in idx_iter:
                x, y = _batch_inputs(t, idx.to(device), augment, aug_generator, pad, cutout_size)
                loss = loss_fn(model(x), y)
                grads = torch.autograd.grad(loss, params)
                yield torch.cat([g.reshape(-1) for g in grads])
        elif impl == "vmap":
            yield from _vmap_stream(model, t, idx_iter, device, augment, aug_generator, pad, cutout_size,
                                    vmap_chunk, loss_fn)
        else:
            raise ValueError(f"impl must be 'loop' or 'vmap', got {impl!r}")
    finally:
        with torch.no_grad():
            for k, v in saved.items():
                if k in bufs:
                    bufs[k].copy_(v)
        model.train(was_training)


def _vmap_stream(model, t, idx_iter, device, augment, aug_gen, pad, cutout_size, chunk, loss_fn):
    from torch.func import functional_call, grad, replace_all_batch_norm_modules_, vmap

    mc = copy.deepcopy(model)
    replace_all_batch_norm_modules_(mc)       # BN: batch statistics, no running-stat updates
    mc.train()
    names = [k for k, p in mc.named_parameters() if p.requires_grad]
    params = {k: p.detach() for k, p in mc.named_parameters() if p.requires_grad}
    buffers = {k: b for k, b in mc.named_buffers()}

    def f(p, x, y):
        return loss_fn(functional_call(mc, (p, buffers), (x,)), y)

    vg = vmap(grad(f), in_dims=(None, 0, 0), randomness="different")
    pending = []

    def flush():
        xs, ys = zip(*pending)
        gs = vg(params, torch.stack(xs), torch.stack(ys))
        flat = torch.cat([gs[k].reshape(len(xs), -1) for k in names], dim=1)
        pending.clear()
        return flat

    for idx in idx_iter:
        pending.append(_batch_inputs(t, idx.to(device), augment, aug_gen, pad, cutout_size))
        if len(pending) == chunk:
            yield from flush()
    if pending:
        yield from flush()


# =========================================================================== pipeline stage
def resolve_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown noise cfg key(s): {', '.join(unknown)}")
    c = {**DEFAULTS, **cfg}
    c["betas"] = [float(b) for b in c["betas"]]
    c["ks"] = sorted(int(k) for k in c["ks"])
    if isinstance(c["augment"], str):
        c["augment"] = [c["augment"]]
    c["samplers"] = list(SAMPLERS) if c["sampler"] == "both" else [c["sampler"]]
    for s in c["samplers"]:
        if s not in SAMPLERS:
            raise ValueError(f"noise cfg key 'sampler' must be iid, epoch or both, got {c['sampler']!r}")
    nb, G = int(c["n_blocks"]), int(c["n_groups"])
    if G < 2 or nb % G or nb // G < 2:
        raise ValueError(f"n_blocks ({nb}) must be a multiple of n_groups ({G}) with >= 2 blocks per group")
    if c["ci_method"] not in ("batch_means", "bootstrap"):
        raise ValueError(f"ci_method must be batch_means or bootstrap, got {c['ci_method']!r}")
    if not all(0 <= b < 1 for b in c["betas"]):
        raise ValueError("betas must lie in [0, 1)")
    return c


def _infer_spec(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    four = [v for k, v in state_dict.items() if k.endswith("weight") and v.ndim == 4]
    lin = [v for k, v in state_dict.items() if k.endswith("weight") and v.ndim == 2]
    return {"in_channels": int(four[0].shape[1]) if four else None,
            "num_classes": int(lin[-1].shape[0]) if lin else None}


def model_state_from_run(arrays: Mapping[str, Any], attrs: Mapping[str, Any],
                         prefix: str = "final_state/") -> dict[str, Any]:
    """model_state from a training run's result: ``final_state/*`` arrays (default) or a
    snapshot, ``prefix="snapshots/epoch0005/"``; the model spec from attrs['config']."""
    cfg = attrs.get("config", {})
    if isinstance(cfg, str):
        cfg = json.loads(cfg)
    sd = {k[len(prefix):]: torch.as_tensor(np.asarray(v)) for k, v in arrays.items() if k.startswith(prefix)}
    if not sd:
        have = sorted({k.rsplit("/", 1)[0] for k in arrays if "/" in k})
        raise KeyError(f"no parameters under {prefix!r} in the run's result; it has {have}")
    spec = {"model": cfg.get("model", "resnet18"), "width": float(cfg.get("width", 1.0)), **_infer_spec(sd)}
    if "h" in attrs:
        spec["h"] = float(attrs["h"])
    return {"spec": spec, "state_dict": sd}


def load_model(model_state, cfg: Mapping[str, Any], num_classes: int, in_channels: int,
               device) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model of ``model_state``: (spec, state_dict), {'spec', 'state_dict'}, a
    checkpoint dict ({'model': state_dict, 'cfg': ...}) or None (fresh seeded init of cfg's model)."""
    from .models import build_model
    from .train import seed_for

    if model_state is None:
        spec, sd = {"model": cfg["model"], "width": float(cfg["width"])}, None
    elif isinstance(model_state, (tuple, list)):
        spec, sd = dict(model_state[0]), model_state[1]
    elif "state_dict" in model_state:
        spec, sd = dict(model_state.get("spec", {})), model_state["state_dict"]
    elif "model" in model_state and isinstance(model_state["model"], Mapping):
        ck = model_state.get("cfg") or {}
        spec, sd = {"model": ck.get("model", "resnet18"), "width": ck.get("width", 1.0)}, model_state["model"]
    else:
        raise ValueError("model_state must be (spec, state_dict), {'spec','state_dict'}, a checkpoint or None")
    if sd is not None:
        sd = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, Tensor) else v for k, v in sd.items()}
        inferred = _infer_spec(sd)
        spec.setdefault("num_classes", inferred["num_classes"])
        spec.setdefault("in_channels", inferred["in_channels"])
    name = spec.get("model", spec.get("name"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(int(cfg["seed"]), "noise-init"))
        model = build_model(name, int(spec.get("num_classes") or num_classes),
                            int(spec.get("in_channels") or in_channels), float(spec.get("width", 1.0)))
    if sd is not None:
        model.load_state_dict(sd)
    spec.update(model=name)
    return model.to(device), spec


def estimate_noise(cfg: Mapping[str, Any] | None, model_state, data) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Monte-Carlo noise estimates at one parameter point (docs/noise.md §4, §6).

    Arrays (S = samplers, leading axis): samplers, betas, ks, ratio, ratio_lo, ratio_hi
    (S×β×k), theory_iid (β×k), theory_epoch (β×k), theory (S×β×k), ratio_z,
    igrm_over_igr (+_lo, _hi), igrm_theory (+_lo, _hi), igrm_diff (+_lo, _hi), e_igrm,
    e_igr, mean_sq_norm, trace_cov (S), n_windows (S×k), n_grad_evals (S)."""
    from .train import resolve_device, seed_for

    c = resolve_config(cfg)
    device = resolve_device(c["device"])
    t = _as_tensors(data, device)
    if t.get("u8") and c["train_subset"] is not None:
        g_sub = torch.Generator().manual_seed(seed_for(int(c["seed"]), "noise-subset"))
        keep = torch.randperm(len(t["y"]), generator=g_sub)[: int(c["train_subset"])].to(device)
        t = {**t, "x": t["x"][keep], "y": t["y"][keep]}
    N = len(t["y"])
    b = int(c["batch_size"])
    in_ch = int(t["x"].shape[1])
    num_classes = int(t.get("num_classes") or int(t["y"].max()) + 1)
    model, spec = load_model(model_state, c, num_classes, in_ch, device)
    h = c["h"] if c["h"] is not None else spec.get("h", 1.0)
    L = int(c["block_len"] or (max(c["ks"]) + 1))
    per_group = int(c["n_blocks"]) // int(c["n_groups"])
    res: dict[str, list] = {}
    t0 = time.perf_counter()
    for s in c["samplers"]:
        gen = torch.Generator().manual_seed(seed_for(int(c["seed"]), f"noise-{s}"))
        aug = torch.Generator(device=device).manual_seed(seed_for(int(c["seed"]), f"noise-aug-{s}"))
        acc = NoiseAccumulator(c["betas"], c["ks"], L, epoch=(N, b) if s == "epoch" else None, device=device)
        M = N // b
        for blk in range(int(c["n_blocks"])):
            phase = int(torch.randint(0, M, (1,), generator=gen)) if s == "epoch" else 0
            acc.add_block(minibatch_grad_stream(model, t, b, L, s, gen, device, phase=phase,
                                                augment=c["augment"], aug_generator=aug, pad=int(c["pad"]),
                                                cutout_size=int(c["cutout_size"]), impl=c["grad_impl"],
                                                vmap_chunk=int(c["vmap_chunk"])), phase)
            if (blk + 1) % per_group == 0:
                acc.end_group()
        out = summarise(acc.groups, c["betas"], c["ks"], s, N, b, float(c["ci_level"]), c["ci_method"],
                        int(c["n_boot"]), int(c["seed"]))
        for k, v in out.items():
            res.setdefault(k, []).append(v)
        log.info("noise %s: %d gradient evaluations", s, int(out["n_grad_evals"]))
    wall = time.perf_counter() - t0
    arrays: dict[str, np.ndarray] = {"samplers": np.array(c["samplers"]), "betas": np.array(c["betas"]),
                                     "ks": np.array(c["ks"], dtype=np.int64)}
    for k, v in res.items():
        if k in ("theory_iid", "theory_epoch"):
            arrays[k] = np.asarray(v[-1])
        else:
            arrays[k] = np.stack([np.asarray(x) for x in v])
    arrays["e_igrm"] = h / 4 * arrays["igrm_over_igr"] * arrays["msq"][:, None, None]
    arrays["e_igr"] = h / 4 * arrays["msq"]
    attrs = {"point": c["point"], "h": float(h), "n_examples": N, "batch_size": b,
             "batches_per_epoch": N // b, "block_len": L, "n_blocks": int(c["n_blocks"]),
             "n_groups": int(c["n_groups"]), "ci_level": float(c["ci_level"]), "ci_method": c["ci_method"],
             "model": spec.get("model"), "width": float(spec.get("width", 1.0)),
             "grad_impl": c["grad_impl"], "augment": list(c["augment"]), "device": str(device),
             "wall_time_noise_s": wall, "seed": int(c["seed"]),
             "config": {k: v for k, v in c.items() if k != "samplers"}}
    return arrays, attrs


# =========================================================================== tidy / plots / claims
def _attrs_dict(attrs):
    return {k: (json.loads(v) if k == "config" and isinstance(v, str) else v) for k, v in attrs.items()}


def tidy_noise(results, cfg=None) -> dict[str, pd.DataFrame]:
    """One row per (point, sampler, β, k) in 'ratios' and 'regularisation'."""
    rat, reg = [], []
    for arrays, attrs in results:
        attrs = _attrs_dict(attrs)
        samplers = [s.decode() if isinstance(s, bytes) else str(s) for s in np.atleast_1d(arrays["samplers"])]
        betas, ks = np.asarray(arrays["betas"], float), np.asarray(arrays["ks"], int)
        for si, s in enumerate(samplers):
            for i, b in enumerate(betas):
                for j, k in enumerate(ks):
                    base = {"point": attrs.get("point", ""), "model": attrs.get("model", ""), "sampler": s,
                            "beta": float(b), "k": int(k), "batch_size": attrs.get("batch_size"),
                            "n_examples": attrs.get("n_examples"),
                            "n_grad_evals": int(np.asarray(arrays["n_grad_evals"])[si]),
                            "n_windows": int(np.asarray(arrays["n_windows"])[si, j])}
                    rat.append({**base, "ratio": arrays["ratio"][si, i, j], "lo": arrays["ratio_lo"][si, i, j],
                                "hi": arrays["ratio_hi"][si, i, j], "z": arrays["ratio_z"][si, i, j],
                                "theory": arrays["theory"][si, i, j],
                                "theory_iid": arrays["theory_iid"][i, j],
                                "theory_epoch": arrays["theory_epoch"][i, j],
                                "slides": (1 - b) / (1 + b)})
                    lim = igrm_ratio_limits(b)
                    reg.append({**base, "igrm_over_igr": arrays["igrm_over_igr"][si, i, j],
                                "lo": arrays["igrm_over_igr_lo"][si, i, j], "hi": arrays["igrm_over_igr_hi"][si, i, j],
                                "theory": arrays["igrm_theory"][si, i, j],
                                "theory_lo": arrays["igrm_theory_lo"][si, i, j],
                                "theory_hi": arrays["igrm_theory_hi"][si, i, j],
                                "diff_lo": arrays["igrm_diff_lo"][si, i, j], "diff_hi": arrays["igrm_diff_hi"][si, i, j],
                                "slides": 1 / (1 - b),
                                "force_normalised": (1 - b) * arrays["igrm_over_igr"][si, i, j],
                                "force_normalised_lo": (1 - b) * arrays["igrm_over_igr_lo"][si, i, j],
                                "force_normalised_hi": (1 - b) * arrays["igrm_over_igr_hi"][si, i, j],
                                "limit_raw_noise": float(lim["raw_noise"]), "limit_raw_mean": float(lim["raw_mean"]),
                                "mean_sq_norm": float(np.asarray(arrays["mean_sq_norm"])[si]),
                                "trace_cov": float(np.asarray(arrays["trace_cov"])[si]),
                                "e_igrm": arrays["e_igrm"][si, i, j],
                                "e_igr": float(np.asarray(arrays["e_igr"])[si])})
    return {"ratios": pd.DataFrame(rat), "regularisation": pd.DataFrame(reg)}


_K_MARKERS = ("o", "s", "^", "D", "v", "P")
_K_STYLES = (":", "--", "-", "-.")


def plot_variance_ratio(inputs, cfg, paths):
    """Measured tr Cov((1−β)∇G_k)/tr Cov(g) vs β (95% CIs; colour = β, marker = k) with the
    exact theory per k (iid: thin lines; epoch: thick) and the slides' (1−β)/(1+β)."""
    from .figures.style import beta_color, figure, save

    df = inputs["ratios"] if isinstance(inputs, Mapping) else inputs
    samplers = list(dict.fromkeys(df["sampler"]))
    fig, axes = figure(1, len(samplers), width=3.6, height=3.2)
    bb = np.linspace(0, max(0.99, df["beta"].max()), 200)
    for ax, s in zip(axes[0], samplers):
        d = df[df["sampler"] == s]
        ks = sorted(d["k"].unique())
        for j, k in enumerate(ks):
            dk = d[d["k"] == k].sort_values("beta")
            ax.plot(bb, ratio_iid(bb, k), _K_STYLES[j % 4], color="0.5", lw=0.9,
                    label=f"iid theory k={k}")
            if s == "epoch":
                ax.plot(dk["beta"], dk["theory_epoch"], _K_STYLES[j % 4], color="k", lw=1.4,
                        label=f"epoch theory k={k}")
            for _, r in dk.iterrows():
                ax.errorbar(r["beta"] + 0.006 * (j - 1), r["ratio"], yerr=[[r["ratio"] - r["lo"]], [r["hi"] - r["ratio"]]],
                            fmt=_K_MARKERS[j % 6], ms=4, color=beta_color(r["beta"]), capsize=2)
            ax.plot([], [], _K_MARKERS[j % 6], color="0.3", label=f"measured k={k}")
        ax.plot(bb, (1 - bb) / (1 + bb), color="tab:red", lw=0.8, alpha=0.6, label="slides (1−β)/(1+β)")
        ax.set_yscale("log")
        ax.set_xlabel("β")
        ax.set_ylabel("tr Cov((1−β)∇G_k) / tr Cov(g)")
        ax.set_title(f"{s} mini-batches")
        ax.legend(fontsize=6, ncol=1)
    save(fig, paths, caption="Variance reduction of the normalised historical gradient at a fixed point: "
                             "measured ratio (95% CI, batch means over independent blocks) vs the exact theory "
                             "(docs/noise.md §2).")


def plot_reg_ratio(inputs, cfg, paths):
    """E[IGRM_s]/E[IGR_s] vs β (same h, G as written): measured (95% CI), exact theory from the
    measured ‖m‖², trΣ, the slides' 1/(1−β) and the noise/mean-dominated limits."""
    from .figures.style import beta_color, figure, save

    df = inputs["regularisation"] if isinstance(inputs, Mapping) else inputs
    samplers = list(dict.fromkeys(df["sampler"]))
    fig, axes = figure(1, len(samplers), width=3.6, height=3.2)
    bb = np.linspace(0, max(0.96, df["beta"].max()), 200)
    lim = igrm_ratio_limits(bb)
    for ax, s in zip(axes[0], samplers):
        d = df[df["sampler"] == s]
        ks = sorted(d["k"].unique())
        for j, k in enumerate(ks):
            dk = d[d["k"] == k].sort_values("beta")
            ax.plot(dk["beta"], dk["theory"], _K_STYLES[j % 4], color="k", lw=1.0, label=f"exact k={k}")
            for _, r in dk.iterrows():
                ax.errorbar(r["beta"] + 0.006 * (j - 1), r["igrm_over_igr"],
                            yerr=[[r["igrm_over_igr"] - r["lo"]], [r["hi"] - r["igrm_over_igr"]]],
                            fmt=_K_MARKERS[j % 6], ms=4, color=beta_color(r["beta"]), capsize=2)
            ax.plot([], [], _K_MARKERS[j % 6], color="0.3", label=f"measured k={k}")
        ax.plot(bb, 1 / (1 - bb), color="tab:red", lw=1.2, label="slides 1/(1−β)")
        ax.plot(bb, lim["raw_noise"], color="tab:blue", lw=0.8, alpha=0.6, label="k→∞, noise-dom. 1/(1−β)²")
        ax.plot(bb, lim["raw_mean"], color="tab:green", lw=0.8, alpha=0.6, label="k→∞, mean-dom. (1+β)/(1−β)³")
        ax.set_yscale("log")
        ax.set_xlabel("β")
        ax.set_ylabel("E[IGRM_s] / E[IGR_s]  (same h)")
        ax.set_title(f"{s} mini-batches")
        ax.legend(fontsize=6)
    save(fig, paths, caption="Expected implicit regulariser of SGD+M over SGD's at the same raw step h "
                             "(docs/noise.md §3): measured, exact theory, the slides' 1/(1−β).")


def noise_claims(inputs, cfg=None) -> pd.DataFrame:
    """Claims rows (docs/noise.md §7), per (point, sampler):
    noise/variance_ratio_theory/<point>/<sampler>: how many (β, k) CIs miss the exact theory
      (reproduces when misses ≤ the 99% binomial quantile at 1−ci_level);
    noise/variance_ratio_slides/<point>/<sampler>: measured ratio at the largest k vs (1−β)/(1+β);
    noise/reg_ratio_theory/<point>/<sampler>: CIs of E[IGRM]/E[IGR] − exact theory that miss 0;
    noise/reg_ratio_slides/<point>/<sampler>[/force]: measured ratio at the largest k vs 1/(1−β)
      as written (same h) and normalised to the force (×(1−β)); relative tolerance slides_rel_tol."""
    from scipy.stats import binom

    from . import claims as C

    c = {**DEFAULTS, **(cfg or {})}
    level = float(c["ci_level"])
    tol = float(c["slides_rel_tol"])
    rat, reg = inputs["ratios"], inputs["regularisation"]
    rows = []
    for (point, s), d in rat.groupby(["point", "sampler"], sort=False):
        tag = f"{point or 'point'}/{s}"
        miss = (d["theory"] < d["lo"]) | (d["theory"] > d["hi"])
        n, m = len(d), int(miss.sum())
        allowed = int(binom.ppf(0.99, n, 1 - level))
        worst = d.loc[d["z"].abs().idxmax()]
        dep = d[d["k"] == d["k"].max()]
        rows.append(C.row(
            f"noise/variance_ratio_theory/{tag}",
            f"Obs-1: tr Cov((1−β)∇G_k)/tr Cov(g) equals the exact {s} theory at every (β, k)",
            "slides Obs-1; docs/noise.md §2", f"{n} CIs cover theory", float(n - m),
            f"misses ≤ {allowed} of {n}", C.REPRODUCES if m <= allowed else C.FAILS,
            detail=(f"{m} of {n} {level:.0%} CIs miss; worst z {worst['z']:.2f} at β={worst['beta']:g}, k={worst['k']}; "
                    + "; ".join(f"β={r.beta:g}: {r.ratio:.4g} [{r.lo:.4g}, {r.hi:.4g}] vs {r.theory:.4g}"
                                + (f" (iid {r.theory_iid:.4g})" if s == "epoch" else "")
                                for r in dep.itertuples()))))
        kmax = d["k"].max()
        dk = d[(d["k"] == kmax) & (d["beta"] > 0)]
        rel = (dk["ratio"] / dk["slides"] - 1).abs()
        inside = ((dk["slides"] >= dk["lo"]) & (dk["slides"] <= dk["hi"])) | (rel <= tol)
        worst_i = rel.idxmax() if len(rel) else None
        rows.append(C.row(
            f"noise/variance_ratio_slides/{tag}",
            f"slides: Cov(G_k) = (1−β)/(1+β) Cov(E_k) (k={kmax}, {s} mini-batches)",
            "slides Obs-1", "(1−β)/(1+β)", float(rel.max()) if len(rel) else math.nan,
            f"rel ≤ {tol:g} or inside CI", C.REPRODUCES if len(rel) and inside.all() else
            (C.INCONCLUSIVE if not len(rel) else C.FAILS),
            detail=(f"max |measured/slides − 1| at β={dk.loc[worst_i, 'beta']:g}; " if worst_i is not None else "")
            + "; ".join(f"β={r.beta:g}: {r.ratio:.4g} vs {r.slides:.4g}" for r in dk.itertuples())))
    for (point, s), d in reg.groupby(["point", "sampler"], sort=False):
        tag = f"{point or 'point'}/{s}"
        miss = (d["diff_lo"] > 0) | (d["diff_hi"] < 0)
        n, m = len(d), int(miss.sum())
        allowed = int(binom.ppf(0.99, n, 1 - level))
        mu, tr = float(d["mean_sq_norm"].iloc[0]), float(d["trace_cov"].iloc[0])
        rows.append(C.row(
            f"noise/reg_ratio_theory/{tag}",
            f"E[IGRM_s]/E[IGR_s] equals the exact finite-k expression (a‖m‖² + b trΣ)/(‖m‖² + trΣ), {s}",
            "docs/theory.md (T37)–(T38); docs/noise.md §3", f"{n} CIs of (measured − theory) cover 0", float(n - m),
            f"misses ≤ {allowed} of {n}", C.REPRODUCES if m <= allowed else C.FAILS,
            detail=f"‖m‖² = {mu:.4g}, trΣ = {tr:.4g} (‖m‖²/trΣ = {mu / tr:.3g}); {m} of {n} miss"))
        kmax = d["k"].max()
        dk = d[(d["k"] == kmax) & (d["beta"] > 0)]
        for suffix, col, name in (("", "igrm_over_igr", "same h, G as written"),
                                  ("/force", "force_normalised", "same h, relative to the force (1−β)G_k")):
            lo_c, hi_c = ("lo", "hi") if col == "igrm_over_igr" else ("force_normalised_lo", "force_normalised_hi")
            rel = (dk[col] / dk["slides"] - 1).abs()
            inside = ((dk["slides"] >= dk[lo_c]) & (dk["slides"] <= dk[hi_c])) | (rel <= tol)
            rows.append(C.row(
                f"noise/reg_ratio_slides/{tag}{suffix}",
                f"slides Obs-2: E(IGRM_s) = E(IGR_s)/(1−β) ({name}, k={kmax}, {s})",
                "slides Obs-2", "1/(1−β)", float(rel.max()) if len(rel) else math.nan,
                f"rel ≤ {tol:g} or inside CI",
                (C.REPRODUCES if inside.all() else C.FAILS) if len(rel) else C.INCONCLUSIVE,
                detail="; ".join(f"β={r.beta:g}: {getattr(r, col):.4g} vs {r.slides:.4g}" for r in dk.itertuples())
                + f"; ‖m‖²/trΣ = {mu / tr:.3g} (noise-dominated limit ×(1−β): 1/(1−β))"))
    return C.frame(rows)
