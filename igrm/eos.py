"""The rival explanation of momentum's flatness: the edge of stability (docs/mechanism.md
(S1)–(S5); Cohen et al., ICLR 2021).

Full-batch heavy ball at raw step h and momentum β is linearly stable on a quadratic of
curvature λ iff λ < 2(1+β)/h ((S1)); on a network, GD+M's sharpness λ_max rises during
training ("progressive sharpening") until it reaches that bound and then hovers there.
If so, the final λ_max is set by h and β, not by an implicit regulariser: at fixed η =
h/(1−β) the bound 2(1+β)/(η(1−β)) *rises* with β.

In one process, float64, full batch: a one-hidden-layer tanh MLP (:class:`igrm.explicit_study.MLP`)
on pooled grey-scale images (:func:`igrm.explicit_study.pooled_features`), squared loss on
one-hot targets (the loss of Cohen et al.'s main experiments); GD+M from rest
(x_{−1} = x_0) at every (setting, β). Each run records, every ``record_every`` steps, the
train loss, λ_max (the algebraic top, Lanczos on exact Hessian-vector products) with its
residual, Hutchinson's tr H and ‖∇E‖².

- :func:`stability_threshold`, :func:`eos_ratio`: (S1), (S2);
- :func:`edge_summary`: whether a run reached the edge and its ratio over the final window (S3);
- :func:`eos_study`: the runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def stability_threshold(*, beta: float, h: float) -> float:
    """2(1+β)/h: the largest curvature at which heavy ball at raw step h is linearly stable
    (docs/mechanism.md (S1))."""
    return 2.0 * (1.0 + float(beta)) / float(h)


def eos_ratio(*, lam, beta: float, h: float):
    """λ·h/(2(1+β)): the sharpness as a fraction of the stability threshold (docs/mechanism.md (S2))."""
    return np.asarray(lam, float) / stability_threshold(beta=beta, h=h)


def edge_summary(*, ratio: Sequence[float], window: float, margin: float) -> dict:
    """The edge-of-stability statistics of one run's ratio series (docs/mechanism.md (S3)):
    the final window is the last ``window`` fraction of the records (at least 2);
    ``reached``: some record before the window has ratio ≥ 1 − ``margin`` (the run got to
    the edge before the window in which it is judged); ``mean``, ``lo``, ``hi``: the
    window's mean, minimum and maximum ratio; ``n``: records in the window."""
    r = np.asarray(ratio, float)
    r = r[np.isfinite(r)]
    if r.size < 3:
        return {"reached": False, "mean": math.nan, "lo": math.nan, "hi": math.nan, "n": int(r.size)}
    n = max(2, int(math.ceil(float(window) * r.size)))
    n = min(n, r.size - 1)
    before, last = r[:-n], r[-n:]
    return {
        "reached": bool(np.any(before >= 1.0 - float(margin))),
        "mean": float(last.mean()),
        "lo": float(last.min()),
        "hi": float(last.max()),
        "n": int(n),
    }


#: what every record holds (arrays ``<tag>/<name>``, columns of :func:`eos_table`)
RECORDS = ("loss", "grad_norm_sq", "lambda_max", "lambda_residual", "trace")


# ---------------------------------------------------------------- the runs (torch)
def _mse(model, theta, x, y_onehot):
    """½ mean over examples of ‖f(x) − onehot(y)‖² (docs/mechanism.md (S4))."""
    return 0.5 * ((model.logits(theta, x) - y_onehot) ** 2).sum(1).mean()


def _measure(model, theta, x, y1, *, tol: float, probes: int, gen, v0):
    """(loss, ‖∇E‖², λ_max, its residual, Hutchinson tr H, eigenvector) at θ: λ_max the
    algebraic top (scipy eigsh, which='LA') on exact Hessian-vector products."""
    import torch
    from scipy.sparse.linalg import LinearOperator, eigsh

    t = theta.detach().requires_grad_(True)
    loss = _mse(model, t, x, y1)
    (g,) = torch.autograd.grad(loss, t, create_graph=True)

    def mv(v):
        vv = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).ravel())
        (hv,) = torch.autograd.grad(g @ vv, t, retain_graph=True)
        return hv.numpy().copy()

    n = t.numel()
    vals, vecs = eigsh(LinearOperator((n, n), matvec=mv, dtype=np.float64), k=1, which="LA", v0=v0, tol=tol)
    lam, vec = float(vals[0]), vecs[:, 0]
    res = float(np.linalg.norm(mv(vec) - lam * vec) / abs(lam)) if lam != 0 else math.inf
    zs = [(torch.randint(0, 2, (n,), generator=gen) * 2 - 1).double().numpy() for _ in range(int(probes))]
    tr = float(np.mean([z @ mv(z) for z in zs])) if zs else math.nan
    return float(loss.detach()), float((g.detach() ** 2).sum()), lam, res, tr, vec


def run_gdm(
    *, model, theta0, x, y1, beta: float, h: float, steps: int, record_every: int, tol: float, probes: int, seed: int
):
    """Full-batch GD+M from rest (heavy ball (T2), x_{−1} = x_0) for ``steps`` steps; the
    records (k = 0, record_every, …): ``loss``, ``grad_norm_sq``, ``lambda_max``,
    ``lambda_residual``, ``trace``; NaN after a non-finite loss (``diverged``)."""
    import torch

    R = steps // record_every + 1
    rec = {k: np.full(R, np.nan) for k in RECORDS}
    theta, prev, v0, diverged = theta0.clone(), theta0.clone(), None, False
    gen = torch.Generator().manual_seed(int(seed))
    for k in range(steps + 1):
        t = theta.detach().requires_grad_(True)
        loss = _mse(model, t, x, y1)
        (g,) = torch.autograd.grad(loss, t)
        if not (math.isfinite(float(loss.detach())) and bool(torch.isfinite(g).all())):
            diverged = True
            break
        if k % record_every == 0:
            r = k // record_every
            m = _measure(model, theta, x, y1, tol=tol, probes=probes, gen=gen, v0=v0)
            (
                rec["loss"][r],
                rec["grad_norm_sq"][r],
                rec["lambda_max"][r],
                rec["lambda_residual"][r],
                rec["trace"][r],
            ) = m[:5]
            v0 = m[5]
        if k == steps:
            break
        theta, prev = theta - h * g + beta * (theta - prev), theta
    rec["diverged"] = diverged
    return rec


def step_size(*, lr: float, lr_mode: str, beta: float) -> float:
    """Raw step h of a setting: ``effective`` h = lr·(1−β) (η = lr fixed, as train.beta_grid),
    ``raw`` h = lr."""
    if lr_mode not in ("effective", "raw"):
        raise ValueError(f"train.eos.settings: lr_mode must be 'effective' or 'raw', got {lr_mode!r}")
    return float(lr) * (1.0 - float(beta)) if lr_mode == "effective" else float(lr)


def eos_study(
    *,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    dataset: str | None,
    settings: Sequence[dict],
    betas: Sequence[float],
    seeds: Sequence[int],
    n_train: int,
    pool_side: int,
    width: int,
    steps: int,
    record_every: int,
    lanczos_tol: float,
    trace_probes: int,
    threads: int,
) -> tuple[dict[str, np.ndarray], dict]:
    """Every setting {lr, lr_mode} × β × seed: one GD+M run (module docstring). Seed = the
    training subset (``n_train`` images without replacement) and the initialisation.
    Returns (arrays, attrs): per setting ``<tag>/<name>`` of shape (betas, seeds, records)
    for the records of :func:`run_gdm`, ``<tag>/h`` (betas,), ``<tag>/diverged`` (betas,
    seeds), ``<tag>/step`` (records,). The keywords after the images are those of the config
    section train.eos; ``dataset`` (which prepared set the images come from) is read by the
    rule, not here; ``threads``: train.threads."""
    import torch

    from .explicit_study import MLP, pooled_features

    torch.set_num_threads(int(threads))
    if steps < 1 or record_every < 1 or steps % record_every:
        raise ValueError(f"train.eos: steps ({steps}) must be a positive multiple of record_every ({record_every})")
    if len(train_images) < n_train:
        raise ValueError(f"train.eos.n_train={n_train} exceeds the dataset's {len(train_images)} images")
    n_classes = int(np.max(train_labels)) + 1
    data = {}
    for seed in seeds:
        idx = np.sort(np.random.default_rng(int(seed)).choice(len(train_images), size=int(n_train), replace=False))
        f = pooled_features(images=np.asarray(train_images[idx]), pool_side=pool_side)
        x = torch.from_numpy((f - f.mean(0)) / (f.std(0) + 1e-12))
        y1 = torch.nn.functional.one_hot(torch.as_tensor(np.asarray(train_labels)[idx]).long(), n_classes).double()
        data[int(seed)] = (x, y1)
    model = MLP(pool_side * pool_side, int(width), n_classes)
    R = steps // record_every + 1
    arrays, attrs = {}, {"settings": [], "betas": [float(b) for b in betas], "seeds": [int(s) for s in seeds]}
    done: dict = {}  # (β, h, seed) -> records: settings that share a run (β = 0) run it once
    for st in settings:
        tag = f"{st['lr_mode']}_lr{float(st['lr']):g}"
        hs = [step_size(lr=st["lr"], lr_mode=st["lr_mode"], beta=b) for b in betas]
        out = {k: np.full((len(betas), len(seeds), R), np.nan) for k in RECORDS}
        diverged = np.zeros((len(betas), len(seeds)), dtype=bool)
        for i, (beta, h) in enumerate(zip(betas, hs)):
            for j, seed in enumerate(seeds):
                x, y1 = data[int(seed)]
                key = (float(beta), float(h), int(seed))
                if key in done:
                    diverged[i, j] = done[key]["diverged"]
                    for k in RECORDS:
                        out[k][i, j] = done[key][k]
                    continue
                rec = run_gdm(
                    model=model,
                    theta0=model.init(torch.Generator().manual_seed(int(seed))),
                    x=x,
                    y1=y1,
                    beta=float(beta),
                    h=h,
                    steps=int(steps),
                    record_every=int(record_every),
                    tol=float(lanczos_tol),
                    probes=int(trace_probes),
                    seed=int(seed),
                )
                done[key] = rec
                diverged[i, j] = rec["diverged"]
                for k in RECORDS:
                    out[k][i, j] = rec[k]
        for k, v in out.items():
            arrays[f"{tag}/{k}"] = v
        arrays[f"{tag}/h"] = np.asarray(hs)
        arrays[f"{tag}/diverged"] = diverged
        arrays[f"{tag}/step"] = np.arange(0, steps + 1, record_every)
        attrs["settings"].append({"tag": tag, "lr": float(st["lr"]), "lr_mode": st["lr_mode"]})
    attrs["n_params"] = model.n_params
    return arrays, attrs


def eos_table(*, arrays: dict, attrs: dict):
    """The study's records as one long table (one row per setting, β, seed, record):
    setting, lr, lr_mode, beta, h, seed, step, loss, grad_norm_sq, lambda_max,
    lambda_residual, trace, ratio ((S2)), diverged."""
    import json

    import pandas as pd

    def _attr(v):  # lists and dicts come back from the result file as JSON text
        return json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v

    attrs = {k: _attr(attrs[k]) for k in ("settings", "betas", "seeds")}
    parts = []
    for st in attrs["settings"]:
        tag = st["tag"]
        steps = np.asarray(arrays[f"{tag}/step"])
        for i, beta in enumerate(attrs["betas"]):
            h = float(arrays[f"{tag}/h"][i])
            for j, seed in enumerate(attrs["seeds"]):
                d = {k: np.asarray(arrays[f"{tag}/{k}"])[i, j] for k in RECORDS}
                parts.append(
                    pd.DataFrame(
                        {
                            "setting": tag,
                            "lr": st["lr"],
                            "lr_mode": st["lr_mode"],
                            "beta": float(beta),
                            "h": h,
                            "seed": int(seed),
                            "step": steps,
                            **d,
                            "ratio": eos_ratio(lam=d["lambda_max"], beta=float(beta), h=h),
                            "diverged": bool(np.asarray(arrays[f"{tag}/diverged"])[i, j]),
                        }
                    )
                )
    return pd.concat(parts, ignore_index=True)
