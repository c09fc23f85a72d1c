"""Coverage of the gradient-noise intervals, simulated at the config's own settings
(docs/noise.md §4.4): the estimator of igrm.noise (NoiseAccumulator + summarise) run on
many independent streams drawn from a synthetic population of per-example gradients whose
exact answers are known, with the same betas, ks, n_blocks, n_groups, block_len,
batch_size, population size and ci_level as the pipeline's noise jobs.

    population(*, train_subset, dim, tail_sigma, mean_to_noise, batch_size, seed)      §4.4
    simulate_coverage(*, betas, ks, n_blocks, ..., calibration) -> (arrays, attrs)
        sampler_coverage, trajectory_coverage (one sampler, the trajectory design)

The population is deliberately harder than a smooth Gaussian: per-example gradients
m + s_i z_i with z_i ~ N(0, diag(1/j)) (an effective dimension (Σ1/j)²/Σ1/j² ≈ 10 at
dim = 32, far below a network's) and lognormal scales s_i (heavy-tailed norms, as
high-loss examples give), so the group estimates are skewed and few windows of the
largest k are averaged. The claims rule reads the result: below the required coverage the
noise verdicts are inconclusive (igrm.claims.noise).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .noise import NoiseAccumulator, check_design, summarise
from .noise_theory import igrm_ratio_theory, ratio_epoch, ratio_iid
from .noise_trajectory import TrajectoryAccumulator

log = logging.getLogger(__name__)


def population(
    *, train_subset: int, dim: int, tail_sigma: float, mean_to_noise: float, batch_size: int, seed: int
) -> np.ndarray:
    """(N, dim) per-example gradients m + s_i z_i (docs/noise.md §4.4): z_i ~ N(0, diag(1/j)),
    s_i = exp(σ u_i), u_i ~ N(0, 1), and m scaled so that ‖m‖² = mean_to_noise · tr Σ_1/b
    (the mini-batch signal-to-noise ratio)."""
    rng = np.random.default_rng(seed)
    N, P = int(train_subset), int(dim)
    z = rng.normal(size=(N, P)) / np.sqrt(np.arange(1, P + 1))
    s = np.exp(float(tail_sigma) * rng.normal(size=(N, 1)))
    noise = s * z
    noise -= noise.mean(0)
    direction = rng.normal(size=P)
    direction /= np.linalg.norm(direction)
    tr_b = float(np.trace(np.cov(noise.T, bias=True))) / int(batch_size)
    return noise + math.sqrt(float(mean_to_noise) * tr_b) * direction


def _exact(G1: np.ndarray, b: int, sampler: str) -> tuple[float, float]:
    """tr Σ_b and ‖m‖² of the population (iid: Σ_1/b; epoch: ×(N−b)/(N−1), docs/noise.md §2.2)."""
    N = len(G1)
    tr1 = float(np.trace(np.cov(G1.T, bias=True)))
    m = G1.mean(0)
    return tr1 / b * (1.0 if sampler == "iid" else (N - b) / (N - 1)), float(m @ m)


def epoch_indices(N: int, b: int, L: int, R: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(phases (R,), example indices (R, L, b)) of R streams of L epoch-sampler batches, as
    igrm.noise.minibatch_indices draws them: a fresh permutation per epoch of M = N // b
    batches, the stream starting at a random phase."""
    M = N // b
    phases = rng.integers(0, M, size=R)
    idx = np.empty((R, L, b), dtype=np.int64)
    for r in range(R):
        need = int(math.ceil((phases[r] + L) / M))
        perms = np.concatenate([rng.permutation(N)[: M * b].reshape(M, b) for _ in range(need)])
        idx[r] = perms[phases[r] : phases[r] + L]
    return phases, idx


def _batches(G1: np.ndarray, b: int, L: int, sampler: str, rng: np.random.Generator, R: int):
    """(phases (R,), iterator of L (R, P) mini-batch gradients) for one block of R streams,
    drawn as igrm.noise.minibatch_indices draws them (epoch: :func:`epoch_indices`)."""
    N = len(G1)
    if sampler == "iid":
        idx = rng.integers(0, N, size=(R, L, b))
        return np.zeros(R, dtype=np.int64), (G1[idx[:, t]].mean(1) for t in range(L))
    phases, idx = epoch_indices(N, b, L, R, rng)
    return phases, (G1[idx[:, t]].mean(1) for t in range(L))


def _covers(m, name, truth, suffix=""):
    """Whether the interval holds the truth; an unbounded Fieller set (NaN ends: the claims
    call it inconclusive) counts as covering, as it does not exclude it."""
    lo, hi = m[f"{name}_lo{suffix}"], m[f"{name}_hi{suffix}"]
    return np.isnan(lo) | ((lo <= truth) & (truth <= hi))


COVERAGE_KEYS = (
    "cover_ratio",
    "cover_igrm",
    "cover_igrm_theory",
    "simul_ratio",
    "simul_igrm",
    "reject_ratio",
    "reject_igrm",
    "bias_ratio",
    "cover_bn",
    "simul_bn",
    "cover_share",
)


def simulate_coverage(
    *,
    betas: Sequence[float],
    ks: Sequence[int],
    n_blocks: int,
    n_groups: int,
    block_len: int | None,
    batch_size: int,
    sampler: str,
    train_subset: int | None,
    ci_level: float,
    trajectory: Mapping[str, Any],
    calibration: Mapping[str, Any],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Coverage of every interval of igrm.noise.summarise over ``calibration['replicates']``
    independent simulated noise jobs (docs/noise.md §4.4). Keyword arguments: the keys of
    config section ``noise`` that make the design of the noise jobs (the coverage is simulated
    at exactly these) and its ``calibration`` subsection (the population: replicates, dim,
    tail_sigma, mean_to_noise, seed; its min_coverage is the claims' threshold).

    Arrays (S = samplers): cover_ratio, cover_igrm, cover_igrm_theory (S×β×k; per-cell
    coverage of the ci_level intervals of R, ρ and ρ/ρ_exact), simul_ratio, simul_igrm
    (S; all cells covered at once by the simultaneous intervals), reject_ratio,
    reject_igrm (S; rejection rate of the joint sign-flip tests at 1 − ci_level, their
    size), bias_ratio (S×β×k; mean R̂/R − 1), replicates; for the BatchNorm split
    (docs/noise.md §8; NaN for iid) cover_bn (S×β×k), simul_bn and cover_share (S): coverage of
    measured/corrected theory and of the additive share (both 1 in this additive population)."""
    if train_subset is None:
        raise ValueError("the coverage simulation needs a finite population: set noise.train_subset")
    betas = [float(b) for b in betas]
    ks = sorted(int(k) for k in ks)
    samplers = check_design(
        betas=betas, ks=ks, sampler=sampler, n_blocks=int(n_blocks), n_groups=int(n_groups), block_len=block_len
    )
    L = int(block_len or (max(ks) + 1))
    R, b, N, seed = int(calibration["replicates"]), int(batch_size), int(train_subset), calibration["seed"]
    G1 = population(
        train_subset=N,
        dim=calibration["dim"],
        tail_sigma=calibration["tail_sigma"],
        mean_to_noise=calibration["mean_to_noise"],
        batch_size=b,
        seed=seed,
    )
    t0 = time.perf_counter()
    per_sampler = [
        sampler_coverage(
            G1,
            s,
            si,
            betas=betas,
            ks=ks,
            block_len=L,
            n_blocks=int(n_blocks),
            n_groups=int(n_groups),
            batch_size=b,
            replicates=R,
            ci_level=ci_level,
            seed=seed,
            t0=t0,
        )
        for si, s in enumerate(samplers)
    ]
    arrays = {k: np.asarray([c[k] for c in per_sampler]) for k in COVERAGE_KEYS}
    if trajectory["betas"]:
        arrays.update(
            trajectory_coverage(G1, trajectory, batch_size=b, replicates=R, ci_level=ci_level, seed=seed, t0=t0)
        )
    arrays.update(
        samplers=np.array(samplers), betas=np.array(betas), ks=np.array(ks, dtype=np.int64), replicates=np.int64(R)
    )
    attrs = {
        "n_blocks": int(n_blocks),
        "n_groups": int(n_groups),
        "block_len": L,
        "batch_size": b,
        "train_subset": N,
        "ci_level": float(ci_level),
        "replicates": R,
        "dim": int(calibration["dim"]),
        "tail_sigma": float(calibration["tail_sigma"]),
        "mean_to_noise": float(calibration["mean_to_noise"]),
        "trajectory": dict(trajectory),
        "wall_time_s": time.perf_counter() - t0,
    }
    return arrays, attrs


def sampler_coverage(
    G1: np.ndarray,
    sampler: str,
    index: int,
    *,
    betas,
    ks,
    block_len: int,
    n_blocks: int,
    n_groups: int,
    batch_size: int,
    replicates: int,
    ci_level: float,
    seed: int,
    t0: float,
) -> dict[str, np.ndarray]:
    """The coverage of one sampler's intervals: ``replicates`` noise jobs side by side on the
    population ``G1``, drawn by the stream [seed, index] (index: the sampler's place)."""
    s, b, N, R = sampler, batch_size, len(G1), replicates
    rng = np.random.default_rng([seed, index])
    tau, mu = _exact(G1, b, s)
    th = (
        ratio_iid(np.array(betas)[:, None], np.array(ks)[None])
        if s == "iid"
        else np.array([[ratio_epoch(be, k, N, b) for k in ks] for be in betas])
    )
    rho = np.array([[igrm_ratio_theory(be, k, mu, tau, s, N, b) for k in ks] for be in betas])
    acc = NoiseAccumulator(betas, ks, block_len, epoch=(N, b) if s == "epoch" else None, replicates=R)
    per_group = n_blocks // n_groups
    for blk in range(n_blocks):
        phases, grads = _batches(G1, b, block_len, s, rng, R)
        acc.add_block(grads, phases)
        if (blk + 1) % per_group == 0:
            acc.end_group()
    cov = _replicate_coverage(
        acc,
        th,
        rho,
        betas=betas,
        ks=ks,
        sampler=s,
        N=N,
        b=b,
        R=R,
        ci_level=ci_level,
        seed=seed,
        alpha=1 - float(ci_level),
    )
    log.info(
        "coverage %s: %d replicates, mean per-cell coverage %.3f (%.0f s)",
        s,
        R,
        float(np.mean(cov["cover_ratio"])),
        time.perf_counter() - t0,
    )
    return cov


def trajectory_coverage(
    G1: np.ndarray,
    trajectory: Mapping[str, Any],
    *,
    batch_size: int,
    replicates: int,
    ci_level: float,
    seed: int,
    t0: float,
) -> dict[str, np.ndarray]:
    """The trajectory estimator (docs/noise.md §10) at its own design, at a fixed point (no
    drift): its coverage arrays under the prefix ``trajectory/``."""
    tb, tk = [float(x) for x in trajectory["betas"]], sorted(int(k) for k in trajectory["ks"])
    runs, tg = int(trajectory["runs"]), int(trajectory["groups"])
    b, N, R = batch_size, len(G1), replicates
    rng = np.random.default_rng([seed, 7])
    tau, mu = _exact(G1, b, "iid")
    acc = TrajectoryAccumulator(tb, tk, replicates=R)
    for _ in range(tg):
        for _ in range(runs // tg):
            for bi in range(len(tb)):
                idx = rng.integers(0, N, size=(R, tk[-1] + 1, b))
                acc.push_run(bi, (G1[idx[:, t]].mean(1) for t in range(tk[-1] + 1)))
        acc.end_group()
    th = ratio_iid(np.array(tb)[:, None], np.array(tk)[None])
    rho = np.array([[igrm_ratio_theory(be, k, mu, tau, "iid") for k in tk] for be in tb])
    cov = _replicate_coverage(
        acc,
        th,
        rho,
        betas=tb,
        ks=tk,
        sampler="iid",
        N=N,
        b=b,
        R=R,
        ci_level=ci_level,
        seed=seed,
        alpha=1 - float(ci_level),
    )
    log.info(
        "coverage trajectory: mean per-cell coverage %.3f (%.0f s)",
        float(np.mean(cov["cover_ratio"])),
        time.perf_counter() - t0,
    )
    out = {f"trajectory/{k}": np.asarray(v) for k, v in cov.items()}
    out.update({"trajectory/betas": np.array(tb), "trajectory/ks": np.array(tk, dtype=np.int64)})
    return out


def _replicate_coverage(acc, th, rho, *, betas, ks, sampler, N, b, R, ci_level, seed, alpha) -> dict[str, np.ndarray]:
    """Per-replicate summarise of a replicated accumulator and the coverage of its intervals
    (means over the R replicates; docs/noise.md §4.4)."""
    s = sampler
    cov = {k: [] for k in COVERAGE_KEYS}
    for r in range(R):
        groups = [
            {
                k: (v[r] if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == R and k != "n_windows" else v)
                for k, v in g.items()
            }
            for g in acc.groups
        ]
        m = summarise(
            groups, betas=betas, ks=ks, sampler=s, n_examples=N, batch_size=b, ci_level=float(ci_level), seed=seed + r
        )
        cov["cover_ratio"].append(_covers(m, "ratio", th))
        cov["cover_igrm"].append(_covers(m, "igrm_over_igr", rho))
        cov["cover_igrm_theory"].append(_covers(m, "igrm_vs_theory", 1.0))
        cov["simul_ratio"].append(np.all(_covers(m, "ratio", th, "_simul")))
        cov["simul_igrm"].append(np.all(_covers(m, "igrm_vs_theory", 1.0, "_simul")))
        cov["reject_ratio"].append(m["ratio_p_joint"] <= alpha)
        cov["reject_igrm"].append(m["igrm_p_joint"] <= alpha)
        cov["bias_ratio"].append(m["ratio"] / th - 1)
        # the BatchNorm intervals (docs/noise.md §8): the population is additive, so the
        # share is 1 and measured/corrected theory is 1 (epoch sampler; NaN for iid)
        bn_ok = s == "epoch"
        cov["cover_bn"].append(_covers(m, "ratio_bn", 1.0) if bn_ok else np.full(th.shape, np.nan))
        cov["simul_bn"].append(np.all(_covers(m, "ratio_bn", 1.0, "_simul")) if bn_ok else np.nan)
        cov["cover_share"].append(_covers(m, "additive_share", 1.0) if bn_ok else np.nan)
    return {k: np.mean(np.asarray(cov[k], dtype=float), axis=0) for k in COVERAGE_KEYS}
