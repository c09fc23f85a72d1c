"""Monte-Carlo gradient-noise estimates at a fixed parameter point: variance reduction of the
historical gradient (Obs-1) and the expected implicit regulariser of SGD+M vs SGD (Obs-2).

Every formula is derived in docs/noise.md; the section number is cited next to the code.
The exact theory that the estimates are compared with is in igrm/noise_theory.py; the
tables, figures and claims rows made from the estimates in igrm/tidy/noise.py,
igrm/figures/noise.py and igrm/claims/noise.py.

Streaming estimator:
    NoiseAccumulator                                    §4 (one pass, batch means over groups)
    summarise(groups, *, ...)                           §4.3 (Fieller intervals, joint tests),
                                                        §8.2 (the BatchNorm split, epoch sampler)
Mini-batch gradients (the batches themselves: igrm.batches.minibatch_indices, batch_inputs):
    minibatch_grad_stream                               §5
Model at the point:
    model_state_from_run(arrays, attrs, prefix), load_model
One parameter point (the noise_point rule; keyword arguments = the per-point keys of config
section ``noise``, ``augmentation`` and ``point``), in named steps:
    estimate_noise(model_state, data, *, betas, ks, ...) -> (arrays, attrs)   §6
        population, load_model, sampler_runs, sampler_groups, summarise, stack_samplers,
        trajectory_arrays (igrm.noise_trajectory, §10)
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .batches import batch_inputs, device_tensors, minibatch_indices, resolve_device, seed_for
from .noise_theory import (
    SAMPLERS,
    epoch_covariance_factor,
    history_weights,
    igrm_coefficients,
    mixed_moment_matrix,
    ratio_epoch,
    ratio_iid,
)
from .noise_trajectory import run_trajectories
from .stats import bonferroni_level, fieller, signflip_max_t

log = logging.getLogger(__name__)


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
    ``replicates=R`` runs R independent streams side by side (the coverage simulation of
    igrm.noise_calibration): ``push`` takes (R, P), ``start_block`` one phase per replicate,
    and every group estimate has a leading axis R; None (the pipeline) = one stream, no axis.
    """

    def __init__(
        self,
        betas: Sequence[float],
        ks: Sequence[int],
        block_len: int | None = None,
        epoch: tuple[int, int] | None = None,
        device="cpu",
        replicates: int | None = None,
    ):
        self.betas = np.asarray(betas, dtype=np.float64)
        self.ks = np.asarray(ks, dtype=np.int64)
        if np.any(self.ks < 0) or np.any(self.betas < 0) or np.any(self.betas >= 1):
            raise ValueError("need k >= 0 and 0 <= beta < 1")
        self.block_len = int(block_len or (int(self.ks.max()) + 1))
        if self.block_len < int(self.ks.max()) + 1:
            raise ValueError(f"block_len {self.block_len} < k_max + 1 = {int(self.ks.max()) + 1}")
        self.epoch = epoch
        if epoch is not None:
            self.M, self.c = epoch_covariance_factor(*epoch)
        else:
            self.M, self.c = None, 0.0
        self.device = torch.device(device)
        self.replicates = replicates
        self.R = 1 if replicates is None else int(replicates)
        self._tb = torch.tensor(self.betas, dtype=torch.float64, device=self.device)[:, None, None]
        self._t1mb = 1 - self._tb
        self.groups: list[dict[str, np.ndarray]] = []
        self.P = None
        self._in_block = False
        self._corr_cache: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
        self.n_grad = 0

    # ---------------------------------------------------------------- group state
    def _z(self, *shape):
        return torch.zeros(self.R, *shape, dtype=torch.float64, device=self.device)

    def _alloc(self, P: int):
        nb, nk = len(self.betas), len(self.ks)
        self.P = P
        self.H = self._z(nb, nk, P)  # running unnormalised historical sums
        self.A = self._z(nb, nk)  # running Σ β^{r−j}‖H_j‖²
        if self.epoch is not None:  # one running sum per epoch segment of a block (§8.2)
            self._n_slots = (self.M - 1 + self.block_len - 1) // self.M + 1
            self.seg_sum = self._z(self._n_slots, P)
            self._rows = torch.arange(self.R, device=self.device)
        self._reset_group()

    def _reset_group(self):
        nb, nk, P = len(self.betas), len(self.ks), self.P
        self.g_sum, self.g_sq, self.g_n, self.g_pairs = self._z(P), self._z(), 0, np.zeros(self.R)
        self.x_sum, self.x_sq = self._z(nb, nk, P), self._z(nb, nk)
        self.i_sum = self._z(nb, nk)
        self.x_n = np.zeros(len(self.ks), dtype=np.int64)
        self.x_corr = np.zeros((self.R, nb, nk))
        self.g_seg, self.n_seg = np.zeros(self.R), np.zeros(self.R, dtype=np.int64)  # Σ_e ‖T_e‖²/n_e, segments
        self.blocks_in_group = 0

    def start_block(self, phase=0):
        if self._in_block:
            raise RuntimeError("start_block inside a block")
        phases = np.broadcast_to(np.asarray(phase, dtype=np.int64), (self.R,))
        self._in_block, self._pos, self._phases = True, 0, phases

    def push(self, g) -> None:
        """Add one mini-batch gradient (flat tensor or array, or (R, P) with replicates;
        converted to float64)."""
        if not self._in_block:
            raise RuntimeError("push outside a block: call start_block() first")
        if self._pos >= self.block_len:
            raise RuntimeError(f"block already has block_len = {self.block_len} gradients")
        g = torch.as_tensor(g).to(device=self.device, dtype=torch.float64).reshape(self.R, -1)
        if self.P is None:
            self._alloc(g.shape[1])
        if self.epoch is not None:
            # segment (epoch) of this position within the block: ⌊(φ + t)/M⌋ (§8.2)
            slot = torch.as_tensor((self._phases % self.M + self._pos) // self.M, device=self.device)
            self.seg_sum.index_put_((self._rows, slot), g, accumulate=True)
        self.g_sum += g
        self.g_sq += torch.einsum("rp,rp->r", g, g)
        self.g_n += 1
        self.n_grad += 1
        # H <- beta H + g for every (beta, k); A <- beta A + ||H||^2       (docs/noise.md §4.1)
        self.H.mul_(self._tb).add_(g[:, None, None, :])
        hn = torch.einsum("rbkp,rbkp->rbk", self.H, self.H)
        self.A.mul_(self._tb[:, :, 0]).add_(hn)
        t = self._pos
        self._pos += 1
        ends = np.nonzero((t + 1) % (self.ks + 1) == 0)[0]  # windows ending at this step
        if len(ends):
            ki = torch.as_tensor(ends, device=self.device)
            x = self.H[:, :, ki] * self._t1mb  # normalised (1−β)∇G_k
            self.x_sum[:, :, ki] += x
            self.x_sq[:, :, ki] += torch.einsum("rbkp,rbkp->rbk", x, x)
            self.i_sum[:, :, ki] += 2 * self.A[:, :, ki] - hn[:, :, ki]  # IGRM_s/(h/4) at step k
            self.x_n[ends] += 1
            self.H[:, :, ki] = 0.0
            self.A[:, :, ki] = 0.0

    def _close_segments(self) -> None:
        """Add Σ_e ‖T_e‖²/n_e of the block's epoch segments and count them (docs/noise.md §8.2)."""
        L = self._pos
        if L == 0:
            return
        slots = (self._phases[:, None] % self.M + np.arange(L)[None]) // self.M  # (R, L)
        counts = np.stack([np.bincount(r, minlength=self._n_slots) for r in slots]).astype(np.float64)
        sq = torch.einsum("rsp,rsp->rs", self.seg_sum, self.seg_sum).cpu().numpy()
        self.g_seg += np.sum(np.where(counts > 0, sq / np.maximum(counts, 1), 0.0), axis=1)
        self.n_seg += np.sum(counts > 0, axis=1)
        self.seg_sum.zero_()

    def _block_corrections(self, phase: int, length: int) -> tuple[np.ndarray, float]:
        """Same-epoch pair terms of one block (docs/noise.md §4.2): for every (β, k)
        Σ_e[(Σ_i W_ie)² − Σ_i W_ie²] over its windows i, and Σ_e n_e(n_e − 1) for the gradients."""
        key = (int(phase), int(length))
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
                W = np.einsum("t,wte->we", history_weights(b, int(k)), onehot)  # window × epoch sums
                corr[i, j] = np.sum(W.sum(0) ** 2) - np.sum(W * W)
        self._corr_cache[key] = (corr, pairs)
        return corr, pairs

    def end_block(self):
        if not self._in_block:
            raise RuntimeError("end_block outside a block")
        if self.epoch is not None:
            self._close_segments()
            for r, phase in enumerate(self._phases):
                corr, pairs = self._block_corrections(int(phase), self._pos)
                self.x_corr[r] += corr
                self.g_pairs[r] += pairs
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
            raise ValueError(
                f"a group needs >= 2 windows of every k (got {self.x_n.tolist()}); use more blocks per group"
            )
        S2 = torch.einsum("rp,rp->r", self.g_sum, self.g_sum).cpu().numpy()
        g_sq = self.g_sq.cpu().numpy()
        Q0 = g_sq - S2 / n
        c, pairs = self.c, self.g_pairs
        trace = Q0 / (n - 1 + c * pairs / n)  # tr Σ_b, unbiased
        mean_sq = (S2 - trace * (n - c * pairs)) / n**2  # ‖m‖², unbiased
        Xn = torch.einsum("rbkp,rbkp->rbk", self.x_sum, self.x_sum).cpu().numpy()
        Qx = self.x_sq.cpu().numpy() - Xn / nw
        cov_hist = (Qx - trace[:, None, None] * c * self.x_corr / nw) / (nw - 1)  # tr Cov((1−β)∇G_k)
        out = {
            "trace": trace,
            "mean_sq": mean_sq,
            "msq": g_sq / n,
            "cov_hist": cov_hist,
            "igrm": self.i_sum.cpu().numpy() / nw,
        }
        if self.epoch is not None:
            # additive / non-additive split of tr Σ_b from Q_0 and the between-segment Q_s (§8.2, (T78))
            Qs = self.g_seg - S2 / n
            A = mixed_moment_matrix(n, self.n_seg, pairs, c)
            det = A[:, 0, 0] * A[:, 1, 1] - A[:, 0, 1] * A[:, 1, 0]
            det = np.where(np.abs(det) > 1e-12 * np.abs(A[:, 0, 0]), det, np.nan)  # one segment: not identified
            t_add = (A[:, 1, 1] * Q0 - A[:, 0, 1] * Qs) / det
            t_non = (A[:, 0, 0] * Qs - A[:, 1, 0] * Q0) / det
            out.update(
                trace_add=t_add,
                trace_nonadd=t_non,
                cov_hist_mix=(Qx - t_add[:, None, None] * c * self.x_corr / nw) / (nw - 1),
            )  # (T79)
        if self.replicates is None:
            out = {k: (float(v[0]) if v.ndim == 1 else v[0]) for k, v in out.items()}
        out.update(n_grad=n, n_windows=self.x_n.copy(), n_blocks=self.blocks_in_group)
        self.groups.append(out)
        self._reset_group()
        return out

    def add_block(self, grads: Iterable, phase=0):
        self.start_block(phase)
        for g in grads:
            self.push(g)
        self.end_block()


# =========================================================================== CIs
def _stack(groups, key):
    return np.stack([np.asarray(g[key], dtype=np.float64) for g in groups])


def _ratio_arrays(
    name: str, num: np.ndarray, den: np.ndarray, level: float, simul_level: float, out: dict[str, np.ndarray]
) -> None:
    """E[num]/E[den] over the G groups (axis 0) with Fieller intervals (docs/noise.md §4.3,
    docs/theory.md (T54)) at ``level`` (name_lo, name_hi) and at the simultaneous level of all
    cells (name_lo_simul, name_hi_simul; Bonferroni, (T56))."""
    r = fieller(num, den, level)
    rs = fieller(num, den, simul_level)
    out.update(
        {name: r.estimate, f"{name}_lo": r.lo, f"{name}_hi": r.hi, f"{name}_lo_simul": rs.lo, f"{name}_hi_simul": rs.hi}
    )


@functools.lru_cache(maxsize=32)
def _theory_tables(
    betas: tuple, ks: tuple, sampler: str, n_examples: int | None, batch_size: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R_epoch (NaN without ≥ 2 batches per epoch) and the (T37) coefficients a, b on the
    (β, k) grid; cached, as the coverage simulation summarises hundreds of jobs of one design."""
    if n_examples is not None and batch_size is not None and n_examples // batch_size >= 2:
        th_epoch = np.array([[ratio_epoch(be, k, n_examples, batch_size) for k in ks] for be in betas])
    else:
        th_epoch = np.full((len(betas), len(ks)), np.nan)
    a = np.zeros((len(betas), len(ks)))
    b = np.zeros_like(a)
    for i, be in enumerate(betas):
        for j, k in enumerate(ks):
            a[i, j], b[i, j] = igrm_coefficients(float(be), int(k), sampler, n_examples, batch_size)
    return th_epoch, a, b


def summarise(
    groups: Sequence[Mapping[str, Any]],
    *,
    betas,
    ks,
    sampler: str,
    n_examples: int | None,
    batch_size: int | None,
    ci_level: float,
    seed: int,
) -> dict[str, np.ndarray]:
    """Ratios with intervals, per-cell t statistics, joint tests and the theory values from the
    G independent group estimates (docs/noise.md §4.3). All intervals are Fieller intervals
    on t_{G−1} (T54); *_simul at the Bonferroni level over the |β|·|k| cells (T56); the joint
    tests are sign-flip max-|t| tests over the groups (T55)."""
    betas, ks = np.asarray(betas, float), np.asarray(ks, int)
    G = len(groups)
    if G < 2:
        raise ValueError("need at least 2 groups for a confidence interval (noise key 'n_groups')")
    level = float(ci_level)
    simul = bonferroni_level(level, len(betas) * len(ks))
    tr = _stack(groups, "trace")
    ms = _stack(groups, "mean_sq")
    msq = _stack(groups, "msq")
    cov = _stack(groups, "cov_hist")  # (G, nb, nk)
    ig = _stack(groups, "igrm")
    out: dict[str, np.ndarray] = {
        "group_trace": tr,
        "group_mean_sq": ms,
        "group_msq": msq,
        "group_cov_hist": cov,
        "group_igrm": ig,
        "simul_level": np.float64(simul),
    }
    # Obs-1: R = E[Ĉ]/E[τ̂]
    _ratio_arrays("ratio", cov, tr[:, None, None], level, simul, out)
    th_iid = ratio_iid(betas[:, None], ks[None, :])
    out["theory_iid"] = th_iid
    th_epoch, a, b = _theory_tables(tuple(betas), tuple(ks), sampler, n_examples, batch_size)
    out["theory_epoch"] = th_epoch.copy()
    th = th_iid if sampler == "iid" else out["theory_epoch"]
    out["theory"] = th
    # per-cell t of D = Ĉ − θ τ̂ (mean 0 under the theory) and the joint test over all cells
    z, _, p = signflip_max_t((cov - th[None] * tr[:, None, None]).reshape(G, -1), seed=seed)
    out["ratio_z"], out["ratio_p_joint"] = z.reshape(th.shape), np.float64(p)
    # Obs-2: ρ = E[IGRM_s]/E[IGR_s] = E[Ī]/E[m̄sq] (h cancels)
    _ratio_arrays("igrm_over_igr", ig, msq[:, None, None], level, simul, out)
    a, b = a.copy(), b.copy()
    th_num = a[None] * ms[:, None, None] + b[None] * tr[:, None, None]  # (T37) per group
    out.update(igrm_a=a, igrm_b=b, igrm_theory=th_num.mean(0) / msq.mean(0))
    # measured / exact theory at the measured ‖m‖², trΣ: E[Ī]/E[a μ̂ + b τ̂] (= 1 under (T37))
    _ratio_arrays("igrm_vs_theory", ig, th_num, level, simul, out)
    z, _, p = signflip_max_t((ig - th_num).reshape(G, -1), seed=seed + 1)
    out["igrm_z"], out["igrm_p_joint"] = z.reshape(a.shape), np.float64(p)
    _mixed_arrays(groups, out, th_iid=th_iid, th_epoch=out["theory_epoch"], level=level, simul=simul, seed=seed)
    for key, arr in (("mean_sq_norm", ms), ("trace_cov", tr), ("msq", msq)):
        out[key], out[key + "_se"] = np.float64(arr.mean()), np.float64(arr.std(ddof=1) / math.sqrt(G))
    out["n_windows"] = np.sum(_stack(groups, "n_windows"), axis=0).astype(np.int64)
    out["n_grad_evals"] = np.int64(sum(int(g["n_grad"]) for g in groups))
    return out


def _mixed_arrays(groups, out, *, th_iid, th_epoch, level, simul, seed) -> None:
    """Under BatchNorm (docs/noise.md §8): the additive share ρ = E[τ̂_add]/E[τ̂_add + τ̂_non]
    ((T78), Fieller), the variance ratio with the mixed-model estimators
    R_mix = E[Ĉ_mix]/E[τ̂_add + τ̂_non], and measured/corrected theory
    E[Ĉ_mix]/E[R_epoch τ̂_add + R_iid τ̂_non] ((T77), (T79); 1 under the mixed model), with
    per-cell t of Ĉ_mix − (R_epoch τ̂_add + R_iid τ̂_non) and its joint sign-flip p. The
    corrected theory value theory_bn = ρ̂ R_epoch + (1 − ρ̂) R_iid. NaN without epoch segments."""
    shape = th_iid.shape
    if "trace_add" not in groups[0] or not np.all(np.isfinite(_stack(groups, "trace_add"))):
        nan = np.full(shape, np.nan)
        for name in ("ratio_mix", "ratio_bn", "additive_share"):
            v = nan if name != "additive_share" else np.float64(np.nan)
            out.update({name: v, f"{name}_lo": v, f"{name}_hi": v, f"{name}_lo_simul": v, f"{name}_hi_simul": v})
        out.update(
            theory_bn=nan,
            bn_z=nan,
            bn_p_joint=np.float64(np.nan),
            group_trace_add=np.full(len(groups), np.nan),
            group_trace_nonadd=np.full(len(groups), np.nan),
            group_cov_hist_mix=np.full((len(groups),) + shape, np.nan),
        )
        return
    G = len(groups)
    ta, tn = _stack(groups, "trace_add"), _stack(groups, "trace_nonadd")
    cm = _stack(groups, "cov_hist_mix")
    out.update(group_trace_add=ta, group_trace_nonadd=tn, group_cov_hist_mix=cm)
    r = fieller(ta, ta + tn, level)
    rs = fieller(ta, ta + tn, bonferroni_level(level, 1))
    out.update(
        additive_share=np.float64(r.estimate),
        additive_share_lo=np.float64(r.lo),
        additive_share_hi=np.float64(r.hi),
        additive_share_lo_simul=np.float64(rs.lo),
        additive_share_hi_simul=np.float64(rs.hi),
    )
    _ratio_arrays("ratio_mix", cm, (ta + tn)[:, None, None], level, simul, out)
    pred = th_epoch[None] * ta[:, None, None] + th_iid[None] * tn[:, None, None]  # (T77) per group
    _ratio_arrays("ratio_bn", cm, pred, level, simul, out)
    share = float(out["additive_share"])
    out["theory_bn"] = share * th_epoch + (1 - share) * th_iid
    z, _, p = signflip_max_t((cm - pred).reshape(G, -1), seed=seed + 2)
    out["bn_z"], out["bn_p_joint"] = z.reshape(shape), np.float64(p)


# =========================================================================== mini-batch gradients
def minibatch_grad_stream(
    model: nn.Module,
    data,
    *,
    batch_size: int,
    n: int,
    sampler: str,
    generator: torch.Generator | None,
    device,
    phase: int,
    augment: Sequence[str],
    aug_generator: torch.Generator | None,
    pad: int,
    cutout_size: int,
    impl: str,
    vmap_chunk: int,
    batchnorm: str,
    loss_fn=F.cross_entropy,
) -> Iterator[Tensor]:
    """Yield ``n`` flattened mini-batch gradients ∇_θ mean-loss(batch) at the model's
    current parameters, as training computes them (docs/noise.md §5): train mode, so
    BatchNorm normalises with the batch's own statistics; the gradient is that of the
    batch's mean loss (not an average of per-example gradients, which differs under BN).
    BN running statistics are left unchanged (saved and restored); the model's mode is
    restored. ``impl``: 'loop' (one forward/backward per batch) or 'vmap' (torch.func over
    ``vmap_chunk`` stacked mini-batches, BN with batch statistics on a copy of the model).
    ``data``: (x, y) tensors (x ready for the model) or the dataset layer's dict
    (igrm.batches.device_tensors); ``augment``, ``pad``, ``cutout_size`` as training's.
    ``batchnorm="eval"`` (the control of docs/noise.md §8.3): BatchNorm with its running
    statistics, so every batch gradient is the mean of per-example gradients."""
    if batchnorm not in ("train", "eval"):
        raise ValueError(f"batchnorm must be 'train' or 'eval', got {batchnorm!r}")
    device = torch.device(device)
    t = device_tensors(data, device)
    N = len(t["y"])
    idx_iter = minibatch_indices(N, batch_size, n, sampler, generator, phase)
    params = [p for p in model.parameters() if p.requires_grad]
    bufs = dict(model.named_buffers())
    saved = {k: v.detach().clone() for k, v in bufs.items()}
    was_training = model.training
    model.train(batchnorm == "train")
    try:
        if impl == "loop":
            for idx in idx_iter:
                x, y = batch_inputs(t, idx.to(device), augment, aug_generator, pad=pad, cutout_size=cutout_size)
                loss = loss_fn(model(x), y)
                grads = torch.autograd.grad(loss, params)
                yield torch.cat([g.reshape(-1) for g in grads])
        elif impl == "vmap":
            batches = (
                batch_inputs(t, idx.to(device), augment, aug_generator, pad=pad, cutout_size=cutout_size)
                for idx in idx_iter
            )
            yield from _vmap_stream(model, batches, vmap_chunk, loss_fn, batchnorm)
        else:
            raise ValueError(f"impl must be 'loop' or 'vmap', got {impl!r}")
    finally:
        with torch.no_grad():
            for k, v in saved.items():
                if k in bufs:
                    bufs[k].copy_(v)
        model.train(was_training)


def _vmap_stream(model, batches, chunk, loss_fn, batchnorm):
    """The gradients of the (x, y) ``batches``, ``chunk`` at a time through torch.func.vmap."""
    from torch.func import functional_call, grad, replace_all_batch_norm_modules_, vmap

    mc = copy.deepcopy(model)
    if batchnorm == "train":
        replace_all_batch_norm_modules_(mc)  # BN: batch statistics, no running-stat updates
        mc.train()
    else:
        mc.eval()  # BN: running statistics (per-example additive)
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

    for xy in batches:
        pending.append(xy)
        if len(pending) == chunk:
            yield from flush()
    if pending:
        yield from flush()


# =========================================================================== the model at a point
def _infer_spec(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    four = [v for k, v in state_dict.items() if k.endswith("weight") and v.ndim == 4]
    lin = [v for k, v in state_dict.items() if k.endswith("weight") and v.ndim == 2]
    return {
        "in_channels": int(four[0].shape[1]) if four else None,
        "num_classes": int(lin[-1].shape[0]) if lin else None,
    }


def model_state_from_run(
    arrays: Mapping[str, Any], attrs: Mapping[str, Any], prefix: str = "final_state/"
) -> dict[str, Any]:
    """model_state from a training run's result: ``final_state/*`` arrays (default) or a
    snapshot, ``prefix="snapshots/epoch0005/"``; the model and width from attrs['config']
    (the run's train config), h from attrs['h']."""
    cfg = attrs["config"]
    if isinstance(cfg, str):
        cfg = json.loads(cfg)
    sd = {k[len(prefix) :]: torch.as_tensor(np.asarray(v)) for k, v in arrays.items() if k.startswith(prefix)}
    if not sd:
        have = sorted({k.rsplit("/", 1)[0] for k in arrays if "/" in k})
        raise KeyError(f"no parameters under {prefix!r} in the run's result; it has {have}")
    spec = {"model": cfg["model"], "width": float(cfg["width"]), "h": float(attrs["h"]), **_infer_spec(sd)}
    return {"spec": spec, "state_dict": sd}


def _spec_and_state(model_state) -> tuple[dict[str, Any], Any]:
    """(spec, state_dict or None) of the forms :func:`load_model` accepts."""
    if isinstance(model_state, (tuple, list)):
        return dict(model_state[0]), model_state[1]
    if isinstance(model_state, Mapping) and "state_dict" in model_state:
        return dict(model_state["spec"]), model_state["state_dict"]
    if isinstance(model_state, Mapping) and isinstance(model_state.get("model"), Mapping):
        ck = model_state["cfg"]  # a training checkpoint: its train config names the model
        return {"model": ck["model"], "width": ck["width"]}, model_state["model"]
    raise ValueError(
        "model_state must be (spec, state_dict), {'spec', 'state_dict'} or a checkpoint; a fresh init is (spec, None)"
    )


def load_model(
    model_state, *, seed: int, num_classes: int, in_channels: int, device
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model of ``model_state``: (spec, state_dict), {'spec', 'state_dict'} or a
    checkpoint dict ({'model': state_dict, 'cfg': ...}); spec names 'model' and 'width'. A
    state_dict of None is a fresh init of spec's model, seeded by ``seed``:
    ``({"model": "small_cnn", "width": 0.25}, None)``."""
    from .models import build_model

    spec, sd = _spec_and_state(model_state)
    if sd is not None:
        sd = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, Tensor) else v for k, v in sd.items()}
        inferred = _infer_spec(sd)
        spec.setdefault("num_classes", inferred["num_classes"])
        spec.setdefault("in_channels", inferred["in_channels"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(int(seed), "noise-init"))
        model = build_model(
            spec["model"],
            int(spec.get("num_classes") or num_classes),
            int(spec.get("in_channels") or in_channels),
            float(spec["width"]),
        )
    if sd is not None:
        model.load_state_dict(sd)
    return model.to(device), spec


# =========================================================================== one parameter point
def check_design(*, betas, ks, sampler, n_blocks, n_groups, block_len) -> list[str]:
    """The samplers to run; a bad value is a ValueError that names its key (config ``noise``).
    Every group must hold ≥ 2 windows of every k (docs/noise.md §4.2)."""
    samplers = list(SAMPLERS) if sampler == "both" else [sampler]
    if any(s not in SAMPLERS for s in samplers):
        raise ValueError(f"noise key 'sampler' must be iid, epoch or both, got {sampler!r}")
    L = int(block_len or (max(ks) + 1))
    if L < max(ks) + 1:
        raise ValueError(f"noise key 'block_len' ({L}) must be >= max(ks) + 1 = {max(ks) + 1}")
    if n_groups < 2 or n_blocks % n_groups:
        raise ValueError(f"noise key 'n_blocks' ({n_blocks}) must be a multiple of 'n_groups' ({n_groups} >= 2)")
    windows = (n_blocks // n_groups) * (L // (max(ks) + 1))
    if windows < 2:
        raise ValueError(
            f"each group holds {windows} window(s) of k = {max(ks)}; it needs >= 2: raise noise key "
            f"'block_len' to >= {2 * (max(ks) + 1)} or 'n_blocks' to {2 * n_groups}"
        )
    if not all(0 <= b < 1 for b in betas):
        raise ValueError("noise key 'betas' must lie in [0, 1)")
    return samplers


def population(data, device, *, train_subset: int | None, seed: int) -> dict[str, Any]:
    """The examples the mini-batches are drawn from, on ``device`` (igrm.batches.device_tensors):
    with a prepared dataset, ``train_subset`` of its training images drawn by the noise
    seed's own stream (None: all); (x, y) tensors are used whole."""
    t = device_tensors(data, device)
    if t["u8"] and train_subset is not None:
        g_sub = torch.Generator().manual_seed(seed_for(seed, "noise-subset"))
        keep = torch.randperm(len(t["y"]), generator=g_sub)[: int(train_subset)].to(device)
        t = {**t, "x": t["x"][keep], "y": t["y"][keep]}
    return t


def sampler_runs(samplers: Sequence[str], eval_control: bool) -> list[tuple[str, str, str]]:
    """(label, sampler, BatchNorm mode) of each estimate at the point. The control
    (docs/noise.md §8.3): the epoch sampler again, BatchNorm in eval mode, on the same
    batches (same generators); its arrays are the sampler entry "epoch_bneval"."""
    return [(s, s, "train") for s in samplers] + ([("epoch_bneval", "epoch", "eval")] if eval_control else [])


def sampler_groups(
    model,
    t,
    *,
    label: str,
    sampler: str,
    batchnorm: str,
    betas,
    ks,
    block_len: int,
    n_blocks: int,
    n_groups: int,
    batch_size: int,
    seed: int,
    device,
    augment,
    augmentation,
    grad_impl: str,
    vmap_chunk: int,
) -> list[dict[str, Any]]:
    """The group estimates of one sampler at the point: ``n_blocks`` blocks of ``block_len``
    mini-batch gradients through :class:`NoiseAccumulator`, closed into ``n_groups`` groups
    (docs/noise.md §4). Epoch sampler: each block starts at a random phase of its epoch."""
    gen = torch.Generator().manual_seed(seed_for(seed, f"noise-{sampler}"))
    aug = torch.Generator(device=device).manual_seed(seed_for(seed, f"noise-aug-{sampler}"))
    N, b = len(t["y"]), batch_size
    acc = NoiseAccumulator(betas, ks, block_len, epoch=(N, b) if sampler == "epoch" else None, device=device)
    per_group = n_blocks // n_groups
    t0 = time.perf_counter()
    for blk in range(n_blocks):
        phase = int(torch.randint(0, N // b, (1,), generator=gen)) if sampler == "epoch" else 0
        acc.add_block(
            minibatch_grad_stream(
                model,
                t,
                batch_size=b,
                n=block_len,
                sampler=sampler,
                generator=gen,
                device=device,
                phase=phase,
                augment=augment,
                aug_generator=aug,
                pad=int(augmentation["pad"]),
                cutout_size=int(augmentation["cutout_size"]),
                impl=grad_impl,
                vmap_chunk=int(vmap_chunk),
                batchnorm=batchnorm,
            ),
            phase,
        )
        if (blk + 1) % per_group == 0:
            acc.end_group()
            log.info(
                "noise %s: group %d/%d done (%d gradients, %.0f s)",
                label,
                len(acc.groups),
                n_groups,
                acc.n_grad,
                time.perf_counter() - t0,
            )
    return acc.groups


def stack_samplers(
    labels: Sequence[str], summaries: Sequence[Mapping[str, Any]], *, betas, ks, h: float
) -> dict[str, np.ndarray]:
    """The arrays of the point's result: every summary key stacked over the samplers (leading
    axis S; the theory tables, one per grid, once) and E[IGRM_s], E[IGR_s] at step h."""
    arrays: dict[str, np.ndarray] = {
        "samplers": np.array(list(labels)),
        "betas": np.array(betas),
        "ks": np.array(ks, dtype=np.int64),
    }
    for k in summaries[0]:
        if k in ("theory_iid", "theory_epoch"):
            arrays[k] = np.asarray(summaries[-1][k])
        else:
            arrays[k] = np.stack([np.asarray(s[k]) for s in summaries])
    arrays["e_igrm"] = h / 4 * arrays["igrm_over_igr"] * arrays["msq"][:, None, None]
    arrays["e_igr"] = h / 4 * arrays["msq"]
    return arrays


def trajectory_arrays(
    model,
    t,
    trajectory: Mapping[str, Any],
    *,
    h: float,
    batch_size: int,
    seed: int,
    device,
    ci_level: float,
    augment,
    augmentation,
) -> dict[str, np.ndarray]:
    """Variance reduction along actual SGD+M runs from the point (docs/noise.md §10;
    igrm.noise_trajectory), summarised as the fixed-point estimates are (sampler iid), under
    the prefix ``trajectory/``."""
    betas, ks = [float(b) for b in trajectory["betas"]], sorted(int(k) for k in trajectory["ks"])
    groups, drift = run_trajectories(
        model,
        t,
        **trajectory,
        h=h,
        batch_size=batch_size,
        seed=seed,
        device=device,
        augment=augment,
        pad=int(augmentation["pad"]),
        cutout_size=int(augmentation["cutout_size"]),
    )
    out = summarise(
        groups, betas=betas, ks=ks, sampler="iid", n_examples=None, batch_size=None, ci_level=ci_level, seed=seed
    )
    out.update(drift)
    out["e_igrm"] = h / 4 * out["igrm_over_igr"] * out["msq"]
    out["e_igr"] = h / 4 * out["msq"]
    out.update(betas=np.asarray(trajectory["betas"], float), ks=np.asarray(sorted(trajectory["ks"]), np.int64))
    log.info("noise trajectory: %d gradients, %.0f s", int(out["n_grad_evals"]), float(out["wall_time_s"]))
    return {f"trajectory/{k}": np.asarray(v) for k, v in out.items()}


def estimate_noise(
    model_state,
    data,
    *,
    betas: Sequence[float],
    ks: Sequence[int],
    n_blocks: int,
    n_groups: int,
    block_len: int | None,
    batch_size: int,
    sampler: str,
    augment: Sequence[str],
    train_subset: int | None,
    seed: int,
    h: float | None,
    ci_level: float,
    grad_impl: str,
    vmap_chunk: int,
    trajectory: Mapping[str, Any],
    eval_control: bool,
    device: str,
    augmentation: Mapping[str, int],
    point: str,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Monte-Carlo noise estimates at one parameter point (docs/noise.md §4, §6).

    Keyword arguments: the keys of config section ``noise`` that set one point's estimate
    (schemas/config.schema.yaml, where their defaults and meaning are; the section's other
    keys, igrm.pipeline.targets.NOISE_NOT_PER_POINT, choose the points or judge the
    results), ``augmentation``: train.pad and train.cutout_size (the mini-batches are
    augmented as training does), and ``point``, the label of the parameter point in tables.
    ``model_state``: see :func:`load_model`; ``data``: igrm.data.load_prepared's dict, or
    (x, y) tensors. ``h`` None: the run's h (model_state's spec). Arrays (S = samplers, leading axis; docs/noise.md §6 has the table): samplers, betas, ks;
    ratio, igrm_over_igr, igrm_vs_theory with _lo, _hi, _lo_simul, _hi_simul (S×β×k);
    theory_iid, theory_epoch (β×k), theory, igrm_theory, igrm_a, igrm_b, ratio_z, igrm_z
    (S×β×k); ratio_p_joint, igrm_p_joint, simul_level (S); the group estimates group_* (S×G…);
    e_igrm, e_igr, mean_sq_norm, trace_cov, msq (+_se) (S), n_windows (S×k), n_grad_evals (S);
    the BatchNorm split (docs/noise.md §8; NaN for iid): additive_share with intervals (S),
    ratio_mix, ratio_bn with intervals, theory_bn, bn_z (S×β×k), bn_p_joint (S),
    group_trace_add, group_trace_nonadd (S×G), group_cov_hist_mix. ``eval_control``: also the
    epoch sampler with BatchNorm in eval mode on the same batches, sampler entry
    ``epoch_bneval`` (the control, §8.3; costs n_blocks × block_len more gradients)."""
    betas, ks, augment = [float(b) for b in betas], sorted(int(k) for k in ks), list(augment)
    n_blocks, n_groups, seed, b = int(n_blocks), int(n_groups), int(seed), int(batch_size)
    samplers = check_design(
        betas=betas, ks=ks, sampler=sampler, n_blocks=n_blocks, n_groups=n_groups, block_len=block_len
    )
    if grad_impl not in ("loop", "vmap"):
        raise ValueError(f"noise key 'grad_impl' must be loop or vmap, got {grad_impl!r}")
    device = resolve_device(device)
    t = population(data, device, train_subset=train_subset, seed=seed)
    N = len(t["y"])
    num_classes = int(t.get("num_classes") or int(t["y"].max()) + 1)
    model, spec = load_model(
        model_state, seed=seed, num_classes=num_classes, in_channels=int(t["x"].shape[1]), device=device
    )
    if h is None and "h" not in spec:
        raise ValueError("noise key 'h' is null (the probed run's h), but the model state has no h: set noise.h")
    h = float(h if h is not None else spec["h"])
    L = int(block_len or (max(ks) + 1))
    t0 = time.perf_counter()
    runs = sampler_runs(samplers, eval_control)
    summaries = []
    for label, s, bn in runs:
        groups = sampler_groups(
            model,
            t,
            label=label,
            sampler=s,
            batchnorm=bn,
            betas=betas,
            ks=ks,
            block_len=L,
            n_blocks=n_blocks,
            n_groups=n_groups,
            batch_size=b,
            seed=seed,
            device=device,
            augment=augment,
            augmentation=augmentation,
            grad_impl=grad_impl,
            vmap_chunk=vmap_chunk,
        )
        summaries.append(
            summarise(
                groups, betas=betas, ks=ks, sampler=s, n_examples=N, batch_size=b, ci_level=float(ci_level), seed=seed
            )
        )
        log.info("noise %s: %d gradient evaluations", label, int(summaries[-1]["n_grad_evals"]))
    arrays = stack_samplers([r[0] for r in runs], summaries, betas=betas, ks=ks, h=h)
    if trajectory["betas"]:
        arrays.update(
            trajectory_arrays(
                model,
                t,
                trajectory,
                h=h,
                batch_size=b,
                seed=seed,
                device=device,
                ci_level=float(ci_level),
                augment=augment,
                augmentation=augmentation,
            )
        )
    attrs = {
        "point": point,
        "h": h,
        "n_examples": N,
        "batch_size": b,
        "batches_per_epoch": N // b,
        "block_len": L,
        "n_blocks": n_blocks,
        "n_groups": n_groups,
        "ci_level": float(ci_level),
        "model": spec["model"],
        "width": float(spec["width"]),
        "grad_impl": grad_impl,
        "augment": augment,
        "device": str(device),
        "wall_time_noise_s": time.perf_counter() - t0,
        "seed": seed,
    }
    return arrays, attrs
