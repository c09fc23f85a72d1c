"""The explicit IGR-M baseline inside its range of validity (docs/igrm_baseline.md, "Inside
its range: the tracking study"; docs/theory.md (T70)–(T75)).

In one process, full batch, float64, a small BatchNorm-free tanh MLP on pooled grey-scale
images (a few hundred examples of the prepared dataset): GD+M at (β, h = η(1−β)) started on
its slow manifold ((T15), order 2), and plain GD at η on Ẽ = E + μ‖∇E‖² ((T29)) for every
μ = f·μ* of ``mu_fractions`` (μ* = βη/(2(1−β)), (T30); f = 0 is plain GD). Every run records,
every ``record_every`` steps, its parameters, test logits, train loss, test accuracy and
λ_max of the training-loss Hessian (Lanczos on exact Hessian-vector products, (T60)); the
distances to the GD+M run at matched times ((T70)), their time averages ((T71)), the
comparison at equal train loss ((T73)) and the range monitor ((T75)) are computed from
these records (:func:`trajectory_distances`, :func:`time_average`, :func:`at_loss_level`,
:func:`range_monitor`), so each can be tested on planted runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .validity import epsilon_bound


# ---------------------------------------------------------------- metrics on records (no torch)
def matched_steps(*, steps: int, record_every: int, h: float, beta: float, eta: float) -> dict[str, np.ndarray]:
    """The record grid and its time matching (docs/theory.md (T70)): GD+M step k sits at
    s = k h/(1−β) (time of a GD-at-η run, (T8)); the explicit run at η is at s = j η. Equal
    s means j = k h/((1−β) η), which is k exactly when h = η(1−β) ((T1)). Both runs record at
    the same step numbers, so the records meet in time only if j = k: raises otherwise (an h
    that is not η(1−β)). Returns the GD+M steps ``k``, the explicit steps ``j`` at the same s,
    and ``s``."""
    if steps < 1 or record_every < 1 or steps % record_every:
        raise ValueError(f"steps ({steps}) must be a positive multiple of record_every ({record_every})")
    k = np.arange(0, steps + 1, record_every)
    s = k * float(h) / (1.0 - float(beta))
    j = s / float(eta)
    if not np.allclose(j, k, rtol=0, atol=1e-9 * max(1, steps)):
        raise ValueError(
            f"GD+M steps at h={h:g}, beta={beta:g} and explicit steps at eta={eta:g} do not "
            "meet at equal time s (need h = eta (1 - beta), docs/theory.md (T1), (T70))"
        )
    return {"k": k, "j": np.round(j).astype(int), "s": s}


def trajectory_distances(
    *, params: np.ndarray, reference_params: np.ndarray, logits: np.ndarray, reference_logits: np.ndarray
) -> dict[str, np.ndarray]:
    """Distance of one run to the reference (GD+M) run at every matched record (docs/theory.md
    (T70)): ``param`` = ‖θ_r − θ_ref,r‖ (Euclidean, all parameters), ``function`` = RMS over
    test examples and classes of the logit difference, √(mean (f_r − f_ref,r)²).
    ``params``: (R, P); ``logits``: (R, N, C), records already matched in time."""
    p, q = np.asarray(params, float), np.asarray(reference_params, float)
    a, b = np.asarray(logits, float), np.asarray(reference_logits, float)
    if p.shape != q.shape or a.shape != b.shape or p.shape[0] != a.shape[0]:
        raise ValueError(f"shapes differ: params {p.shape} vs {q.shape}, logits {a.shape} vs {b.shape}")
    return {
        "param": np.linalg.norm(p - q, axis=1),
        "function": np.sqrt(((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)),
    }


def time_average(*, s: np.ndarray, values: np.ndarray) -> float:
    """(1/S) ∫_0^S d(s) ds by the trapezoid rule on the record grid (docs/theory.md (T71)),
    S = s[-1] − s[0]: the distance averaged along the whole run."""
    s, v = np.asarray(s, float), np.asarray(values, float)
    if s.size < 2 or s[-1] <= s[0]:
        raise ValueError("time_average needs >= 2 records over a positive time span")
    return float(np.sum((v[1:] + v[:-1]) * np.diff(s)) / 2 / (s[-1] - s[0]))


def at_loss_level(*, s: np.ndarray, loss: np.ndarray, level: float, values: dict[str, np.ndarray]) -> dict:
    """The first time a run's train loss falls to ``level`` and the ``values`` there, linearly
    interpolated between the two records around the crossing (docs/theory.md (T73)). NaN
    (and ``s`` NaN) if the loss never reaches the level."""
    s, loss = np.asarray(s, float), np.asarray(loss, float)
    below = np.flatnonzero(loss <= level)
    if not below.size:
        return {"s": math.nan, **{k: math.nan for k in values}}
    i = int(below[0])
    if i == 0:
        return {"s": float(s[0]), **{k: float(np.asarray(v, float)[0]) for k, v in values.items()}}
    w = (loss[i - 1] - level) / (loss[i - 1] - loss[i])
    out = {"s": float(s[i - 1] + w * (s[i] - s[i - 1]))}
    for k, v in values.items():
        v = np.asarray(v, float)
        out[k] = float(v[i - 1] + w * (v[i] - v[i - 1]))
    return out


def range_monitor(
    *, lam: np.ndarray, beta: float, eta: float, mu: float, max_epsilon: float, max_penalty_curvature: float
) -> dict[str, np.ndarray | bool]:
    """Expansion parameters of one run at every record (docs/theory.md (T75), (T61)):
    ε = η|λ_max|/(1−β) (GD+M's, at the run's own λ_max) and 2μ|λ_max| (the run's own μ);
    ``in_range`` iff at every record ε ≤ min(max_epsilon, 1/(1+√β)²) and 2μ|λ| ≤
    max_penalty_curvature ((T63))."""
    a = np.abs(np.asarray(lam, float))
    eps = float(eta) * a / (1.0 - float(beta))
    pen = 2.0 * float(mu) * a
    ok = bool(
        np.all(np.isfinite(a))
        and np.all(eps <= epsilon_bound(beta=beta, max_epsilon=max_epsilon))
        and np.all(pen <= float(max_penalty_curvature))
    )
    return {"epsilon": eps, "penalty_curvature": pen, "in_range": ok}


def seed_slope(*, x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of one seed's values y on the levels x (docs/theory.md (T72), used in (T74))."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    xc = x - x.mean()
    return float(xc @ (y - y.mean()) / (xc @ xc))


# ---------------------------------------------------------------- the runs (torch)
def pooled_features(*, images: np.ndarray, pool_side: int) -> np.ndarray:
    """uint8 (N, H, W, C) -> float64 (N, pool_side²): channel mean in [0, 1], average-pooled to
    pool_side × pool_side (adaptive pooling), flattened."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.asarray(images, dtype=np.float64) / 255.0).mean(dim=-1)  # (N, H, W)
    x = F.adaptive_avg_pool2d(x[:, None], (int(pool_side), int(pool_side)))
    return x.flatten(1).numpy()


class _MLP:
    """One-hidden-layer tanh MLP on a flat float64 parameter vector θ = (W1, b1, W2, b2)."""

    def __init__(self, d_in: int, width: int, n_classes: int):
        self.shapes = [(width, d_in), (width,), (n_classes, width), (n_classes,)]
        self.fans = [d_in, d_in, width, width]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.n_params = sum(self.sizes)

    def init(self, gen):
        """U(−1/√fan_in, 1/√fan_in) for every weight and bias, as torch.nn.Linear."""
        import torch

        return torch.cat(
            [
                (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) / math.sqrt(fan)
                for n, fan in zip(self.sizes, self.fans)
            ]
        )

    def logits(self, theta, x):
        import torch

        w1, b1, w2, b2 = (t.view(s) for t, s in zip(theta.split(self.sizes), self.shapes))
        return torch.tanh(x @ w1.T + b1) @ w2.T + b2


#: the same MLP under a public name (igrm.eos builds its runs on it)
MLP = _MLP


def _loss(model, theta, x, y):
    import torch.nn.functional as F

    return F.cross_entropy(model.logits(theta, x), y)


def _grad(model, theta, x, y):
    import torch

    t = theta.detach().requires_grad_(True)
    loss = _loss(model, t, x, y)
    (g,) = torch.autograd.grad(loss, t)
    return g, float(loss.detach())


def _hvp(model, theta, x, y, v):
    """H v of the training loss, exact (double backprop; docs/theory.md (T4))."""
    from .regularizers import hvp_double_backprop

    t = theta.detach().requires_grad_(True)
    (hv,) = hvp_double_backprop(lambda: _loss(model, t, x, y), [t], [v])
    return hv


def lambda_max(*, model, theta, x, y, tol: float, v0: np.ndarray | None = None) -> tuple[float, float, np.ndarray]:
    """(λ, residual, eigenvector) of the training-loss Hessian at θ, the eigenvalue of largest
    magnitude with its sign (as (T60)), by implicitly restarted Lanczos (scipy eigsh) on exact
    Hessian-vector products; residual ‖Hv − λv‖/|λ| as in (T60). ``v0`` warm-starts it."""
    import torch
    from scipy.sparse.linalg import LinearOperator, eigsh

    t = theta.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(_loss(model, t, x, y), t, create_graph=True)

    def mv(v):
        (hv,) = torch.autograd.grad(
            g @ torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).ravel()), t, retain_graph=True
        )
        return hv.numpy().copy()

    n = t.numel()
    vals, vecs = eigsh(LinearOperator((n, n), matvec=mv, dtype=np.float64), k=1, which="LM", v0=v0, tol=tol)
    lam, vec = float(vals[0]), vecs[:, 0]
    res = float(np.linalg.norm(mv(vec) - lam * vec) / abs(lam)) if lam != 0 else math.inf
    return lam, res, vec


def slow_manifold_previous(*, model, theta0, x, y, h: float, beta: float):
    """x_{−1} of the order-2 start on the slow manifold (docs/theory.md (T15)):
    x_{−1} = x_0 + h∇E/(1−β) + h² H∇E/(1−β)³, all at x_0."""
    g, _ = _grad(model, theta0, x, y)
    hg = _hvp(model, theta0, x, y, g)
    return theta0 + h * g / (1 - beta) + h * h * hg / (1 - beta) ** 3


def _run(
    *,
    model,
    theta0,
    data,
    method: str,
    beta: float,
    h: float,
    mu: float,
    steps: int,
    record_every: int,
    lanczos_tol: float,
) -> dict[str, np.ndarray]:
    """One full-batch run: ``gdm`` (heavy ball (T2) at step h, started on the slow manifold,
    (T15)) or ``explicit`` (GD at step h on E + μ‖∇E‖², (T29); μ = 0 is plain GD). Records
    every ``record_every`` steps (k = 0 included): θ, test logits, train loss, test accuracy,
    λ_max and its residual. A non-finite loss stops the run (status ``diverged``; NaN after)."""
    import torch

    from .regularizers import penalty_grad

    xtr, ytr, xte, yte = data
    R = steps // record_every + 1
    rec = {
        "params": np.full((R, model.n_params), np.nan),
        "logits": None,
        "train_loss": np.full(R, np.nan),
        "test_acc": np.full(R, np.nan),
        "lambda_max": np.full(R, np.nan),
        "lambda_residual": np.full(R, np.nan),
        "grad_norm": np.full(R, np.nan),
    }
    theta = theta0.clone()
    prev = slow_manifold_previous(model=model, theta0=theta0, x=xtr, y=ytr, h=h, beta=beta) if method == "gdm" else None
    v0, status = None, "completed"
    for k in range(steps + 1):
        if method == "explicit" and mu != 0.0:
            t = theta.detach().requires_grad_(True)
            (g,), (pg,), loss = penalty_grad(lambda: _loss(model, t, xtr, ytr), [t], mu, "double_backprop", None)
            direction = g + pg
        else:
            g, loss = _grad(model, theta, xtr, ytr)
            direction = g
        if not (math.isfinite(loss) and bool(torch.isfinite(direction).all())):
            status = "diverged"
            break
        if k % record_every == 0:
            r = k // record_every
            with torch.no_grad():
                out = model.logits(theta, xte)
            if rec["logits"] is None:
                rec["logits"] = np.full((R, *out.shape), np.nan)
            rec["logits"][r] = out.numpy()
            rec["params"][r] = theta.numpy()
            rec["train_loss"][r] = loss
            rec["test_acc"][r] = float((out.argmax(1) == yte).double().mean())
            rec["grad_norm"][r] = float(g.norm())
            lam, res, v0 = lambda_max(model=model, theta=theta, x=xtr, y=ytr, tol=lanczos_tol, v0=v0)
            rec["lambda_max"][r], rec["lambda_residual"][r] = lam, res
        if k == steps:
            break
        if method == "gdm":
            theta, prev = theta - h * direction + beta * (theta - prev), theta
        else:
            theta = theta - h * direction
    rec["status"] = status
    return rec


def setting_tag(*, beta: float, eta: float) -> str:
    from .pipeline.config import num

    return f"beta{num(beta)}_eta{num(eta)}"


def explicit_study(
    *,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    dataset: str | None,
    settings: Sequence[dict],
    seeds: Sequence[int],
    n_train: int,
    n_test: int,
    pool_side: int,
    width: int,
    steps: int,
    record_every: int,
    mu_fractions: Sequence[float],
    lanczos_tol: float,
    threads: int,
) -> tuple[dict[str, np.ndarray], dict]:
    """Every setting {beta, eta} × seed: GD+M and the explicit runs at μ = f·μ* for f in
    ``mu_fractions`` (module docstring). Seed = the training subset (``n_train`` of the
    training images, drawn without replacement) and the initialisation; the test set is the
    first ``n_test`` test images. Features: :func:`pooled_features`, standardised with the
    training subset's mean and SD. Returns (arrays, attrs): per setting ``<tag>/<name>``
    arrays of shape (seeds, runs, records) — runs = ["gdm", "mu<f>" ...] — for
    ``param_dist``, ``function_dist`` (to the GD+M run, (T70)), ``train_loss``, ``test_acc``,
    ``lambda_max``, ``lambda_residual``, ``grad_norm``; ``<tag>/s`` (records,), the time
    s = kη ((T70)); ``<tag>/diverged`` (seeds, runs).

    The keywords after the images are those of the config section train.explicit_study;
    ``dataset`` (which prepared set the images come from) is read by the rule
    (igrm.pipeline.targets.explicit_study_data), not here; ``threads``: train.threads."""
    import torch

    torch.set_num_threads(int(threads))
    fr = _check_study(train_images, test_images, n_train=n_train, n_test=n_test, mu_fractions=mu_fractions)
    runs = ["gdm"] + [f"mu{f:g}" for f in fr]
    n_classes = int(max(np.max(train_labels), np.max(test_labels))) + 1
    test = (
        pooled_features(images=test_images[:n_test], pool_side=pool_side),
        torch.as_tensor(np.asarray(test_labels[:n_test]), dtype=torch.long),
    )
    attrs: dict = {
        "runs": runs,
        "mu_fractions": fr,
        "seeds": [int(s) for s in seeds],
        "settings": [],
        "n_classes": n_classes,
        "n_params": None,
    }
    seed_data = _seed_datasets(train_images, train_labels, seeds=seeds, n_train=n_train, pool_side=pool_side, test=test)
    arrays: dict[str, np.ndarray] = {}
    for st in settings:
        beta, eta = float(st["beta"]), float(st["eta"])
        h = eta * (1 - beta)
        mu_star = beta * eta / (2 * (1 - beta))  # docs/theory.md (T30)
        grid = matched_steps(steps=steps, record_every=record_every, h=h, beta=beta, eta=eta)
        tag = setting_tag(beta=beta, eta=eta)
        out = _study_setting(
            seed_data,
            seeds=seeds,
            runs=runs,
            fractions=fr,
            records=len(grid["k"]),
            beta=beta,
            eta=eta,
            width=width,
            n_classes=n_classes,
            steps=steps,
            record_every=record_every,
            lanczos_tol=lanczos_tol,
            attrs=attrs,
        )
        diverged = out.pop("diverged")
        for n, v in out.items():
            arrays[f"{tag}/{n}"] = v
        arrays[f"{tag}/s"] = grid["s"]
        arrays[f"{tag}/diverged"] = diverged
        attrs["settings"].append({"tag": tag, "beta": beta, "eta": eta, "h": h, "mu_star": mu_star})
    return arrays, attrs


def _check_study(train_images, test_images, *, n_train: int, n_test: int, mu_fractions) -> list[float]:
    """The μ fractions as floats, after checking the sizes and that 0 and 1 are among them."""
    if len(train_images) < n_train or len(test_images) < n_test:
        raise ValueError(
            f"explicit_study.n_train={n_train} / n_test={n_test} exceed the dataset's "
            f"{len(train_images)} / {len(test_images)} images"
        )
    fr = [float(f) for f in mu_fractions]
    if 0.0 not in fr or 1.0 not in fr:
        raise ValueError(f"train.explicit_study.mu_fractions {fr} must contain 0 (plain GD) and 1 (mu*)")
    return fr


def _seed_datasets(train_images, train_labels, *, seeds, n_train: int, pool_side: int, test) -> dict:
    """Per seed: (its standardised training features and labels, the test features standardised
    alike and the test labels), the feature width; the subset of ``n_train`` images is the seed's."""
    import torch

    feats_test, yte = test
    subsets = {
        int(seed): np.sort(np.random.default_rng(int(seed)).choice(len(train_images), size=int(n_train), replace=False))
        for seed in seeds
    }
    union = np.unique(np.concatenate(list(subsets.values())))
    images = np.asarray(train_images[union])  # one read (an h5py dataset reads slowly per index)
    labels_all = np.asarray(train_labels)
    out = {}
    for seed, idx in subsets.items():
        ftr = pooled_features(images=images[np.searchsorted(union, idx)], pool_side=pool_side)
        m, sd = ftr.mean(0), ftr.std(0) + 1e-12
        out[seed] = (
            (
                torch.from_numpy((ftr - m) / sd),
                torch.as_tensor(labels_all[idx], dtype=torch.long),
                torch.from_numpy((feats_test - m) / sd),
                yte,
            ),
            ftr.shape[1],
        )
    return out


def _study_setting(
    seed_data: dict,
    *,
    seeds,
    runs,
    fractions,
    records: int,
    beta: float,
    eta: float,
    width: int,
    n_classes: int,
    steps: int,
    record_every: int,
    lanczos_tol: float,
    attrs: dict,
) -> dict:
    """One setting's arrays (seeds, runs, records): the GD+M run and the explicit runs at
    μ = f·μ* of every seed, their distances to the GD+M run, ``diverged`` (seeds, runs)."""
    import torch

    h = eta * (1 - beta)
    mu_star = beta * eta / (2 * (1 - beta))
    shape = (len(seeds), len(runs), records)
    out = {
        n: np.full(shape, np.nan)
        for n in ("param_dist", "function_dist", "train_loss", "test_acc", "lambda_max", "lambda_residual", "grad_norm")
    }
    diverged = np.zeros(shape[:2], dtype=bool)
    for i, seed in enumerate(seeds):
        data, n_features = seed_data[int(seed)]
        model = _MLP(n_features, int(width), n_classes)
        attrs["n_params"] = model.n_params
        theta0 = model.init(torch.Generator().manual_seed(int(seed)))
        recs = [
            _run(
                model=model,
                theta0=theta0,
                data=data,
                method="gdm",
                beta=beta,
                h=h,
                mu=0.0,
                steps=steps,
                record_every=record_every,
                lanczos_tol=lanczos_tol,
            )
        ]
        recs += [
            _run(
                model=model,
                theta0=theta0,
                data=data,
                method="explicit",
                beta=0.0,
                h=eta,
                mu=f * mu_star,
                steps=steps,
                record_every=record_every,
                lanczos_tol=lanczos_tol,
            )
            for f in fractions
        ]
        ref = recs[0]
        for r, rec in enumerate(recs):
            diverged[i, r] = rec["status"] != "completed"
            for n in ("train_loss", "test_acc", "lambda_max", "lambda_residual", "grad_norm"):
                out[n][i, r] = rec[n]
            if rec["logits"] is not None and ref["logits"] is not None:
                d = trajectory_distances(
                    params=rec["params"],
                    reference_params=ref["params"],
                    logits=rec["logits"],
                    reference_logits=ref["logits"],
                )
                out["param_dist"][i, r], out["function_dist"][i, r] = d["param"], d["function"]
    return {**out, "diverged": diverged}
