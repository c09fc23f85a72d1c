"""Gradient-norm penalty: the gradient of mu * ||grad E||^2, i.e. 2 mu H grad E.

The explicit IGR-M baseline (docs/igrm_baseline.md) runs GD/SGD on
E + mu ||grad E||^2. Its gradient is grad E + 2 mu H g with g = grad E, a
Hessian-vector product, computed here two ways:

- ``"double_backprop"`` (exact): g = autograd.grad(E, create_graph=True), then
  autograd.grad(mu * sum g_i^2). Eager mode only (compiled double backward is
  unsupported, ANCHORS §3.3).
- ``"fd_forward"`` / ``"fd_central"`` (finite-difference HVP): with v = g/||g||,
  H g ~= (grad E(theta + eps v) - grad E(theta)) * ||g|| / eps (forward) or
  (grad E(theta + eps v) - grad E(theta - eps v)) * ||g|| / (2 eps) (central).
  ``eps`` is the step length in parameter space. Parameters are restored exactly
  (copied back from a saved clone, never "subtract eps v").

E may be a sum of chunks (full-batch gradient accumulated over memory-sized chunks):
``loss_fns`` is a sequence of closures, each returning its chunk's loss already
weighted so that the losses sum to E. Then H g = sum_c H_c g with g the *full*
gradient: a first pass accumulates g, a second pass takes each chunk's HVP with
that fixed g.

BatchNorm in train mode: every closure call re-runs the forward pass on the same
(already augmented) inputs, so the penalty belongs to the same mini-batch's loss,
with that batch's statistics. Extra forward passes (the perturbed points, the
second chunked pass) would update the running statistics again; pass ``buffers``
(e.g. ``list(model.buffers())``) and they are restored to their state after the
first pass, so running statistics advance exactly once per step as in plain SGD.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

IMPLEMENTATIONS = ("double_backprop", "fd_forward", "fd_central")

LossFn = Callable[[], Tensor]


def _as_list(loss_fns) -> list[LossFn]:
    return [loss_fns] if callable(loss_fns) else list(loss_fns)


def sq_norm(tensors: Sequence[Tensor]) -> Tensor:
    """sum_i ||t_i||^2 as a 0-d tensor (float64 accumulation is not needed here)."""
    return sum((t.detach().float().pow(2).sum() for t in tensors), torch.zeros(()))


def dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    return sum(((x * y).sum() for x, y in zip(a, b)), torch.zeros((), dtype=a[0].dtype, device=a[0].device))


def cosine(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    a64 = torch.cat([t.detach().double().flatten().cpu() for t in a])
    b64 = torch.cat([t.detach().double().flatten().cpu() for t in b])
    return float(a64 @ b64 / (a64.norm() * b64.norm()))


def _grad(loss: Tensor, params: Sequence[Tensor], **kw) -> list[Tensor]:
    gs = torch.autograd.grad(loss, params, allow_unused=True, **kw)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params)]


def accumulate_grad(loss_fns, params: Sequence[Tensor]) -> tuple[list[Tensor], float]:
    """Gradient of sum_c loss_fns[c]() (each closure: one chunk's weighted loss),
    one backward per chunk; returns (grads, total loss value)."""
    total, grads = 0.0, None
    for fn in _as_list(loss_fns):
        loss = fn()
        g = _grad(loss, params)
        grads = g if grads is None else [a + b for a, b in zip(grads, g)]
        total += float(loss.detach())
    return grads, total


def _snapshot(tensors):
    return None if tensors is None else [t.detach().clone() for t in tensors]


def _restore(tensors, saved):
    if tensors is None:
        return
    with torch.no_grad():
        for t, s in zip(tensors, saved):
            t.copy_(s)


def hvp_double_backprop(loss_fns, params: Sequence[Tensor], v: Sequence[Tensor], buffers=None) -> list[Tensor]:
    """H v for E = sum of chunk losses, exact, one double backward per chunk."""
    saved = _snapshot(buffers)
    out = None
    for fn in _as_list(loss_fns):
        g = _grad(fn(), params, create_graph=True)
        hv = _grad(dot(g, [x.detach() for x in v]), params)
        out = hv if out is None else [a + b for a, b in zip(out, hv)]
    _restore(buffers, saved)
    return out


def hvp_finite_diff(
    loss_fns,
    params: Sequence[Tensor],
    v: Sequence[Tensor],
    eps: float,
    scheme: str = "forward",
    g0: Sequence[Tensor] | None = None,
    buffers=None,
) -> list[Tensor]:
    """H v by a finite difference of gradients along v/||v|| with step ``eps``.

    ``scheme``: "forward" (needs grad E at theta: pass ``g0`` or it is computed) or
    "central". Parameters and ``buffers`` are restored exactly afterwards."""
    if scheme not in ("forward", "central"):
        raise ValueError(f"scheme must be 'forward' or 'central', got {scheme!r}")
    vnorm = float(torch.sqrt(sum(x.detach().double().pow(2).sum() for x in v)))
    if vnorm == 0.0:
        return [torch.zeros_like(p) for p in params]
    saved_p = _snapshot(params)
    saved_b = _snapshot(buffers)
    step = eps / vnorm
    try:
        if scheme == "forward" and g0 is None:
            g0, _ = accumulate_grad(loss_fns, params)
            _restore(buffers, saved_b)
        with torch.no_grad():
            for p, x in zip(params, v):
                p.add_(x.detach().to(p.dtype), alpha=step)
        g_plus, _ = accumulate_grad(loss_fns, params)
        _restore(params, saved_p)
        _restore(buffers, saved_b)
        if scheme == "forward":
            return [(gp - g) / step for gp, g in zip(g_plus, g0)]
        with torch.no_grad():
            for p, x in zip(params, v):
                p.add_(x.detach().to(p.dtype), alpha=-step)
        g_minus, _ = accumulate_grad(loss_fns, params)
        return [(gp - gm) / (2 * step) for gp, gm in zip(g_plus, g_minus)]
    finally:
        _restore(params, saved_p)
        _restore(buffers, saved_b)


def penalty_grad(
    loss_fns, params: Sequence[Tensor], mu: float, impl: str, eps: float | None, buffers=None
) -> tuple[list[Tensor], list[Tensor], float]:
    """(g, grad of mu ||g||^2, E) at the current parameters, g = grad E.

    ``loss_fns``: one closure (a mini-batch) or a sequence of chunk closures whose
    losses sum to E. ``impl``: one of :data:`IMPLEMENTATIONS`; ``eps``: the finite-difference
    step of the ``fd_*`` ones (config: train.penalty_eps; unused, may be None, with
    ``double_backprop``). The first forward
    pass is the one that counts for ``buffers`` (BatchNorm running statistics);
    all later passes leave them as the first pass did.
    """
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"penalty implementation must be one of {IMPLEMENTATIONS}, got {impl!r}")
    fns = _as_list(loss_fns)
    if impl == "double_backprop" and len(fns) == 1:
        loss = fns[0]()
        g = _grad(loss, params, create_graph=True)
        pen = mu * sum((x.pow(2).sum() for x in g), torch.zeros((), dtype=loss.dtype, device=loss.device))
        pg = _grad(pen, params)
        return [x.detach() for x in g], pg, float(loss.detach())
    g, total = accumulate_grad(fns, params)
    if impl == "double_backprop":
        hv = hvp_double_backprop(fns, params, g, buffers=buffers)
    else:
        hv = hvp_finite_diff(fns, params, g, eps=eps, scheme=impl[3:], g0=g, buffers=buffers)
    return g, [2.0 * mu * x for x in hv], total


def compare_implementations(
    model: torch.nn.Module, loss_fn: LossFn, eps_list=(1e-1, 1e-2, 1e-3, 1e-4), mu: float = 1.0
) -> dict[str, float]:
    """Cosine (and relative norm) between the finite-difference penalty gradients
    and the double-backprop one, at the model's current parameters; BatchNorm
    buffers restored to the state after the reference pass. Used for the numbers
    in docs/igrm_baseline.md."""
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = list(model.buffers())
    start = _snapshot(buffers)
    _, ref, _ = penalty_grad(loss_fn, params, mu, "double_backprop", None)
    out: dict[str, float] = {}
    refn = float(torch.sqrt(sq_norm(ref)))
    for eps in eps_list:
        for impl in ("fd_forward", "fd_central"):
            _restore(buffers, start)
            _, fd, _ = penalty_grad(loss_fn, params, mu, impl, eps=eps, buffers=buffers)
            out[f"{impl}/eps={eps:g}/cos"] = cosine(ref, fd)
            out[f"{impl}/eps={eps:g}/rel_norm"] = float(torch.sqrt(sq_norm(fd))) / refn
    _restore(buffers, start)
    return out
