"""igrm.sharpness and igrm.validity: power iteration on Hessian-vector products against the exact Hessian
(torch.autograd.functional.hessian + numpy eigvalsh) of tiny networks, its sign and its
lower-bound property; the expansion parameters against step_sizes and against one real
step of the explicit baseline; and the measurement along a training run (igrm.train),
which leaves the trajectory bit-identical."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from igrm.regularizers import penalty_grad
from igrm.sharpness import hutchinson_trace, lambda_max, measure, power_iteration, rademacher
from igrm.toy import real_root_bound
from igrm.train import sharpness_epochs, step_sizes, train
from igrm.validity import expansion_parameters, in_declared_range
from tests._train_cfg import train_cfg
from tests.test_train import BASE, tiny_data


def _bn_net(seed=0):
    """Linear-BatchNorm-tanh-Linear in float64, train mode: the batch statistics depend
    on the parameters, and the Hessian of the train-mode loss includes that."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 3)).double()
    net.train()
    return net


def _data(n=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def _exact_eigs(net, chunks):
    """Eigenvalues of the full Hessian of Σ_c sum-CE(chunk)/N in the flat parameters."""
    return np.linalg.eigvalsh(_exact_hessian(net, chunks))


def _exact_hessian(net, chunks):
    """The full Hessian of Σ_c sum-CE(chunk)/N in the flat parameters (autograd, float64)."""
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    sizes = [p.numel() for _, p in net.named_parameters()]
    bufs = {n: b.clone() for n, b in net.named_buffers()}
    n_total = sum(len(y) for _, y in chunks)

    def loss(flat):
        ps = {n: t.view(s) for n, t, s in zip(names, torch.split(flat, sizes), shapes)}
        return (
            sum(
                F.cross_entropy(
                    functional_call(net, (ps, {k: v.clone() for k, v in bufs.items()}), (x,)), y, reduction="sum"
                )
                for x, y in chunks
            )
            / n_total
        )

    flat = torch.cat([p.detach().flatten() for p in net.parameters()])
    H = torch.autograd.functional.hessian(loss, flat).numpy()
    assert np.allclose(H, H.T, atol=1e-10)
    return H


def _fns(net, chunks):
    n_total = sum(len(y) for _, y in chunks)
    return [lambda x=x, y=y: F.cross_entropy(net(x), y, reduction="sum") / n_total for x, y in chunks]


@pytest.mark.parametrize("n_chunks", [1, 3])
def test_power_iteration_matches_the_exact_top_eigenvalue(n_chunks):
    """On a BN network in train mode (one chunk, or three chunks with their own batch
    statistics), λ_max by HVP power iteration equals the eigenvalue of largest magnitude
    of the exact Hessian (autograd.functional.hessian, numpy eigvalsh), sign included."""
    net = _bn_net()
    x, y = _data()
    chunks = list(zip(torch.split(x, len(x) // n_chunks), torch.split(y, len(y) // n_chunks)))
    eigs = _exact_eigs(net, chunks)
    top = eigs[np.argmax(np.abs(eigs))]
    buffers = list(net.buffers())
    before = [b.clone() for b in buffers]
    rng_before = torch.get_rng_state()
    r = lambda_max(
        loss_fns=_fns(net, chunks),
        params=list(net.parameters()),
        buffers=buffers,
        iters=5000,
        tol=1e-7,
        generator=torch.Generator().manual_seed(0),
    )
    assert r.converged and r.iters < 5000
    assert r.value == pytest.approx(top, rel=1e-7), (r.value, eigs[-3:], eigs[:3])
    assert r.residual <= 1e-7
    assert abs(r.value) >= np.abs(eigs).max() * (1 - 1e-7)  # the largest in magnitude
    # BN running statistics restored bitwise, the global RNG untouched
    for b, s in zip(buffers, before):
        assert torch.equal(b, s)
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_power_iteration_keeps_the_sign_of_a_dominant_negative_eigenvalue():
    """A planted symmetric map with eigenvalues (−5, 3, 1, −0.5, 0.2): power iteration
    returns −5, the eigenvalue of largest magnitude, not the largest (3)."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    A = torch.tensor(Q @ np.diag([-5.0, 3.0, 1.0, -0.5, 0.2]) @ Q.T)
    r = power_iteration(hvp=lambda v: [A @ v[0]], start=[torch.ones(5, dtype=torch.float64)], iters=500, tol=1e-14)
    assert r.converged and r.value == pytest.approx(-5.0, rel=1e-10)
    # the same through lambda_max on the quadratic loss ½ θᵀAθ (Hessian A)
    theta = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    r2 = lambda_max(
        loss_fns=[lambda: 0.5 * theta @ (A @ theta) + theta.sum()],
        params=[theta],
        buffers=None,
        iters=500,
        tol=1e-14,
        generator=torch.Generator().manual_seed(3),
    )
    assert r2.value == pytest.approx(-5.0, rel=1e-10)


def test_every_iterate_is_a_lower_bound_and_stops_at_iters():
    """|vᵀHv| ≤ max|λ| for any unit v (docs/theory.md (T60)): an unconverged measurement
    still bounds the spectral radius from below, and it says it did not converge."""
    net = _bn_net(seed=2)
    x, y = _data(seed=4)
    eigs = _exact_eigs(net, [(x, y)])
    rho = np.abs(eigs).max()
    for iters in (1, 2, 3, 5):
        r = lambda_max(
            loss_fns=_fns(net, [(x, y)]),
            params=list(net.parameters()),
            buffers=list(net.buffers()),
            iters=iters,
            tol=0.0,
            generator=torch.Generator().manual_seed(iters),
        )
        assert r.iters == iters and not r.converged
        assert abs(r.value) <= rho * (1 + 1e-12)
        # residual = ‖Hv − λv‖/|λ| of the last iterate: the distance from an eigenpair
        assert r.residual > 0


def test_measure_trace_and_gradient_norm_against_the_exact_hessian():
    """measure() on a BN network in train mode, three chunks: λ_max as the exact top
    eigenvalue; Hutchinson's tr H within 4 standard errors of the exact trace, the
    reported se equal to the probes' s/√m; ‖∇E‖² equal to the direct gradient's
    (docs/theory.md (T60), (T64), (T65)); BN buffers restored."""
    net = _bn_net(seed=5)
    x, y = _data(seed=6)
    chunks = list(zip(torch.split(x, 8), torch.split(y, 8)))
    H = _exact_hessian(net, chunks)
    eigs = np.linalg.eigvalsh(H)
    buffers = list(net.buffers())
    before = [b.clone() for b in buffers]
    m = measure(
        loss_fns=_fns(net, chunks),
        params=list(net.parameters()),
        buffers=buffers,
        algorithm="power",
        iters=3000,
        tol=1e-8,
        trace_probes=300,
        generator=torch.Generator().manual_seed(1),
    )
    for b, s in zip(buffers, before):
        assert torch.equal(b, s)
    assert m.power.converged and m.power.value == pytest.approx(eigs[np.argmax(np.abs(eigs))], rel=1e-6)
    t = m.trace
    assert t.probes == 300 and len(t.values) == 300
    assert t.se == pytest.approx(np.std(t.values, ddof=1) / math.sqrt(300), rel=1e-9)
    assert abs(t.value - np.trace(H)) <= 4 * t.se, (t.value, np.trace(H), t.se)
    # the per-probe variance 2(‖H‖_F² − Σ H_ii²) of Rademacher probes ((T64)), at 300 probes
    var = 2 * ((H**2).sum() - (np.diag(H) ** 2).sum())
    assert np.var(t.values, ddof=1) == pytest.approx(var, rel=0.3)
    # ‖∇E‖² of the same E, directly (one gradient of the summed loss)
    g = torch.autograd.grad(sum(f() for f in _fns(net, chunks)), list(net.parameters()))
    assert m.grad_norm_sq == pytest.approx(float(sum((gi**2).sum() for gi in g)), rel=1e-10)
    assert m.loss == pytest.approx(float(sum(f() for f in _fns(net, chunks))), rel=1e-12)  # E itself
    # one probe: no se; no probe: no trace, and lambda_max is measure's power part from the same start
    m1 = measure(
        loss_fns=_fns(net, chunks),
        params=list(net.parameters()),
        buffers=buffers,
        algorithm="power",
        iters=7,
        tol=0.0,
        trace_probes=1,
        generator=torch.Generator().manual_seed(2),
    )
    assert m1.trace.probes == 1 and math.isnan(m1.trace.se)
    r = lambda_max(
        loss_fns=_fns(net, chunks),
        params=list(net.parameters()),
        buffers=buffers,
        iters=7,
        tol=0.0,
        generator=torch.Generator().manual_seed(2),
    )
    assert r == m1.power


def test_hutchinson_on_planted_matrices():
    """Rademacher probes: exact (zero variance) on a diagonal matrix; on a dense planted
    one, unbiased (within 4 se of tr A) with per-probe variance 2(‖A‖_F² − Σ A_ii²)
    (docs/theory.md (T64)); the variance of that sample variance checked at 4000 probes."""
    D = torch.diag(torch.tensor([3.0, -1.0, 0.5, 7.0], dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    probes = [rademacher([D[0]], g) for _ in range(5)]
    t = hutchinson_trace(hvp=lambda v: [D @ v[0]], probes=probes)
    assert t.value == pytest.approx(9.5, rel=1e-14) and t.se == pytest.approx(0.0, abs=1e-12)
    assert all(set(p[0].tolist()) <= {-1.0, 1.0} for p in probes)
    rng = np.random.default_rng(1)
    B = rng.standard_normal((12, 12))
    A = torch.tensor(B + B.T)
    probes = [rademacher([A[0]], g) for _ in range(4000)]
    t = hutchinson_trace(hvp=lambda v: [A @ v[0]], probes=probes)
    a = A.numpy()
    var = 2 * ((a**2).sum() - (np.diag(a) ** 2).sum())
    assert abs(t.value - np.trace(a)) <= 4 * t.se
    assert t.se == pytest.approx(math.sqrt(var / 4000), rel=0.1)
    # power_iteration with a precomputed first product: the same iterates as without
    z = probes[0]
    r0 = power_iteration(hvp=lambda v: [A @ v[0]], start=z, iters=9, tol=0.0)
    r1 = power_iteration(hvp=lambda v: [A @ v[0]], start=z, iters=9, tol=0.0, start_product=[A @ z[0]])
    assert r1.value == pytest.approx(r0.value, rel=1e-12) and r1.iters == r0.iters == 9


def test_expansion_parameters():
    """ε = h|λ|/(1−β)², 2μ|λ| = βε (T61) with μ of step_sizes (T30), and η(|λ|+2μλ²)
    (T62), which is one minus the factor of one real explicit-baseline step on E = λx²/2."""
    for beta, eta, lam in ((0.9, 0.1, 190.0), (0.5, 0.01, -30.0), (0.0, 0.2, 7.0)):
        s = step_sizes({"beta": beta, "lr": eta, "lr_mode": "effective"})
        p = expansion_parameters(lam=lam, h=s["h"], beta=beta)
        a = abs(lam)
        assert p["epsilon"] == pytest.approx(s["h"] * a / (1 - beta) ** 2, rel=1e-12)
        assert p["penalty_curvature"] == pytest.approx(2 * s["mu"] * a, rel=1e-12)
        assert p["penalty_curvature"] == pytest.approx(beta * p["epsilon"], rel=1e-12, abs=1e-15)
        assert p["stability"] == pytest.approx((1 - beta) * p["epsilon"] * (1 + beta * p["epsilon"]), rel=1e-12)
    # GD on E + μ‖∇E‖² at η, E = λx²/2: x ← (1 − η(λ + 2μλ²)) x, with the baseline's penalty gradient
    beta, eta, lam = 0.9, 0.01, 3.0
    s = step_sizes({"beta": beta, "lr": eta, "lr_mode": "effective"})
    x = torch.tensor([1.7], dtype=torch.float64, requires_grad=True)
    g, pg, _ = penalty_grad([lambda: 0.5 * lam * (x**2).sum()], [x], s["mu"], "double_backprop", None)
    factor = float((x - eta * (g[0] + pg[0])).detach() / x.detach())
    assert 1 - factor == pytest.approx(expansion_parameters(lam=lam, h=s["h"], beta=beta)["stability"], rel=1e-12)


def test_declared_range_uses_the_real_root_bound_and_the_penalty_threshold():
    """(T63): judged iff ε ≤ min(max_epsilon, 1/(1+√β)²) and 2μλ ≤ max_penalty_curvature;
    the bound is igrm.toy's real-root bound (T51)."""
    for beta in (0.0, 0.5, 0.9):
        b = float(real_root_bound(beta))
        assert in_declared_range(
            epsilon=b * (1 - 1e-9), penalty_curvature=0.0, beta=beta, max_epsilon=1.0, max_penalty_curvature=0.1
        )
        assert not in_declared_range(
            epsilon=b * (1 + 1e-9), penalty_curvature=0.0, beta=beta, max_epsilon=1.0, max_penalty_curvature=0.1
        )
    assert not in_declared_range(
        epsilon=0.05, penalty_curvature=0.11, beta=0.9, max_epsilon=1.0, max_penalty_curvature=0.1
    )
    assert not in_declared_range(
        epsilon=0.2, penalty_curvature=0.0, beta=0.0, max_epsilon=0.1, max_penalty_curvature=0.1
    )


def test_sharpness_epochs():
    assert sharpness_epochs(0, 10) == [] and sharpness_epochs(1, 10) == [0]
    assert sharpness_epochs(2, 10) == [0, 10] and sharpness_epochs(3, 60) == [0, 30, 60]
    assert sharpness_epochs(20, 3) == [0, 1, 2, 3]


# ---------------------------------------------------------------- along a training run
def test_measurement_leaves_the_trajectory_bit_identical():
    """Training with λ_max measured at every epoch gives bit-identical metrics and final
    state to training without measurement (own generator, BN buffers restored), for
    SGD+M and the full-batch explicit baseline; the measured values are recorded with
    their expansion parameters."""
    data = tiny_data()
    for extra in ({}, {"method": "igrm_explicit", "fullbatch_subset": 32, "augment": ["none"]}):
        on = {
            **BASE,
            **extra,
            "epochs": 3,
            "sharpness": {
                "points": 4,
                "algorithm": "lanczos",
                "iters": 4,
                "final_iters": 7,
                "tol": 1e-3,
                "subset": 24,
                "trace_probes": 3,
            },
        }
        off = {**on, "sharpness": {**on["sharpness"], "points": 0}}
        a_on, at_on = train(on, data, None, None)
        a_off, _ = train(off, data, None, None)
        assert len(a_off["sharpness/epoch"]) == 0
        for k in a_off:
            if not k.endswith("wall_time") and not k.startswith("sharpness/"):
                np.testing.assert_array_equal(a_on[k], a_off[k], err_msg=k)
        np.testing.assert_array_equal(a_on["sharpness/epoch"], [0, 1, 2, 3])
        assert np.all(np.isfinite(a_on["sharpness/lambda_max"])) and np.all(a_on["sharpness/iters"][:3] <= 4)
        assert a_on["sharpness/iters"][3] <= 7  # final_iters at the last point
        for k in ("trace", "trace_se", "grad_norm_sq"):
            assert np.all(np.isfinite(a_on[f"sharpness/{k}"])), k
        np.testing.assert_array_equal(a_on["sharpness/trace_probes"], [3] * 4)
        assert np.all(a_on["sharpness/grad_norm_sq"] > 0) and np.all(a_on["sharpness/trace_se"] >= 0)
        assert at_on["sharpness_subset"] == 24
        beta = on["beta"]
        h = a_on["sharpness/h"]
        np.testing.assert_allclose(h, at_on["h"])
        # ε from the spectral radius, both ends ((T61)); λ_min ≤ λ_max
        rad = np.maximum(np.abs(a_on["sharpness/lambda_max"]), np.abs(a_on["sharpness/lambda_min"]))
        np.testing.assert_allclose(a_on["sharpness/spectral_radius"], rad, rtol=0)
        assert np.all(a_on["sharpness/lambda_min"] <= a_on["sharpness/lambda_max"])
        np.testing.assert_allclose(a_on["sharpness/epsilon"], h * rad / (1 - beta) ** 2, rtol=1e-12)
        np.testing.assert_allclose(a_on["sharpness/penalty_curvature"], beta * a_on["sharpness/epsilon"], rtol=1e-12)


def test_measurement_at_init_is_the_hessian_of_the_first_examples():
    """The epoch-0 value is λ_max of the train-mode loss on the first ``subset`` examples
    the run trains on, unaugmented (recomputed here from the stored initial weights)."""
    from igrm.batches import normalize, seed_for, to_device_uint8, unpack_data
    from igrm.models import build_model

    data = tiny_data()
    sh = {
        "points": 1,
        "algorithm": "power",
        "iters": 20,
        "final_iters": None,
        "tol": 0.0,
        "subset": 16,
        "trace_probes": 2,
    }
    cfg = {
        **BASE,
        "method": "gdm",
        "fullbatch_subset": 32,
        "augment": ["none"],
        "epochs": 1,
        "sharpness": sh,
        "snapshot_epochs": [0],
    }
    a, _ = train(cfg, data, None, None)
    d = unpack_data(data)
    perm = torch.randperm(len(d["train/labels"]), generator=torch.Generator().manual_seed(seed_for(3, "subset")))
    idx = perm.numpy()[:16]
    net = build_model("small_cnn", 10, 3, 0.25)
    net.load_state_dict(
        {k.split("/", 2)[2]: torch.from_numpy(v) for k, v in a.items() if k.startswith("snapshots/epoch0000/")}
    )
    net.train()
    x = normalize(
        to_device_uint8(d["train/images"][idx], torch.device("cpu")), torch.tensor(d["mean"]), torch.tensor(d["std"])
    )
    y = torch.from_numpy(d["train/labels"][idx])
    # the same algorithm from the same start vector (the run's own generator, seeded per point)
    m = measure(
        loss_fns=[lambda: F.cross_entropy(net(x), y)],
        params=list(net.parameters()),
        buffers=list(net.buffers()),
        algorithm="power",
        iters=20,
        tol=0.0,
        trace_probes=2,
        generator=torch.Generator().manual_seed(seed_for(3, "sharpness/0")),
    )
    r = m.power
    # power iteration finds one end (here the bottom, negative): recorded as λ_min, λ_max unknown
    end = "lambda_max" if r.value >= 0 else "lambda_min"
    assert a[f"sharpness/{end}"][0] == pytest.approx(r.value, rel=1e-4)
    other = "lambda_min" if end == "lambda_max" else "lambda_max"
    assert np.isnan(a[f"sharpness/{other}"][0])
    assert a["sharpness/spectral_radius"][0] == pytest.approx(abs(r.value), rel=1e-4)
    key = "residual" if end == "lambda_max" else "lambda_min_residual"
    assert a[f"sharpness/{key}"][0] == pytest.approx(r.residual, rel=1e-3, abs=1e-5)
    assert a["sharpness/trace"][0] == pytest.approx(m.trace.value, rel=1e-4)
    assert a["sharpness/grad_norm_sq"][0] == pytest.approx(m.grad_norm_sq, rel=1e-4)
    assert a["sharpness/iters"][0] == 20 and not a["sharpness/converged"][0]


def test_schema_defaults_reach_the_cfg():
    cfg = train_cfg()
    assert set(cfg["sharpness"]) == {"points", "algorithm", "iters", "final_iters", "tol", "subset", "trace_probes"}


def test_rate_mismatch_against_iterating_the_methods():
    """(T63)'s δ_ex against the contraction rates measured by iterating GD+M (from its slow
    manifold) and GD at η on E + μ‖∇E‖² (igrm.regularizers.penalty_grad) on E = λx²/2;
    and the numbers docs/igrm_baseline.md quotes for the default max_penalty_curvature 0.1."""
    from igrm.validity import rate_mismatch

    lam, steps = 2.0, 40
    for beta, eps in ((0.9, 0.1), (0.5, 0.2), (0.8, 0.05)):
        h = eps * (1 - beta) ** 2 / lam
        eta = h / (1 - beta)
        mu = beta * eta / (2 * (1 - beta))
        m = rate_mismatch(beta=beta, epsilon=eps)
        # GD+M, x_{-1} = x_0 / r₊ (on the slow manifold): x_k = r₊^k x_0
        x_prev, x = 1.0 / m["slow_root"], 1.0
        for _ in range(steps):
            x, x_prev = x - h * lam * x + beta * (x - x_prev), x
        rate_gdm = -math.log(x) / steps
        t = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
        for _ in range(steps):
            g, pg, _ = penalty_grad([lambda: 0.5 * lam * (t**2).sum()], [t], mu, "double_backprop", None)
            with torch.no_grad():
                t -= eta * (g[0] + pg[0])
        rate_ex = -math.log(float(t.detach())) / steps
        assert m["explicit"] == pytest.approx(rate_ex / rate_gdm - 1, rel=1e-8, abs=1e-12)
        assert m["gd"] == pytest.approx(math.log(1 - eta * lam) / -rate_gdm - 1, rel=1e-10)
    assert math.isnan(rate_mismatch(beta=0.9, epsilon=0.3)["explicit"])  # above 1/(1+√0.9)² = 0.263
    # docs/igrm_baseline.md, "Range of validity": at 2μλ = βε = 0.1, β ∈ [0.5, 0.99]
    betas = np.linspace(0.5, 0.99, 50)
    d = [rate_mismatch(beta=b, epsilon=0.1 / b) for b in betas]
    assert max(abs(x["explicit"]) for x in d) <= 0.046
    assert abs(rate_mismatch(beta=0.9, epsilon=0.1 / 0.9)["explicit"]) <= 0.026
    assert 0.11 <= min(abs(x["gd"]) for x in d) and max(abs(x["gd"]) for x in d) <= 0.14
    assert max((1 - b) * (0.1 / b) * (1 + 0.1) for b in betas) <= 0.11 + 1e-12  # stability (T62)


def test_lanczos_matches_the_exact_extreme_eigenvalue_in_fewer_products():
    """Lanczos (docs/theory.md (T66)) on the BN network's exact Hessian (three chunks): the
    Ritz value of largest magnitude equals the exact eigenvalue of largest magnitude, sign
    included; its reported residual is ‖Hy − θy‖/|θ| ≥ the distance to the spectrum;
    every iterate is a lower bound of the spectral radius; it needs fewer products than
    power iteration for the same residual; and on a planted map it keeps a dominant
    negative eigenvalue's sign."""
    from igrm.sharpness import lanczos

    net = _bn_net(seed=7)
    x, y = _data(seed=8)
    chunks = list(zip(torch.split(x, 8), torch.split(y, 8)))
    eigs = _exact_eigs(net, chunks)
    top = eigs[np.argmax(np.abs(eigs))]
    rho = np.abs(eigs).max()
    kw = dict(loss_fns=_fns(net, chunks), params=list(net.parameters()), buffers=list(net.buffers()), trace_probes=0)
    ml = measure(**kw, algorithm="lanczos", iters=200, tol=1e-9, generator=torch.Generator().manual_seed(4))
    mp = measure(**kw, algorithm="power", iters=2000, tol=1e-9, generator=torch.Generator().manual_seed(4))
    assert ml.power.converged and ml.power.value == pytest.approx(top, rel=1e-8)
    assert mp.power.converged and ml.power.iters < mp.power.iters
    for k in (1, 2, 3, 5, 8):
        r = measure(**kw, algorithm="lanczos", iters=k, tol=0.0, generator=torch.Generator().manual_seed(4)).power
        assert abs(r.value) <= rho * (1 + 1e-12) and r.iters == k
        # some eigenvalue within residual·|θ| of θ
        assert np.abs(eigs - r.value).min() <= r.residual * abs(r.value) * (1 + 1e-9) + 1e-12
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    A = torch.tensor(Q @ np.diag([-5.0, 3.0, 1.0, -0.5, 0.2, 4.9]) @ Q.T)
    r = lanczos(hvp=lambda v: [A @ v[0]], start=[torch.ones(6, dtype=torch.float64)], iters=6, tol=1e-10)
    # exact after n = 6 products: both ends, signs kept
    assert r.converged and r.top.value == pytest.approx(4.9, rel=1e-10) and r.bottom.value == pytest.approx(-5.0)


def test_lanczos_both_ends_against_the_explicit_hessian_with_close_ends():
    """Lanczos's two ends (docs/theory.md (T60), (T66)) on a BN network in train mode whose
        spectrum has ends of nearly equal magnitude: the loss plus c‖θ‖²/2 with c chosen from
        the exact Hessian so that |λ_min| = 1.02·λ_max (a shift of the whole spectrum by c: the
    bottom is the dominant end, which the old largest-magnitude value reported as "λ_max").
        Against numpy's eigvalsh of the exact Hessian: top → λ_max and bottom → λ_min, signs
        kept, each within its residual·ρ̂ of an eigenvalue; the radius is max(|λ_max|, |λ_min|).
        Power iteration with the same few products cannot tell the ends apart (its residual
        stays large), and it reports only one end."""
    from igrm.sharpness import lanczos

    net = _bn_net(seed=11)
    x, y = _data(seed=12)
    chunks = list(zip(torch.split(x, 8), torch.split(y, 8)))
    eigs = np.linalg.eigvalsh(_exact_hessian(net, chunks))
    lo, hi = eigs[0], eigs[-1]
    # shift c: −(lo + c) = 1.02·(hi + c)  →  c = −(lo + 1.02 hi)/2.02
    c = -(lo + 1.02 * hi) / 2.02
    top, bottom = hi + c, lo + c
    assert bottom == pytest.approx(-1.02 * top) and top > 0 > bottom
    params = list(net.parameters())
    fns = _fns(net, chunks) + [lambda: 0.5 * c * sum((p**2).sum() for p in params)]
    kw = dict(loss_fns=fns, params=params, buffers=list(net.buffers()), trace_probes=0)
    m = measure(**kw, algorithm="lanczos", iters=80, tol=1e-10, generator=torch.Generator().manual_seed(3))
    e = m.ends
    assert e.converged and e.top.converged and e.bottom.converged
    assert e.top.value == pytest.approx(top, rel=1e-8) and e.bottom.value == pytest.approx(bottom, rel=1e-8)
    assert e.radius == pytest.approx(abs(bottom), rel=1e-8) and m.power is e.bottom
    shifted = eigs + c
    for k in (2, 4, 6, 10):
        ek = measure(**kw, algorithm="lanczos", iters=k, tol=0.0, generator=torch.Generator().manual_seed(3)).ends
        # Ritz values inside the spectrum; each end within residual·ρ̂ of an eigenvalue
        assert bottom - 1e-12 <= ek.bottom.value <= ek.top.value <= top + 1e-12
        for r in (ek.top, ek.bottom):
            assert np.abs(shifted - r.value).min() <= r.residual * ek.radius * (1 + 1e-9) + 1e-12
    # a direct call on a planted map: the same ends
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    A = torch.tensor(Q @ np.diag([-3.06, -1.0, 0.0, 0.5, 1.0, 2.0, 2.9, 3.0]) @ Q.T)
    r = lanczos(hvp=lambda v: [A @ v[0]], start=[torch.ones(8, dtype=torch.float64)], iters=8, tol=1e-10)
    assert r.top.value == pytest.approx(3.0) and r.bottom.value == pytest.approx(-3.06)
    # power iteration: one end only, and with close ends slow (residual far above Lanczos's)
    mp = measure(**kw, algorithm="power", iters=10, tol=0.0, generator=torch.Generator().manual_seed(3))
    assert math.isnan(mp.ends.bottom.value if mp.power.value > 0 else mp.ends.top.value)
    ml = measure(**kw, algorithm="lanczos", iters=10, tol=0.0, generator=torch.Generator().manual_seed(3))
    assert mp.power.residual > 10 * max(ml.ends.top.residual, ml.ends.bottom.residual)
