"""Heavy-ball (docs/theory.md (T2), (T3)) against torch.optim.SGD, numba against numpy, divergence."""

import numpy as np
import pytest
import torch

from igrm.heavyball import heavy_ball, heavy_ball_numba, record_steps, run
from igrm.problems import LeastSquares, SigmoidFactor, TwoFactor

BETAS = [0.0, 0.5, 0.9]


def torch_loss(problem, w):
    """Independent autograd version of each toy loss (docs/theory.md (T22), (T25))."""
    if isinstance(problem, TwoFactor):
        return 0.5 * (problem.y - w[0] * w[1] * problem.x) ** 2
    if isinstance(problem, SigmoidFactor):
        return 0.5 * (problem.y - w[0] * torch.sigmoid(w[1] * problem.x)) ** 2
    A = torch.as_tensor(problem.A)
    b = torch.as_tensor(problem.b)
    r = A @ w - b
    return 0.5 * torch.mean(r * r)


def torch_sgd(problem, x0, h, beta, n_steps):
    w = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=h, momentum=beta, dampening=0, nesterov=False)
    out = [w.detach().clone().numpy()]
    for _ in range(n_steps):
        opt.zero_grad()
        torch_loss(problem, w).backward()
        opt.step()
        out.append(w.detach().clone().numpy())
    return np.array(out)


PROBLEMS = [
    (TwoFactor(), np.array([2.8, 3.4]), 0.01),
    (SigmoidFactor(), np.array([6.0, 2.0]), 0.05),
    (LeastSquares.random(dim=4, n=10, seed=1), np.array([1.0, -0.5, 0.3, 2.0]), 0.2),
]


@pytest.mark.parametrize("problem,x0,h", PROBLEMS, ids=["two_factor", "sigmoid", "lstsq"])
@pytest.mark.parametrize("beta", BETAS)
def test_equals_torch_sgd(problem, x0, h, beta):
    n = 60
    ref = torch_sgd(problem, x0, h, beta, n)
    res = heavy_ball(problem, x0, h, beta, n)
    np.testing.assert_allclose(res.x, ref, rtol=1e-12, atol=1e-12)
    res2 = run(problem, x0, h, beta, n)
    np.testing.assert_allclose(res2.x, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("problem", [TwoFactor(x=1.3, y=0.6), SigmoidFactor(x=0.7, y=0.4)])
def test_numba_equals_numpy(problem):
    rng = np.random.default_rng(0)
    B = 7
    x0 = rng.uniform(-3, 3, size=(B, 2))
    h = rng.uniform(1e-3, 2e-2, size=B)
    beta = rng.uniform(0, 0.95, size=B)
    xprev = x0 + 1e-3 * rng.standard_normal((B, 2))
    a = heavy_ball(problem, x0, h, beta, 500, record_every=7, x_prev=xprev)
    b = heavy_ball_numba(problem, x0, h, beta, 500, record_every=7, x_prev=xprev)
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_allclose(b.x, a.x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.final, a.final, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(a.diverged_step, b.diverged_step)


def test_x_prev_is_initial_velocity():
    # x_prev = x0 - v means the first step carries momentum β v (docs/theory.md (T2))
    p = TwoFactor()
    x0 = np.array([1.0, 2.0])
    v = np.array([0.1, -0.2])
    r = heavy_ball(p, x0, 0.01, 0.9, 1, x_prev=x0 - v)
    np.testing.assert_allclose(r.final, x0 - 0.01 * p.grad(x0) + 0.9 * v, rtol=0, atol=1e-15)


@pytest.mark.parametrize("impl", [heavy_ball, heavy_ball_numba])
def test_divergence_recorded_others_continue(impl):
    p = TwoFactor()
    x0 = np.array([[2.8, 3.4], [2.8, 3.4]])
    # sharpness at init ≈ 28: h = 1.0 blows up, h = 1e-2 converges
    r = impl(p, x0, np.array([1.0, 1e-2]), 0.0, 300, record_every=50, blowup=1e6)
    assert r.diverged_step[0] > 0 and r.diverged_step[1] == -1
    k = r.diverged_step[0]
    assert np.all(np.isnan(r.final[0]))
    assert np.all(np.isfinite(r.final[1]))
    assert p.loss(r.final[1]) < 1e-6
    # before the divergence step the recorded iterates are finite, at/after it NaN
    assert np.all(np.isfinite(r.x[r.steps < k, 0]))
    assert np.all(np.isnan(r.x[r.steps >= k, 0]))


def test_divergence_step_matches_between_implementations():
    p = TwoFactor()
    x0 = np.array([[2.8, 3.4], [2.8, 3.4]])
    a = heavy_ball(p, x0, np.array([0.5, 0.01]), 0.9, 200, blowup=1e4)
    b = heavy_ball_numba(p, x0, np.array([0.5, 0.01]), 0.9, 200, blowup=1e4)
    np.testing.assert_array_equal(a.diverged_step, b.diverged_step)
    assert a.diverged_step[0] > 0 and a.diverged_step[1] == -1


@pytest.mark.parametrize("impl", [heavy_ball, heavy_ball_numba])
def test_record_every_includes_final(impl):
    r = impl(TwoFactor(), np.array([1.0, 2.0]), 0.01, 0.5, 23, record_every=5)
    np.testing.assert_array_equal(r.steps, [0, 5, 10, 15, 20, 23])
    assert r.x.shape == (6, 2)
    np.testing.assert_array_equal(r.x[-1], r.final)
    full = impl(TwoFactor(), np.array([1.0, 2.0]), 0.01, 0.5, 23)
    np.testing.assert_array_equal(full.x[r.steps], r.x)
    np.testing.assert_array_equal(record_steps(20, 5), [0, 5, 10, 15, 20])
