"""Variance reduction along an actual SGD+M trajectory (docs/noise.md §10): from a saved
point θ_0, many independent short runs of heavy-ball SGD+M from rest (v ← βv + g(θ),
θ ← θ − h v, as torch.optim.SGD with dampening 0 and igrm.train do), each with fresh iid
mini-batches. The normalised momentum buffer x_k = (1−β)v_k = (1−β)∇G_k of every run is
recorded at each k of the grid; its covariance over runs is compared with the fixed-point
theory R_iid(β, k)·tr Σ_b(θ_0) (T34), and the parameter drift over the window is stated.

    TrajectoryAccumulator(betas, ks)              streaming group estimates (§10.1)
    trajectory_windows(model, t, *, beta, ...)    the gradients of one run (§10.2)
    run_trajectories(model, t, *, ...)            the group estimates and the drift (§10.3)

The group estimates are those of igrm.noise.NoiseAccumulator (trace, mean_sq, msq,
cov_hist, igrm, n_windows, …), so igrm.noise.summarise turns them into the same ratios,
Fieller intervals and joint tests (igrm.noise imports this module, not the reverse); only
here tr Σ_b and ‖m‖² come from the first gradient of every run (all at θ_0) and every x_k is
the optimiser's own buffer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .batches import batch_inputs, minibatch_indices, seed_for


class TrajectoryAccumulator:
    """Group estimates from independent runs started at θ_0 (docs/noise.md §10.1).

    ``push_run(b_index, grads)``: the k_max + 1 gradients g_0..g_kmax of one run at β =
    betas[b_index] ((P,) tensors or arrays; with ``replicates=R``, (R, P)). g_0 is at θ_0:
    the pooled g_0 of all runs of a group give tr Σ_b (sample variance, unbiased for iid
    batches), ‖m‖² (‖ḡ_0‖² − tr Σ̂_b/n) and E‖g‖². For every k: x_k = (1−β)Σ_{j≤k}β^{k−j}g_j
    and I_k = Σ_r c_r‖∇G_r‖² (T36). ``end_group()`` stores the group dict of
    igrm.noise.NoiseAccumulator.end_group (every β needs ≥ 2 runs per group)."""

    def __init__(self, betas: Sequence[float], ks: Sequence[int], replicates: int | None = None):
        self.betas = np.asarray(betas, dtype=np.float64)
        self.ks = np.asarray(sorted(int(k) for k in ks), dtype=np.int64)
        self.replicates = replicates
        self.R = 1 if replicates is None else int(replicates)
        self.groups: list[dict[str, Any]] = []
        self.P = None
        self.n_grad = 0

    def _reset(self):
        nb, nk, R, P = len(self.betas), len(self.ks), self.R, self.P
        z = lambda *s: torch.zeros(R, *s, dtype=torch.float64)
        self.g0_sum, self.g0_sq, self.n0 = z(P), z(), 0
        self.x_sum, self.x_sq, self.i_sum = z(nb, nk, P), z(nb, nk), z(nb, nk)
        self.runs = np.zeros(nb, dtype=np.int64)
        self.grads_in_group = 0

    def push_run(self, b_index: int, grads) -> None:
        beta = float(self.betas[b_index])
        H = A = None
        kmax = int(self.ks[-1])
        for r, g in enumerate(grads):
            if r > kmax:
                raise ValueError(f"a run has k_max + 1 = {kmax + 1} gradients")
            g = torch.as_tensor(g).to(dtype=torch.float64).reshape(self.R, -1)
            if self.P is None:
                self.P = g.shape[1]
                self._reset()
            if r == 0:
                self.g0_sum += g
                self.g0_sq += torch.einsum("rp,rp->r", g, g)
                self.n0 += 1
                H, A = g.clone(), torch.einsum("rp,rp->r", g, g)
            else:
                H = beta * H + g  # the optimiser's buffer v_r = ∇G_r
                A = beta * A + torch.einsum("rp,rp->r", H, H)  # Σ_{j≤r} β^{r−j}‖∇G_j‖²
            self.grads_in_group += 1
            self.n_grad += 1
            j = np.nonzero(self.ks == r)[0]
            if len(j):
                x = (1 - beta) * H
                self.x_sum[:, b_index, j[0]] += x
                self.x_sq[:, b_index, j[0]] += torch.einsum("rp,rp->r", x, x)
                self.i_sum[:, b_index, j[0]] += 2 * A - torch.einsum("rp,rp->r", H, H)  # (T36)/(h/4)
        if r != kmax:
            raise ValueError(f"a run needs k_max + 1 = {kmax + 1} gradients, got {r + 1}")
        self.runs[b_index] += 1

    def end_group(self) -> dict[str, Any]:
        n, W = self.n0, self.runs.astype(np.float64)
        if n < 2 or np.any(W < 2):
            raise ValueError(f"a group needs >= 2 runs of every beta (got {self.runs.tolist()})")
        S2 = torch.einsum("rp,rp->r", self.g0_sum, self.g0_sum).numpy()
        g_sq = self.g0_sq.numpy()
        trace = (g_sq - S2 / n) / (n - 1)  # tr Σ_b at θ_0 (iid, unbiased)
        mean_sq = (S2 / n - trace) / n  # ‖m‖² = ‖ḡ_0‖² − τ̂/n
        Xn = torch.einsum("rbkp,rbkp->rbk", self.x_sum, self.x_sum).numpy()
        cov = (self.x_sq.numpy() - Xn / W[None, :, None]) / (W[None, :, None] - 1)
        out = {
            "trace": trace,
            "mean_sq": mean_sq,
            "msq": g_sq / n,
            "cov_hist": cov,
            "igrm": self.i_sum.numpy() / W[None, :, None],
        }
        if self.replicates is None:
            out = {k: (float(v[0]) if v.ndim == 1 else v[0]) for k, v in out.items()}
        out.update(
            n_grad=self.grads_in_group,
            n_windows=np.full(len(self.ks), int(self.runs.min())),
            n_blocks=int(self.runs.sum()),
        )
        self.groups.append(out)
        self._reset()
        return out


def trajectory_windows(
    model,
    t,
    *,
    beta: float,
    h: float,
    batch_size: int,
    n_steps: int,
    generator: torch.Generator,
    device,
    augment,
    aug_generator,
    pad: int,
    cutout_size: int,
    loss_fn=F.cross_entropy,
):
    """One SGD+M run of ``n_steps`` steps from rest at the model's parameters, iid
    mini-batches, BatchNorm in train mode with its running statistics frozen (docs/noise.md
    §10.2). Returns (the n_steps flat gradients, ‖θ_end − θ_0‖², where θ_end is after the
    last update). The model's parameters and buffers are restored afterwards."""
    params = [p for p in model.parameters() if p.requires_grad]
    saved_p = [p.detach().clone() for p in params]
    saved_b = {k: v.detach().clone() for k, v in model.named_buffers()}
    was_training = model.training
    model.train()
    grads, v = [], None
    try:
        for idx in minibatch_indices(len(t["y"]), batch_size, n_steps, "iid", generator):
            x, y = batch_inputs(t, idx.to(device), augment, aug_generator, pad=pad, cutout_size=cutout_size)
            gs = torch.autograd.grad(loss_fn(model(x), y), params)
            flat = torch.cat([g.reshape(-1) for g in gs])
            grads.append(flat.detach().to("cpu", torch.float64))
            v = flat if v is None else beta * v + flat  # torch SGD, dampening 0
            with torch.no_grad():
                off = 0
                for p in params:
                    p.sub_(h * v[off : off + p.numel()].view_as(p))
                    off += p.numel()
        with torch.no_grad():
            drift = float(sum(((p - q) ** 2).sum() for p, q in zip(params, saved_p)))
    finally:
        with torch.no_grad():
            for p, q in zip(params, saved_p):
                p.copy_(q)
            bufs = dict(model.named_buffers())
            for k, val in saved_b.items():
                bufs[k].copy_(val)
        model.train(was_training)
    return grads, drift


def run_trajectories(
    model,
    t,
    *,
    betas: Sequence[float],
    ks: Sequence[int],
    runs: int,
    groups: int,
    h: float,
    batch_size: int,
    seed: int,
    device,
    augment,
    pad: int,
    cutout_size: int,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Trajectories from the model's parameters θ_0 (docs/noise.md §10.3): ``runs``
    independent SGD+M runs of k_max + 1 steps per β, in ``groups`` groups, on the population
    ``t`` (igrm.batches.device_tensors). Returns the group estimates (igrm.noise.summarise
    makes the ratios; sampler iid: the theory is R_iid (T34) and (T37)) and the drift per β:
    the mean ‖θ_end − θ_0‖ over runs, relative to ‖θ_0‖ (drift_rel), with h, runs and the
    wall time."""
    betas = [float(b) for b in betas]
    ks = sorted(int(k) for k in ks)
    if runs % groups or runs // groups < 2:
        raise ValueError(f"noise.trajectory: runs ({runs}) must be a multiple of groups ({groups}) with >= 2 per group")
    gen = torch.Generator().manual_seed(seed_for(seed, "noise-trajectory"))
    aug = torch.Generator(device=device).manual_seed(seed_for(seed, "noise-trajectory-aug"))
    acc = TrajectoryAccumulator(betas, ks)
    theta0 = math.sqrt(float(sum((p.detach().double() ** 2).sum() for p in model.parameters() if p.requires_grad)))
    drift = np.zeros(len(betas))
    t0 = time.perf_counter()
    per = runs // groups
    for gi in range(groups):
        for _ in range(per):
            for bi, beta in enumerate(betas):
                grads, d2 = trajectory_windows(
                    model,
                    t,
                    beta=beta,
                    h=h,
                    batch_size=batch_size,
                    n_steps=ks[-1] + 1,
                    generator=gen,
                    device=device,
                    augment=augment,
                    aug_generator=aug,
                    pad=pad,
                    cutout_size=cutout_size,
                )
                acc.push_run(bi, grads)
                drift[bi] += math.sqrt(d2) / runs
        acc.end_group()
    return acc.groups, {
        "drift": drift,
        "drift_rel": drift / theta0,
        "h": np.float64(h),
        "runs": np.int64(runs),
        "wall_time_s": np.float64(time.perf_counter() - t0),
    }
