"""Closed-form derivatives of the toy problems (docs/theory.md (T22), (T25)) against torch autograd
and central finite differences."""

import numpy as np
import pytest
import torch

from igrm.problems import LeastSquares, SigmoidFactor, TwoFactor, make_problem


def torch_loss(problem, w):
    if isinstance(problem, TwoFactor):
        return 0.5 * (problem.y - w[0] * w[1] * problem.x) ** 2
    if isinstance(problem, SigmoidFactor):
        return 0.5 * (problem.y - w[0] * torch.sigmoid(w[1] * problem.x)) ** 2
    r = torch.as_tensor(problem.A) @ w - torch.as_tensor(problem.b)
    return 0.5 * torch.mean(r * r)


def autograd(problem, w, v):
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    loss = torch_loss(problem, wt)
    (g,) = torch.autograd.grad(loss, wt, create_graph=True)
    H = torch.autograd.functional.hessian(lambda z: torch_loss(problem, z), wt.detach())
    (hv,) = torch.autograd.grad(g @ torch.as_tensor(v), wt, retain_graph=True)
    (gn,) = torch.autograd.grad((g * g).sum(), wt)  # ∇‖∇E‖²
    return loss.item(), g.detach().numpy(), H.numpy(), hv.numpy(), gn.numpy()


def fd_grad(f, w, eps=1e-6):
    out = np.empty((w.size,) + np.shape(f(w)))
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = eps
        out[i] = (f(w + e) - f(w - e)) / (2 * eps)
    return out


PROBLEMS = [
    TwoFactor(),
    TwoFactor(x=1.7, y=-0.3),
    SigmoidFactor(),
    SigmoidFactor(x=0.8, y=0.9),
    LeastSquares.random(dim=4, n=9, cond=5.0, seed=3),
]
IDS = ["two_factor", "two_factor_b", "sigmoid", "sigmoid_b", "lstsq"]


@pytest.mark.parametrize("problem", PROBLEMS, ids=IDS)
def test_closed_form_matches_autograd_and_fd(problem):
    rng = np.random.default_rng(42)
    for _ in range(5):
        w = rng.uniform(-3, 3, size=problem.dim)
        v = rng.standard_normal(problem.dim)
        loss, g, H, hv, gn = autograd(problem, w, v)
        np.testing.assert_allclose(problem.loss(w), loss, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(problem.grad(w), g, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(problem.hess(w), H, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(problem.hvp(w, v), hv, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(problem.grad_norm2_grad(w), gn, rtol=1e-12, atol=1e-13)
        # central differences: O(eps²) truncation + O(1e-16/eps) rounding
        np.testing.assert_allclose(problem.grad(w), fd_grad(problem.loss, w), rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(problem.hess(w), fd_grad(problem.grad, w), rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(problem.grad_norm2_grad(w), fd_grad(problem.grad_norm2, w), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("problem", PROBLEMS, ids=IDS)
def test_batched_equals_loop(problem):
    rng = np.random.default_rng(1)
    W = rng.uniform(-2, 2, size=(3, 4, problem.dim))
    V = rng.standard_normal(W.shape)
    for name in ("loss", "grad", "hess", "grad_norm2_grad", "sharpness"):
        batched = getattr(problem, name)(W)
        loop = np.array([[getattr(problem, name)(W[i, j]) for j in range(4)] for i in range(3)])
        np.testing.assert_allclose(batched, loop, rtol=1e-14, atol=1e-14)
    hv = problem.hvp(W, V)
    loop = np.array([[problem.hess(W[i, j]) @ V[i, j] for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(hv, loop, rtol=1e-13, atol=1e-13)


def test_two_factor_sharpness_at_minimum():
    p = TwoFactor(x=1.3, y=0.6)
    w1 = np.array([0.2, 0.5, 0.77, 1.0, 2.5, -1.5])
    w = np.stack([w1, p.y / (p.x * w1)], axis=-1)  # on the hyperbola w1 w2 = y/x
    np.testing.assert_allclose(p.loss(w), 0.0, atol=1e-30)
    np.testing.assert_allclose(p.sharpness(w), p.x**2 * (w[:, 0] ** 2 + w[:, 1] ** 2), rtol=1e-13)
    np.testing.assert_allclose(p.sharpness_at_minimum(w), p.sharpness(w), rtol=1e-13)


def test_sigmoid_minima_curve_is_stationary():
    p = SigmoidFactor()
    w2 = np.linspace(-3, 5, 9)
    w = np.stack([p.minima_w1(w2), w2], -1)
    np.testing.assert_allclose(p.grad(w), 0.0, atol=1e-15)


def test_lstsq_minimiser_and_make_problem():
    p = make_problem("lstsq", dim=3, n=8, seed=0)
    np.testing.assert_allclose(p.grad(p.minimiser), 0.0, atol=1e-12)
    assert isinstance(make_problem("two_factor"), TwoFactor)
    with pytest.raises(ValueError):
        make_problem("nope")
