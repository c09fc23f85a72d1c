import pytest
import torch
from torch import nn

from igrm.regularizers import (
    accumulate_grad,
    compare_implementations,
    cosine,
    hvp_double_backprop,
    hvp_finite_diff,
    penalty_grad,
)

torch.set_num_threads(1)


def _mlp_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    x = torch.randn(8, 3, generator=g, dtype=torch.float64)
    y = torch.randn(8, 2, generator=g, dtype=torch.float64)
    params = list(model.parameters())
    return model, params, x, y


def _explicit_penalty_grad(model, params, x, y, mu):
    """2 mu H grad E from the full Hessian of E in the flattened parameters."""
    shapes = [p.shape for p in params]
    flat0 = torch.cat([p.detach().flatten() for p in params])

    def E(flat):
        chunks, i = [], 0
        for s in shapes:
            n = int(torch.tensor(s).prod())
            chunks.append(flat[i : i + n].view(s))
            i += n
        names = [n for n, _ in model.named_parameters()]
        out = torch.func.functional_call(model, dict(zip(names, chunks)), (x,))
        return ((out - y) ** 2).mean()

    H = torch.autograd.functional.hessian(E, flat0)
    g = torch.autograd.functional.jacobian(E, flat0)
    return 2 * mu * H @ g, len(flat0)


def _unflat(params, flat):
    out, i = [], 0
    for p in params:
        out.append(flat[i : i + p.numel()].view_as(p))
        i += p.numel()
    return out


@pytest.mark.parametrize("impl,tol", [("double_backprop", 1e-10), ("fd_central", 1e-6), ("fd_forward", 1e-3)])
def test_penalty_grad_matches_explicit_hessian(impl, tol):
    model, params, x, y = _mlp_problem()
    mu = 0.37
    ref, _ = _explicit_penalty_grad(model, params, x, y, mu)
    before = [p.detach().clone() for p in params]
    g, pg, loss = penalty_grad(lambda: ((model(x) - y) ** 2).mean(), params, mu, impl, eps=1e-5)
    got = torch.cat([t.flatten() for t in pg])
    assert torch.linalg.norm(got - ref) <= tol * torch.linalg.norm(ref)
    # parameters restored exactly (bitwise), gradient of E returned alongside
    assert all(torch.equal(a, b) for a, b in zip(before, params))
    ref_g = torch.autograd.grad(((model(x) - y) ** 2).mean(), params)
    assert all(torch.allclose(a, b, rtol=1e-12, atol=0) for a, b in zip(g, ref_g))
    assert loss == pytest.approx(float(((model(x) - y) ** 2).mean().detach()), rel=1e-12)


def test_chunked_penalty_equals_one_shot():
    model, params, x, y = _mlp_problem(1)
    mu = 0.2
    whole = lambda: ((model(x) - y) ** 2).sum() / (len(x) * 2)
    chunks = [lambda i=i: ((model(x[i : i + 3]) - y[i : i + 3]) ** 2).sum() / (len(x) * 2) for i in (0, 3, 6)]
    _, ref, _ = penalty_grad(whole, params, mu, "double_backprop", None)
    for impl in ("double_backprop", "fd_central"):
        _, got, _ = penalty_grad(chunks, params, mu, impl, eps=1e-5)
        for a, b in zip(got, ref):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-10)


def test_double_backprop_and_finite_diff_hvp_agree_for_any_vector():
    model, params, x, y = _mlp_problem(2)
    loss = lambda: ((model(x) - y) ** 2).mean()
    v = [torch.randn_like(p) for p in params]
    a = hvp_double_backprop(loss, params, v)
    b = hvp_finite_diff(loss, params, v, eps=1e-5, scheme="central")
    assert cosine(a, b) > 1 - 1e-10


def _cnn(act, pool):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        act(),
        pool(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        act(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def test_buffers_advance_once_per_penalty_evaluation():
    """BatchNorm in train mode: running stats advance exactly as after one plain forward."""
    model = _cnn(nn.ReLU, nn.MaxPool2d)
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    params, buffers = list(model.parameters()), list(model.buffers())
    start = [b.clone() for b in buffers]
    model(x)
    after_one = [b.clone() for b in buffers]
    for impl in ("fd_forward", "fd_central", "double_backprop"):
        for b, s in zip(buffers, start):
            b.data.copy_(s)
        penalty_grad(lambda: nn.functional.cross_entropy(model(x), y), params, 1.0, impl, eps=1e-2, buffers=buffers)
        assert all(torch.equal(b, a) for b, a in zip(buffers, after_one)), impl


def test_smooth_cnn_float32_cosine_high():
    """tanh/avg-pool CNN, float32, train-mode BatchNorm: finite differences agree with
    double backprop over a range of eps (no kinks to cross)."""
    model = _cnn(nn.Tanh, nn.AvgPool2d)
    torch.manual_seed(1)
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    res = compare_implementations(model, lambda: nn.functional.cross_entropy(model(x), y), eps_list=(1e-2, 1e-3))
    for eps in ("0.01", "0.001"):
        assert res[f"fd_central/eps={eps}/cos"] > 0.999
        assert abs(res[f"fd_central/eps={eps}/rel_norm"] - 1) < 0.01


def test_relu_cnn_finite_difference_sees_kinks():
    """ReLU/max-pool CNN (float64): finite differences agree only when eps is below the
    distance to the nearest kink; at moderate eps a crossed kink adds a jump/eps term
    (the measured cosines are in docs/igrm_baseline.md)."""
    model = _cnn(nn.ReLU, nn.MaxPool2d).double()
    torch.manual_seed(1)
    x, y = torch.randn(16, 3, 8, 8, dtype=torch.float64), torch.randint(0, 10, (16,))
    res = compare_implementations(model, lambda: nn.functional.cross_entropy(model(x), y), eps_list=(1e-1, 1e-9))
    assert res["fd_central/eps=1e-09/cos"] > 0.9999
    assert res["fd_central/eps=0.1/cos"] < 0.99


def test_accumulate_grad_sums_chunks():
    model, params, x, y = _mlp_problem(3)
    g1, l1 = accumulate_grad(lambda: ((model(x) - y) ** 2).sum(), params)
    g2, l2 = accumulate_grad(
        [lambda i=i: ((model(x[i : i + 2]) - y[i : i + 2]) ** 2).sum() for i in range(0, 8, 2)], params
    )
    assert l1 == pytest.approx(l2, rel=1e-12)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
