"""Several SGD+M runs trained together in one process: one vectorised step for all (``train.ensemble: k``).

On a GPU one batch-128 ResNet-18 leaves most of the card idle; the seeds (or β, η) of one grid
cell stepped together by ``torch.func.vmap`` over their stacked parameters fill it. Each member
is a complete igrm.train run: its own cfg (seed, β, η, weight decay), initialisation, data
subset and order, augmentation stream, optimiser, BatchNorm statistics (its own buffers, updated
by its own batch), sharpness points, checkpoints, resume, and its own (arrays, attrs) exactly as
:func:`igrm.train.train` returns them. Only the forward and backward pass of the training step
is shared: the members' parameters and buffers are stacked, one vmapped forward (each member
its own batch through its own weights; vmap turns each convolution into a grouped one and
each BatchNorm into one over K·C channels, so batch statistics stay per member), one backward
of the summed losses (the members are independent: each slice of the gradient is that member's
gradient), then each member's plain optimiser step (igrm.train.apply_step). Evaluation,
sharpness and checkpoints run per member as in the plain path.

Agreement with the plain path (tests/test_ensemble.py): K = 1 is bit-identical (one member
takes the plain step: vmap of a single model already differs from it at float rounding); every member
of a K = 4 ensemble matches its solo run after a step to float rounding (the grouped kernels
sum in another order) and its final accuracy stays within the seed-to-seed spread.

Members must share what fixes the step's shapes and kernels (:data:`SHARED_KEYS`); SGD+M only
(the full-batch methods run their chunks and the explicit baseline's double backward per run:
train them with igrm.train.train). Members behind the others on resume (their checkpoints are
older) first train alone, with the plain path, up to the others' epoch.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .batches import resolve_device
from .regularizers import accumulate_grad
from .train import (
    EpochSums,
    Run,
    apply_step,
    begin_step,
    chunk_loss_fns,
    deterministic_in_effect,
    end_run,
    epoch_batches,
    finish_epoch,
    numerics,
    resolve_config,
    run_due,
    run_epoch,
    start_run,
    step_batch,
)

#: the script of the pipeline's ensemble jobs: its code inputs are in a member's checkpoint
#: fingerprint (igrm.train.trajectory_code)
SCRIPT = "train_ensemble.py"

#: igrm.train cfg keys every member of an ensemble must share: what fixes the vmapped step's
#: shapes and kernels, then the batches and schedule all members step through together
SHARED_KEYS = (
    *("model", "width", "method", "batch_size", "device", "bf16", "channels_last", "deterministic"),
    *("epochs", "schedule", "augment", "pad", "cutout_size", "train_subset", "test_subset"),
)


def check_members(cfgs: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The members' resolved cfgs; ValueError naming the key when they cannot share a step."""
    cs = [resolve_config(c) for c in cfgs]
    if not cs:
        raise ValueError("an ensemble needs at least one run")
    for k in SHARED_KEYS:
        vals = {repr(c[k]) for c in cs}
        if len(vals) > 1:
            raise ValueError(
                f"ensemble members differ in training cfg key {k!r} ({', '.join(sorted(vals))}): "
                f"members share {', '.join(SHARED_KEYS)}; group runs that agree on them"
            )
    if cs[0]["method"] != "sgdm":
        raise ValueError(
            f"the ensemble path trains SGD+M runs; method {cs[0]['method']!r} trains with igrm.train.train"
        )
    return cs


def train_ensemble(
    cfgs: Sequence[Mapping[str, Any]],
    data: Mapping[str, Any],
    checkpoint_dirs: Sequence[Path | None],
    progresses: Sequence[Any],
) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    """Train the runs ``cfgs`` together; [(arrays, attrs)] per run, as igrm.train.train returns
    them (attrs add ``ensemble_size``). ``checkpoint_dirs`` / ``progresses``: per run."""
    cs = check_members(cfgs)
    device = resolve_device(cs[0]["device"])
    with numerics(deterministic_in_effect(cs[0]["deterministic"], device), device):
        # checkpoints carry this job's code (scripts/train_ensemble.py's inputs, igrm/ensemble.py
        # among them), so a lone run never resumes an ensemble's and a code change retrains
        runs = [start_run(c, data, device, ck, pr, SCRIPT) for c, ck, pr in zip(cs, checkpoint_dirs, progresses)]
        catch_up(runs)
        step = VmapStep(runs[0].model)
        while any(run_due(r) for r in runs):
            ensemble_epoch([r for r in runs if run_due(r)], step)
        out = [end_run(r) for r in runs]
    return [(a, {**at, "ensemble_size": len(runs)}) for a, at in out]


def train_runs(
    cfgs: Sequence[Mapping[str, Any]],
    data: Mapping[str, Any],
    checkpoint_dirs: Sequence[Path | None],
    progresses: Sequence[Any],
    ensemble: int,
) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    """Several runs of one job (config ``train.ensemble``): SGD+M runs that can share a step
    (:data:`SHARED_KEYS`) in groups of at most ``ensemble`` with :func:`train_ensemble`, the
    others (and everything when ``ensemble`` is 1) one by one with igrm.train.train; results in
    the order of ``cfgs``."""
    from .train import train

    out: list = [None] * len(cfgs)
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(cfgs):
        if int(ensemble) > 1 and c["method"] == "sgdm":
            groups.setdefault(repr([c[k] for k in SHARED_KEYS]), []).append(i)
        else:
            out[i] = train(c, data, checkpoint_dirs[i], progresses[i])
    for idx in groups.values():
        for start in range(0, len(idx), int(ensemble)):
            part = idx[start : start + int(ensemble)]
            res = train_ensemble(
                [cfgs[i] for i in part], data, [checkpoint_dirs[i] for i in part], [progresses[i] for i in part]
            )
            for i, r in zip(part, res):
                out[i] = r
    return out


def catch_up(runs: Sequence[Run]) -> None:
    """Members resumed from older checkpoints train alone (plain path) to the others' epoch."""
    target = max(r.state["epoch"] for r in runs)
    for r in runs:
        while run_due(r) and r.state["epoch"] < target:
            run_epoch(r)


def ensemble_epoch(runs: Sequence[Run], step: VmapStep) -> None:
    """One epoch of every member: each its own batches (its order and augment streams), one
    vectorised gradient per step, each its own optimiser step; then each its own measurements."""
    t0 = time.perf_counter()
    for r in runs:
        r.model.train()
    batches = [epoch_batches(r) for r in runs]
    sums = [EpochSums() for _ in runs]
    alive = [True] * len(runs)
    for i in range(len(batches[0])):
        live = [j for j in range(len(runs)) if alive[j]]
        if not live:
            break
        for j in live:
            begin_step(runs[j], sums[j])
        xy = [step_batch(runs[j], batches[j][i]) for j in live]
        grads, losses, correct = step([runs[j] for j in live], [x for x, _ in xy], [y for _, y in xy])
        for j, g, loss, right, (_, y) in zip(live, grads, losses, correct, xy):
            alive[j] = apply_step(runs[j], g, g, loss, len(y), right, sums[j])
    for r, s in zip(runs, sums):
        finish_epoch(r, s, t0)


class VmapStep:
    """Loss gradients of several members' batches in one vmapped forward and one backward."""

    def __init__(self, model: torch.nn.Module):
        # a weightless copy of the architecture: torch.func.functional_call supplies the weights
        self.base = copy.deepcopy(model).to("meta")
        self.p_names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.b_names = [n for n, _ in model.named_buffers()]

    def __call__(
        self, runs: Sequence[Run], xs: Sequence[Tensor], ys: Sequence[Tensor]
    ) -> tuple[list[list[Tensor]], list[float], list[int]]:
        """(per member: gradient in run.params order, mean loss, correct predictions)."""
        from torch.func import functional_call, vmap

        if len(runs) == 1:  # nothing to vectorise: the plain step (vmap of one differs by rounding)
            return plain_gradient(runs[0], xs[0], ys[0])

        named = [dict(r.model.named_parameters()) for r in runs]
        bufs = [dict(r.model.named_buffers()) for r in runs]
        P = {n: torch.stack([m[n].detach() for m in named]).requires_grad_() for n in self.p_names}
        B = {n: torch.stack([b[n] for b in bufs]) for n in self.b_names}
        X, Y = torch.stack(list(xs)), torch.stack(list(ys))

        def forward(p, b, x):
            return functional_call(self.base, (p, b), (x,))

        with runs[0].autocast():
            out = vmap(forward)(P, B, X)
        n = Y.shape[1]
        losses = [F.cross_entropy(_f32(out[k]), Y[k], reduction="sum") / n for k in range(len(runs))]
        total = losses[0] if len(losses) == 1 else torch.stack(losses).sum()
        g = torch.autograd.grad(total, [P[nm] for nm in self.p_names])
        with torch.no_grad():
            for k, b in enumerate(bufs):  # each member's BatchNorm statistics, updated by its batch
                for nm in self.b_names:
                    b[nm].copy_(B[nm][k])
        grads = [[gi[k] for gi in g] for k in range(len(runs))]
        correct = [int((out[k].argmax(1) == Y[k]).sum()) for k in range(len(runs))]
        return grads, [float(x.detach()) for x in losses], correct


def plain_gradient(run: Run, x: Tensor, y: Tensor) -> tuple[list[list[Tensor]], list[float], list[int]]:
    """One member's step gradient exactly as igrm.train.step_gradient computes it (SGD+M)."""
    stats: dict = {}
    fns = chunk_loss_fns(run.step_model, [x], [y], len(y), run.autocast, stats)
    g, loss = accumulate_grad(fns, run.params)
    return [g], [loss], [stats.get("correct", 0)]


def _f32(t: Tensor) -> Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
