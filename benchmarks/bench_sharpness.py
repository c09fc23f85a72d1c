"""Cost of measuring λ_max along a training run (igrm.sharpness through igrm.train), and
λ_max at initialisation of the default model.

Runs the default pipeline's three kinds of run through ``igrm.train.train``, with the
cfg that igrm.pipeline.targets.train_job_cfg builds from the schema defaults (ResNet-18 width
0.125, 1 torch thread): SGD+M (β = 0.9, η = 0.1, 10 epochs of 2000 images), full-batch
GD+M and the explicit IGR-M baseline (β = 0.9, η = 0.1, 60 steps on 128 images). For
each it reports the run's time (epochs, training + evaluation), the time spent in the
sharpness measurements (``sharpness/wall_time``) and their share, λ_max at the measured
points with their Hessian-vector products, residuals and expansion parameters. The
share is measured inside one process, so load drift on a shared machine hits both.

Then λ_max at initialisation (seed 0) with many iterations, on the default ``subset``
and on the full-batch set (the explicit baseline's exact objective), to say how far the
default measurement is from a converged one.

    .venv/bin/python benchmarks/bench_sharpness.py            # ~6-10 min on 2 CPU cores

Synthetic images in the CIFAR format (uint8 32x32x3, 10 classes, uniform pixels and
labels) unless ``--data`` names a prepared dataset HDF5. Writes
benchmarks/out/bench_sharpness.json (git-ignored) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from igrm.batches import normalize, seed_for, to_device_uint8, unpack_data
from igrm.models import build_model
from igrm.pipeline.config import schema_defaults
from igrm.pipeline.targets import train_job_cfg
from igrm.sharpness import lambda_max
from igrm.train import step_sizes, train
from igrm.validity import expansion_parameters

OUT = Path(__file__).resolve().parent / "out"


def load_data(args):
    if args.data:
        from igrm.data import load_prepared

        return load_prepared(args.data)
    rng = np.random.default_rng(0)
    return {
        "train/images": rng.integers(0, 256, (args.n_train, 32, 32, 3), dtype=np.uint8),
        "train/labels": rng.integers(0, 10, args.n_train),
        "test/images": rng.integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8),
        "test/labels": rng.integers(0, 10, 1000),
    }


def cfg_of(method: str, beta: float, eta: float, seed: int = 0) -> dict:
    """The pipeline's cfg of this run (igrm.pipeline.targets.train_job_cfg) for the default
    config (schema defaults), no noise points."""
    return train_job_cfg(
        {"train": schema_defaults("train"), "noise": {"runs": [], "points": []}}, "cifar10", method, beta, eta, seed
    )


def run_one(name, cfg, data):
    t0 = time.perf_counter()
    arrays, attrs = train(cfg, data, None, None)
    total = time.perf_counter() - t0
    s = {k.split("/", 1)[1]: arrays[k].tolist() for k in arrays if k.startswith("sharpness/")}
    run_s = float(np.sum(arrays["wall_time"]))
    sharp_s = float(np.sum(arrays["sharpness/wall_time"]))
    return {
        "run": name,
        "method": cfg["method"],
        "epochs": cfg["epochs"],
        "status": attrs["status"],
        "run_s": run_s,
        "sharpness_s": sharp_s,
        "total_s": total,
        "share_of_run": sharp_s / run_s,
        "share_of_total": sharp_s / total,
        "final_train_loss": float(arrays["train_loss"][-1]),
        "final_test_acc": float(arrays["test_acc"][-1]),
        "sharpness": s,
        "sharpness_cfg": cfg["sharpness"],
        "n_sharp": attrs["sharpness_subset"],
    }


def converged_init(data, n, iters, chunk=128, seed=0):
    """λ_max at the default model's initialisation (seed ``seed``) on the first ``n`` training
    examples, unaugmented, train-mode BN in chunks of ``chunk``, ``iters`` HVPs (tol 1e-3)."""
    t = schema_defaults("train")
    d = unpack_data(data)
    perm = torch.randperm(len(d["train/labels"]), generator=torch.Generator().manual_seed(seed_for(seed, "subset")))
    idx = perm.numpy()[: min(int(t["train_subset"]), len(perm))][:n]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(seed, "init"))
        net = build_model(t["model"], d["num_classes"], d["train/images"].shape[-1], float(t["width"]))
    net = net.to(memory_format=torch.channels_last).train()
    x = normalize(
        to_device_uint8(d["train/images"][idx], torch.device("cpu")),
        torch.tensor(d["mean"], dtype=torch.float32),
        torch.tensor(d["std"], dtype=torch.float32),
    ).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(d["train/labels"][idx])
    fns = [
        lambda xs=xs, ys=ys: F.cross_entropy(net(xs), ys, reduction="sum") / n
        for xs, ys in zip(torch.split(x, chunk), torch.split(y, chunk))
    ]
    t0 = time.perf_counter()
    r = lambda_max(
        loss_fns=fns,
        params=list(net.parameters()),
        buffers=list(net.buffers()),
        iters=iters,
        tol=1e-3,
        generator=torch.Generator().manual_seed(seed_for(seed, "sharpness/0")),
    )
    dt = time.perf_counter() - t0
    return {
        "n": n,
        "lambda_max": r.value,
        "iters": r.iters,
        "converged": r.converged,
        "residual": r.residual,
        "seconds": dt,
        "seconds_per_hvp": dt / r.iters,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init-iters", type=int, default=100)
    ap.add_argument("--skip-runs", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_data(args)
    out = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
            "load_before": os.getloadavg(),
        },
        "runs": [],
        "init": [],
    }
    if not args.skip_runs:
        for name, (m, b) in {
            "sgdm beta0.9 eta0.1": ("sgdm", 0.9),
            "gdm beta0.9 eta0.1": ("gdm", 0.9),
            "igrm_explicit beta0.9 eta0.1": ("igrm_explicit", 0.9),
        }.items():
            r = run_one(name, cfg_of(m, b, 0.1), data)
            out["runs"].append(r)
            s = r["sharpness"]
            print(
                f"{name}: run {r['run_s']:.1f}s, sharpness {r['sharpness_s']:.1f}s "
                f"({100 * r['share_of_run']:.1f}% of the run), lambda_max {s['lambda_max']} "
                f"(iters {s['iters']}, residual {[round(v, 3) for v in s['residual']]}), "
                f"eps {[round(v, 3) for v in s['epsilon']]}, 2 mu lambda {[round(v, 3) for v in s['penalty_curvature']]}, "
                f"stability {[round(v, 3) for v in s['stability']]}; final train loss {r['final_train_loss']:.3f}, "
                f"test acc {r['final_test_acc']:.3f}",
                flush=True,
            )
    sub = schema_defaults("train")["sharpness"]["subset"]
    e = schema_defaults("train")["explicit"]
    for n in sorted({int(sub), int(e["fullbatch_subset"])}):
        r = converged_init(data, n, args.init_iters)
        s = step_sizes({"beta": e["beta"], "lr": e["eta"], "lr_mode": "effective"})
        r["explicit_default"] = expansion_parameters(lam=r["lambda_max"], h=s["h"], beta=e["beta"])
        out["init"].append(r)
        print(
            f"init, first {n} examples: lambda_max {r['lambda_max']:.4g} after {r['iters']} HVPs (converged "
            f"{r['converged']}, residual {r['residual']:.2g}), {r['seconds_per_hvp']:.3f}s per HVP; at the "
            f"explicit default (beta {e['beta']}, eta {e['eta']}): {r['explicit_default']}",
            flush=True,
        )
    out["machine"]["load_after"] = os.getloadavg()
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_sharpness.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
