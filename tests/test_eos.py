"""igrm.eos and igrm.flatness: the stability threshold and EoS ratio against heavy ball on
quadratics (characteristic roots and iteration), the edge summary on planted series, the
study's records against an explicit Hessian, and the matched-loss interpolation on planted
curves (docs/mechanism.md (S1)–(S7))."""

import math

import numpy as np
import pytest
import torch

from igrm.eos import edge_summary, eos_ratio, eos_study, stability_threshold, step_size
from igrm.flatness import at_levels, common_levels


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_eos_ratio_is_exact_on_a_quadratic(beta):
    """On E = λx²/2 heavy ball x_{k+1} = x_k − hλx_k + β(x_k − x_{k−1}) is stable iff its
    characteristic roots lie inside the unit circle; (S1)'s threshold 2(1+β)/h is exactly
    where the largest root's modulus crosses 1, and the iterates decay at ratio 0.99 and
    grow at 1.01 ((S2))."""
    h = 0.05
    thr = stability_threshold(beta=beta, h=h)
    assert thr == pytest.approx(2 * (1 + beta) / h)
    for ratio, stable in ((0.99, True), (1.01, False)):
        lam = ratio * thr
        assert eos_ratio(lam=lam, beta=beta, h=h) == pytest.approx(ratio)
        roots = np.roots([1.0, -(1 + beta - h * lam), beta])
        assert (np.abs(roots).max() < 1) == stable
        x_prev, x = 1.0, 1.0
        for _ in range(20000):
            x, x_prev = x - h * lam * x + beta * (x - x_prev), x
        assert (abs(x) < 1e-3) == stable, (beta, ratio, x)
    # at the threshold itself a root sits on the unit circle (−1)
    roots = np.roots([1.0, -(1 + beta - h * thr), beta])
    assert np.abs(roots).max() == pytest.approx(1.0, abs=1e-9)


def test_edge_summary_on_planted_series():
    """Reached only when a record before the final window is within the margin of 1; the
    window is the last fraction of the records, with its mean, minimum and maximum."""
    rise = np.linspace(0.2, 1.0, 30)
    hover = 1.0 + 0.03 * np.sin(np.arange(10))
    s = edge_summary(ratio=np.r_[rise, hover], window=0.25, margin=0.1)
    assert s["reached"] and s["n"] == 10
    assert s["mean"] == pytest.approx(hover.mean()) and s["lo"] == pytest.approx(hover.min())
    below = edge_summary(ratio=np.linspace(0.1, 0.6, 40), window=0.25, margin=0.1)
    assert not below["reached"] and below["hi"] == pytest.approx(0.6)
    # reaching the edge only inside the window does not count as being there before it
    late = edge_summary(ratio=np.r_[np.full(30, 0.5), np.full(10, 1.0)], window=0.25, margin=0.1)
    assert not late["reached"]
    assert math.isnan(edge_summary(ratio=[1.0, 1.0], window=0.25, margin=0.1)["mean"])


def test_step_size_modes():
    assert step_size(lr=0.3, lr_mode="effective", beta=0.9) == pytest.approx(0.03)
    assert step_size(lr=0.3, lr_mode="raw", beta=0.9) == 0.3
    with pytest.raises(ValueError, match="lr_mode"):
        step_size(lr=0.3, lr_mode="eff", beta=0.9)


def test_eos_study_records_the_top_eigenvalue_of_the_explicit_hessian():
    """A tiny study (random images): shapes; the first record's λ_max is the algebraic top
    of the exact Hessian of the squared loss (autograd.functional.hessian, eigvalsh), its
    loss and ‖∇E‖² those of the initialisation; h per β from the setting's mode."""
    from igrm.eos import _mse
    from igrm.explicit_study import MLP, pooled_features

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(40, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 3, size=40)
    kw = dict(
        dataset=None,
        n_train=24,
        pool_side=2,
        width=5,
        steps=6,
        record_every=3,
        lanczos_tol=1e-10,
        trace_probes=2,
        threads=1,
    )
    settings = [{"lr": 0.2, "lr_mode": "effective"}]
    arrays, attrs = eos_study(
        train_images=imgs, train_labels=labels, settings=settings, betas=[0.0, 0.5], seeds=[3], **kw
    )
    tag = attrs["settings"][0]["tag"]
    assert arrays[f"{tag}/lambda_max"].shape == (2, 1, 3)
    np.testing.assert_allclose(arrays[f"{tag}/h"], [0.2, 0.1])
    idx = np.sort(np.random.default_rng(3).choice(40, size=24, replace=False))
    f = pooled_features(images=imgs[idx], pool_side=2)
    x = torch.from_numpy((f - f.mean(0)) / (f.std(0) + 1e-12))
    y1 = torch.nn.functional.one_hot(torch.as_tensor(labels[idx]).long(), 3).double()
    model = MLP(4, 5, 3)
    theta = model.init(torch.Generator().manual_seed(3))
    H = torch.autograd.functional.hessian(lambda t: _mse(model, t, x, y1), theta).numpy()
    eig = np.linalg.eigvalsh(H)
    assert arrays[f"{tag}/lambda_max"][0, 0, 0] == pytest.approx(eig[-1], rel=1e-8)
    assert arrays[f"{tag}/loss"][0, 0, 0] == pytest.approx(float(_mse(model, theta, x, y1)), rel=1e-12)
    assert np.all(arrays[f"{tag}/lambda_residual"][:, :, 0] < 1e-6)


def test_matched_loss_interpolation_on_planted_curves():
    """Runs whose loss falls at different speeds but whose value is the same function of
    the loss: at common levels the interpolated values agree (exactly for a value linear in
    the loss, to the interpolation error for a curved one), while at equal step they do
    not; levels lie where every run starts above and reaches (S6); the bracket ratio is
    the loss ratio of the two records around the crossing (S7)."""
    k = np.arange(0, 41, dtype=float)
    losses = [2.0 * np.exp(-r * k) + 0.1 for r in (0.05, 0.1, 0.2)]
    levels = common_levels(losses=losses, n_levels=5)
    hi, lo = min(x[0] for x in losses), max(x.min() for x in losses)
    assert len(levels) == 5 and np.all((levels < hi) & (levels > lo)) and np.all(np.diff(levels) < 0)
    lin = [at_levels(loss=x, values={"v": 3.0 + 2.0 * x}, levels=levels) for x in losses]
    for r in lin:
        np.testing.assert_allclose(r["v"], 3.0 + 2.0 * levels, rtol=1e-12)
    curved = [at_levels(loss=x, values={"v": np.log(x)}, levels=levels) for x in losses]
    for r, x in zip(curved, losses):
        # linear interpolation of a concave function lies below it, by less than the
        # function's change over the bracket
        assert np.all(r["v"] <= np.log(levels) + 1e-12)
        assert np.all(np.log(levels) - r["v"] <= np.log(r["bracket"]))
        i = np.array([np.flatnonzero(x <= lv)[0] for lv in levels])
        np.testing.assert_allclose(r["bracket"], x[i - 1] / x[i])
    # at equal step the same runs disagree (the confound the matching removes)
    assert abs(losses[0][10] - losses[2][10]) > 0.5
    # a run that never reaches below another's start: no common level
    assert common_levels(losses=[np.array([1.0, 0.9]), np.array([0.5, 0.4])], n_levels=3).size == 0
    r = at_levels(loss=np.array([1.0, 0.5]), values={"v": np.array([1.0, 2.0])}, levels=[0.1])
    assert math.isnan(r["v"][0]) and math.isnan(r["bracket"][0])


def _planted_table(ratio_fn, loss_fn, betas=(0.0, 0.5), seeds=(0, 1, 2), h=0.1, records=41):
    import pandas as pd

    rows = []
    for b in betas:
        for s in seeds:
            k = np.arange(records)
            r = ratio_fn(b, s, k)
            lam = r * 2 * (1 + b) / h
            loss = loss_fn(b, s, k)
            rows.append(
                pd.DataFrame(
                    {
                        "setting": "raw_lr0.1",
                        "beta": b,
                        "h": h,
                        "seed": s,
                        "step": k * 10,
                        "loss": loss,
                        "lambda_max": lam,
                        "trace": 10 * lam,
                        "grad_norm_sq": loss,
                        "diverged": False,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


CLAIM_KW = dict(
    ci=0.95,
    min_seeds=3,
    max_epsilon=1.0,
    edge_margin=0.1,
    edge_window=0.25,
    n_levels=3,
    max_bracket_ratio=1.25,
    converged_fraction=0.05,
)


def test_eos_claims_on_planted_runs():
    """(S3): runs that rise to r = 1 and hover reproduce; runs that overshoot to r = 1.3
    do not; runs that never reach the edge are out of range; flow (2)'s row is out of range
    at the edge (ε ≥ 2); (S7)/(S8): matched-loss rows judged where the brackets are narrow,
    final rows out of range when the runs have not converged."""
    from igrm.claims.eos import eos_claims

    hover = lambda b, s, k: np.minimum(1.0, 0.3 + 0.05 * k) + 0.01 * np.sin(k + s)  # noqa: E731
    slow_loss = lambda b, s, k: 1.0 * np.exp(-0.02 * k) + 0.01 * s  # noqa: E731
    t = eos_claims(table=_planted_table(hover, slow_loss), **CLAIM_KW)
    at = t[t["id"].str.startswith("eos/at_edge/")]
    assert list(at["verdict"]) == ["reproduces", "reproduces"]
    assert at["measured"].to_numpy() == pytest.approx([1.0, 1.0], abs=0.02)
    f2 = t[t["id"].str.startswith("eos/flow2/")]
    assert (f2["verdict"] == "out of range").all() and f2["id"].str.endswith("/out_of_range").all()
    final = t[t["id"].str.startswith("eos/final/")]
    assert (final["verdict"] == "out of range").all()  # loss falls to 0.45 of its start: not converged
    ml = t[t["id"].str.startswith("eos/matched_loss/")]
    assert len(ml) == 9 and not (ml["verdict"] == "out of range").any()  # brackets exp(0.02) ≈ 1.02
    over = lambda b, s, k: np.minimum(1.3, 0.3 + 0.05 * k)  # noqa: E731
    t2 = eos_claims(table=_planted_table(over, slow_loss), **CLAIM_KW)
    assert (t2[t2["id"].str.startswith("eos/at_edge/")]["verdict"] == "does not reproduce").all()
    low = lambda b, s, k: 0.2 + 0.005 * k  # noqa: E731
    fast = lambda b, s, k: np.exp(-0.5 * k) + 1e-3  # noqa: E731  (converged; brackets e^0.5 > 1.25)
    t3 = eos_claims(table=_planted_table(low, fast), **CLAIM_KW)
    assert t3[t3["id"].str.startswith("eos/at_edge/")]["id"].str.endswith("/out_of_range").all()
    assert not (t3[t3["id"].str.startswith("eos/final/")]["verdict"] == "out of range").any()
    assert (t3[t3["id"].str.startswith("eos/matched_loss/")]["verdict"] == "out of range").all()
