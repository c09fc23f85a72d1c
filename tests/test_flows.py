"""Modified flows, starts and the SGD+M flow pieces (igrm/flows.py, docs/modified_flows.md)."""

import numpy as np
import pytest
from scipy.linalg import expm

from igrm import flows as F
from igrm.problems import LeastSquares, TwoFactor


def _flow2(p, x0, beta, h, t):
    """Flow (2) from one start x0, at the times t (DOP853, rtol = atol = 1e-12)."""
    return F.solve_lanes(p, x0[None], beta, [F.flow2_lambda(beta, h)], t, rtol=1e-12, atol=1e-12, squeeze=True)


@pytest.fixture(scope="module")
def lstsq():
    return LeastSquares.random(dim=5, n=20, cond=10, seed=0)


@pytest.mark.parametrize("which", [1, 2])
@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_reference_ode_matches_matrix_exponential(lstsq, which, beta):
    # flow (1): x' = −H(x − x*)/(1−β); flow (2): ∇(E + λ‖∇E‖²) = (H + 2λH²)(x − x*)
    h = 1e-2
    x0 = np.random.default_rng(1).standard_normal(5)
    xs = lstsq.minimiser
    lam = F.flow2_lambda(beta, h) if which == 2 else 0.0
    Hm = lstsq.H + 2.0 * lam * lstsq.H @ lstsq.H
    t = np.linspace(0.0, 2.0, 9)
    exact = np.stack([xs + expm(-ti * Hm / (1 - beta)) @ (x0 - xs) for ti in t])
    ode = F.solve_lanes(lstsq, x0[None], beta, [lam], t, rtol=1e-12, atol=1e-12, squeeze=True)
    assert np.max(np.abs(ode - exact)) <= 1e-9
    dense = F.solve_lanes(lstsq, x0[None], beta, [lam], t, dense_output=True, squeeze=True)
    assert np.max(np.abs(dense(t) - exact)) <= 1e-9
    # the field-driven solver (toy and limit studies) agrees: x' = −speed · ∇(E + λ‖∇E‖²)
    field = F.solve_flow(
        lambda w: -(1 - beta) * F.flow_field(lstsq, w, beta, lam),
        x0[None],
        2.0,
        speed=1 / (1 - beta),
        t_eval=t,
        rtol=1e-12,
        atol=1e-12,
        method="DOP853",
    )
    assert np.max(np.abs(field["w_eval"][:, 0] - exact)) <= 1e-9


def test_flow_fields_formulas():
    p = TwoFactor()
    x = np.array([[2.8, 3.4], [0.3, -1.2]])
    beta, h = 0.8, 1e-3
    lam = (1 + beta) * h / (4 * (1 - beta) ** 2)
    assert F.flow2_lambda(beta, h) == pytest.approx(lam)
    np.testing.assert_allclose(F.flow1_field(p, x, beta), -p.grad(x) / (1 - beta))
    Hg = np.einsum("...ij,...j->...i", p.hess(x), p.grad(x))
    np.testing.assert_allclose(F.flow2_field(p, x, beta, h), -(p.grad(x) + 2 * lam * Hg) / (1 - beta))


def test_heavy_ball_lanes_match_plain_loop():
    p = TwoFactor()
    x0 = np.array([2.8, 3.4])
    h = np.array([1e-3, 2e-3])
    n = np.array([7, 4])
    X = F.heavy_ball(p, np.tile(x0, (2, 1)), np.tile(x0, (2, 1)), 0.9, h, n)
    assert X.shape == (8, 2, 2)
    for lane in range(2):
        x, xp = x0.copy(), x0.copy()
        for k in range(n[lane]):
            x, xp = x - h[lane] * p.grad(x) + 0.9 * (x - xp), x
            np.testing.assert_allclose(X[k + 1, lane], x, rtol=1e-14)
    assert np.all(np.isnan(X[5:, 1]))


@pytest.mark.parametrize("beta", [0.5, 0.8])
def test_rest_offset_matches_measured_lag(beta):
    # after K steps (β^K negligible, t_K = K h = O(h)) the from-rest lag behind the flow
    # from x0 equals h β/(1−β)² ∇E(x0) up to O(h²)  (eq. M4); the O(h²) remainder is the
    # transport of the offset over t_K, relative size ~ K h L/(1−β), so h ≪ (1−β)/(K L)
    p = TwoFactor()
    x0 = np.array([1.2, 1.6])
    K = int(np.ceil(np.log(1e-12) / np.log(beta)))
    res, off_norm = [], []
    for h in (1e-5, 5e-6):
        X = F.heavy_ball(p, x0[None], x0[None], beta, h, K)
        ref = _flow2(p, x0, beta, h, [K * h])[-1]
        lag = X[K, 0] - ref
        off = F.rest_offset(p, x0, beta, h)
        res.append(np.linalg.norm(lag - off))
        off_norm.append(np.linalg.norm(off))
    assert res[0] / off_norm[0] < 0.05
    assert 3.0 < res[0] / res[1] < 5.0  # O(h²)


def test_slow_manifold_prev_orders():
    p = TwoFactor()
    x0 = np.array([2.8, 3.4])
    beta, h = 0.9, 1e-4
    g = p.grad(x0)
    np.testing.assert_allclose(F.slow_manifold_prev(p, x0, beta, h), x0 + h * g / (1 - beta))
    np.testing.assert_allclose(
        F.slow_manifold_prev(p, x0, beta, h, order=2), x0 + h * g / (1 - beta) + h * h * p.hvp(x0, g) / (1 - beta) ** 3
    )
    hs = np.array([1e-4, 2e-4])
    assert F.slow_manifold_prev(p, x0, beta, hs).shape == (2, 2)
    assert F.rest_offset(p, x0, beta, hs).shape == (2, 2)


# ------------------------------------------------------------------ SGD+M


def _brute_coefficients(xs, ys, beta):
    S, N = xs.shape
    C = np.zeros((S, N))
    B = np.zeros((S, N))
    P = np.zeros((S, N))
    Q = np.zeros((S, N))
    R = np.zeros((S, N))
    for k in range(N):
        w = beta ** (k - np.arange(k + 1))
        C[:, k] = (w * xs[:, : k + 1] ** 2).sum(1)
        B[:, k] = (w * xs[:, : k + 1] * ys[:, : k + 1]).sum(1)
    for k in range(N):
        w = beta ** (k - np.arange(k))
        P[:, k] = (w * C[:, :k] ** 2).sum(1)
        Q[:, k] = (w * C[:, :k] * B[:, :k]).sum(1)
        R[:, k] = (w * B[:, :k] ** 2).sum(1)
    return C, B, P, Q, R


def test_sgdm_coefficient_recursions_match_brute_force():
    rng = np.random.default_rng(3)
    beta = 0.7
    xs, ys = F.two_factor_stream(rng, 3, 25)
    co = F.sgdm_coefficients(xs, ys, beta)
    for name, ref in zip("CBPQR", _brute_coefficients(xs, ys, beta)):
        np.testing.assert_allclose(co[name], ref, rtol=1e-12, atol=1e-12)
    # the history sum in closed form (M10) equals Σ_{r<k} β^{k−r} ‖∇G_r(w)‖² by brute force
    w = np.array([0.7, -1.3])
    u, s = w[0] * w[1], w @ w
    for k in (0, 1, 9, 24):
        brute = sum(
            beta ** (k - r) * np.sum(((co["C"][0, r] * u - co["B"][0, r]) * np.array([w[1], w[0]])) ** 2)
            for r in range(k)
        )
        closed = s * (co["P"][0, k] * u * u - 2 * co["Q"][0, k] * u + co["R"][0, k])
        assert closed == pytest.approx(brute, rel=1e-12, abs=1e-14)


def test_sgdm_force_matches_autograd_and_finite_differences():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    beta, h, k = 0.8, 0.05, 6
    xs, ys = F.two_factor_stream(rng, 1, k + 1)
    co = F.sgdm_coefficients(xs, ys, beta)
    ck = {n: co[n][0, k] for n in "ABCPQR"}

    def potential_brute(wt):
        # F_k from its definition (docs/theory.md (T19)), gradients of G_r by autograd
        def G(r):
            return sum(beta ** (r - q) * 0.5 * (ys[0, q] - wt[0] * wt[1] * xs[0, q]) ** 2 for q in range(r + 1))

        def gn2(r):
            (g,) = torch.autograd.grad(G(r), wt, create_graph=True)
            return (g * g).sum()

        return G(k) + 0.25 * h * (gn2(k) + 2 * sum(beta ** (k - r) * gn2(r) for r in range(k)))

    for w in ([0.7, -1.3], [2.8, 3.4], [-0.4, 0.2]):
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        Fv = potential_brute(wt)
        (grad,) = torch.autograd.grad(Fv, wt)
        w = np.array(w)
        assert F.sgdm_potential(w, ck, h) == pytest.approx(Fv.item(), rel=1e-12)
        force = F.sgdm_force(w, ck["B"], ck["C"], ck["P"], ck["Q"], ck["R"], h)
        np.testing.assert_allclose(force, -grad.numpy(), rtol=1e-11, atol=1e-12)
        # central finite differences of the closed-form potential
        e = 1e-6
        fd = np.array(
            [(F.sgdm_potential(w + e * d, ck, h) - F.sgdm_potential(w - e * d, ck, h)) / (2 * e) for d in np.eye(2)]
        )
        np.testing.assert_allclose(force, -fd, rtol=1e-7, atol=1e-7)
        # without the h/4 terms the force is −∇G_k
        force0 = F.sgdm_force(w, ck["B"], ck["C"], ck["P"], ck["Q"], ck["R"], h, regularise=False)
        np.testing.assert_allclose(force0, -(ck["C"] * w[0] * w[1] - ck["B"]) * w[::-1])


def test_stationary_coefficients_give_flow2():
    # eq. M12: for a constant stream the k → ∞ SGD+M flow is flow (2), its G-part flow (1)
    p = TwoFactor()
    beta, h = 0.9, 1e-3
    co = F.sgdm_stationary_coefficients(1.0, 0.6, beta)
    w = np.array([[2.8, 3.4], [0.3, -1.1]])
    args = [co[n] for n in "BCPQR"]
    np.testing.assert_allclose(F.sgdm_force(w, *args, h), F.flow2_field(p, w, beta, h), rtol=1e-12)
    np.testing.assert_allclose(F.sgdm_force(w, *args, h, regularise=False), F.flow1_field(p, w, beta), rtol=1e-12)
    # and the running coefficients converge to them
    run = F.sgdm_coefficients(np.ones((1, 400)), 0.6 * np.ones((1, 400)), beta)
    for n in "BCPQR":
        assert run[n][0, -1] == pytest.approx(co[n], rel=1e-12)


def test_compiled_kernel_matches_numpy_reference():
    rng = np.random.default_rng(5)
    beta = 0.9
    x0 = np.array([2.8, 3.4])
    h = np.array([1e-4, 3e-4])
    n = np.array([300, 100])
    xs, ys = F.two_factor_stream(rng, 3, 300)
    out = F.sgdm_max_errors(x0, xs, ys, beta, h, n, substeps=1)
    co = F.sgdm_coefficients(xs, ys, beta)
    Xd = F.heavy_ball_two_factor_stream(x0, xs, ys, beta, h, n)
    for reg, key in ((True, "full"), (False, "noreg")):
        Xf = F.integrate_sgdm_flow(x0, co, h, n, substeps=1, regularise=reg)
        Xf2 = F.integrate_sgdm_flow(x0, co, h, n, substeps=2, regularise=reg)
        e = np.nanmax(np.linalg.norm(Xd - Xf, axis=-1), axis=0)
        chk = np.nanmax(np.linalg.norm(Xf2 - Xf, axis=-1), axis=0)
        np.testing.assert_allclose(out[key], e, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(out[key + "_check"], chk, rtol=1e-6, atol=1e-15)
    # the discrete stream loop is heavy ball with ∇E_k
    for j in range(2):
        for s in range(3):
            x, xp = x0.copy(), x0.copy()
            for k in range(n[j]):
                p = TwoFactor(x=xs[s, k], y=ys[s, k])
                x, xp = x - h[j] * p.grad(x) + beta * (x - xp), x
            np.testing.assert_allclose(Xd[n[j], j, s], x, rtol=1e-12)


def test_kernel_stationary_lane_matches_scipy_flow2():
    p = TwoFactor()
    beta, h, n = 0.8, 2e-4, 400
    x0 = np.array([2.8, 3.4])
    xs = np.ones((1, n))
    ys = 0.6 * np.ones((1, n))
    out = F.sgdm_max_errors(x0, xs, ys, beta, [h], [n], stationary=[True])
    X = F.heavy_ball(p, x0[None], x0[None], beta, h, n)[:, 0]
    ref = _flow2(p, x0, beta, h, np.arange(n + 1) * h)
    assert out["full"][0, 0] == pytest.approx(np.max(np.linalg.norm(X - ref, axis=-1)), rel=1e-6)
