"""Benchmark of the gradient-noise estimators (igrm.noise; docs/performance.md
"Gradient-noise estimates").

1. Gradient computation on one mini-batch stream: plain loop vs torch.func vmap over
   stacked mini-batches vs one fused batch of the same examples (lower bound; a different
   quantity under BN) vs per-example vmap (mean of per-example gradients; also a different
   quantity under BN).
2. Streaming (one pass, every (β, k) of the grid) vs naive (a fresh sequence of k+1
   gradients per sample, per β, per k) at equal CI width. Naive is run on the k = 5, 20
   cells with a reduced number of samples; its cost at the streaming CI width is
   extrapolated linearly (n_req = n·(w_naive/w_stream)², cost n_req·(k+1) gradients, time
   at its measured seconds per gradient). For k = k_max the naive estimator is the
   streaming one (one window per block, denominator from the same k+1 gradients), so
   n_req = n_blocks there: stated, not run.

Usage: python benchmarks/bench_noise.py [--device cuda] [--quick]
Writes benchmarks/out/bench_noise.{json,md}.
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

from igrm import noise as N
from igrm.batches import batch_inputs, device_tensors
from igrm.models import build_model, n_params
from igrm.pipeline.config import schema_defaults
from igrm.pipeline.targets import NOISE_NOT_PER_POINT

# the grid of docs/performance.md "Gradient-noise estimates" (k up to 200: longer than the
# pipeline's default, so that streaming vs naive is measured where it matters)
BETAS = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
KS = [5, 20, 200]


def noise_args(**over):
    """estimate_noise's keyword arguments: the schema's defaults (config section noise less
    its keys for other jobs, augmentation = train.pad, train.cutout_size) with ``over`` on top
    (h: 1, as the model here is a fresh one, without a run's h)."""
    d, t = schema_defaults("noise"), schema_defaults("train")
    return {
        **{k: v for k, v in d.items() if k not in NOISE_NOT_PER_POINT},
        "h": 1.0,
        "augmentation": {"pad": t["pad"], "cutout_size": t["cutout_size"]},
        "point": "",
        **over,
    }


def synthetic(n, seed=0, classes=10):
    rng = np.random.default_rng(seed)
    return {
        "train/images": rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8),
        "train/labels": rng.integers(0, classes, size=n),
        "test/images": rng.integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8),
        "test/labels": rng.integers(0, classes, size=16),
    }


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_grad_impls(model, data, b, n, device, chunk=8):
    from torch.func import functional_call, grad, replace_all_batch_norm_modules_, vmap

    t = device_tensors(data, device)
    stream = dict(
        batch_size=b,
        sampler="iid",
        device=device,
        phase=0,
        augment=["none"],
        aug_generator=None,
        pad=4,
        cutout_size=16,
        vmap_chunk=chunk,
        batchnorm="train",
    )
    out = {}
    for impl in ("loop", "vmap"):
        gen = torch.Generator().manual_seed(0)
        list(N.minibatch_grad_stream(model, t, n=chunk, generator=gen, impl=impl, **stream))  # warm
        sync(device)
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(0)
        for _ in N.minibatch_grad_stream(model, t, n=n, generator=gen, impl=impl, **stream):
            pass
        sync(device)
        out[impl] = (time.perf_counter() - t0) / n
    # one fused batch of n·b examples (its gradient: one vector, BN over the big batch)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, len(t["y"]), (n * b,), generator=gen).to(device)
    x, y = batch_inputs(t, idx, ["none"], None, pad=4, cutout_size=16)
    params = [p for p in model.parameters()]
    torch.autograd.grad(torch.nn.functional.cross_entropy(model(x[:b]), y[:b]), params)
    sync(device)
    t0 = time.perf_counter()
    torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), params)
    sync(device)
    out["fused_batch"] = (time.perf_counter() - t0) / n
    # per-example vmap (BN with one example's statistics: a different quantity), n·b examples
    mc = __import__("copy").deepcopy(model)
    replace_all_batch_norm_modules_(mc)
    p = {k: v.detach() for k, v in mc.named_parameters()}
    bufs = dict(mc.named_buffers())

    def f(pp, xi, yi):
        return torch.nn.functional.cross_entropy(functional_call(mc, (pp, bufs), (xi[None],)), yi[None])

    pe = vmap(grad(f), in_dims=(None, 0, 0))
    pe(p, x[:b], y[:b])
    sync(device)
    t0 = time.perf_counter()
    for i in range(n):
        g = pe(p, x[i * b : (i + 1) * b], y[i * b : (i + 1) * b])
        torch.cat([v.mean(0).reshape(-1) for v in g.values()])
    sync(device)
    out["per_example_vmap"] = (time.perf_counter() - t0) / n
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-blocks", type=int, default=10)
    ap.add_argument("--n-groups", type=int, default=5)
    ap.add_argument("--naive-n", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--n-examples", type=int, default=2048)
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for but CUDA is not available")
    device = torch.device(args.device)
    b, Nex = args.batch_size, args.n_examples
    betas = BETAS
    ks = [2, 5, 20] if args.quick else KS
    data = synthetic(Nex)
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, 3, 0.5).to(device)
    res = {
        "machine": {
            "platform": platform.platform(),
            "cpu": _cpu(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        },
        "model": "small_cnn width 0.5",
        "n_params": n_params(model),
        "batch_size": b,
        "n_examples": Nex,
        "betas": betas,
        "ks": ks,
    }
    res["grad_impl_s_per_batch"] = bench_grad_impls(model, data, b, 8 if args.quick else 16, device)
    print(json.dumps(res["grad_impl_s_per_batch"]))

    # ---- streaming, all (β, k) in one pass
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ms = ({"model": "small_cnn", "width": 0.5}, sd)
    cfg = noise_args(
        betas=betas,
        ks=ks,
        n_blocks=args.n_blocks,
        n_groups=args.n_groups,
        batch_size=b,
        sampler="iid",
        device=args.device,
        seed=1,
        train_subset=None,
    )
    t0 = time.perf_counter()
    arrays, attrs = N.estimate_noise(ms, data, **cfg)
    t_stream = time.perf_counter() - t0
    n_stream = int(arrays["n_grad_evals"][0])
    w_stream = (arrays["ratio_hi"] - arrays["ratio_lo"])[0]
    res["stream"] = {
        "wall_s": t_stream,
        "grad_evals": n_stream,
        "s_per_grad": t_stream / n_stream,
        "ci_width": w_stream.tolist(),
        "ratio": arrays["ratio"][0].tolist(),
        "theory": arrays["theory"][0].tolist(),
        "n_windows": arrays["n_windows"][0].tolist(),
    }
    print(f"stream: {n_stream} gradients, {t_stream:.1f} s")

    # ---- naive: one (β, k) at a time, a fresh k+1-sequence per sample (reduced n, extrapolated)
    kmax = max(ks)
    naive = {}
    cost_evals, cost_time, naive_evals_run, naive_time_run = 0.0, 0.0, 0, 0.0
    for j, k in enumerate(ks):
        for i, beta in enumerate(betas):
            if k == kmax:
                n_req = args.n_blocks
                cost_evals += n_req * (k + 1)
                naive[f"{beta:g}/{k}"] = {"n_req": n_req, "measured": False}
                continue
            c = dict(cfg, betas=[beta], ks=[k], block_len=k + 1, n_blocks=args.naive_n, n_groups=args.n_groups)
            t0 = time.perf_counter()
            a, _ = N.estimate_noise(ms, data, **c)
            dt = time.perf_counter() - t0
            ne = int(a["n_grad_evals"][0])
            naive_evals_run += ne
            naive_time_run += dt
            w = float((a["ratio_hi"] - a["ratio_lo"])[0, 0, 0])
            n_req = args.naive_n * (w / float(w_stream[i, j])) ** 2
            cost_evals += n_req * (k + 1)
            naive[f"{beta:g}/{k}"] = {
                "n": args.naive_n,
                "ci_width": w,
                "stream_ci_width": float(w_stream[i, j]),
                "n_req": n_req,
                "measured": True,
                "wall_s": dt,
                "grad_evals": ne,
            }
    s_per_grad_naive = naive_time_run / max(1, naive_evals_run)
    cost_time = cost_evals * s_per_grad_naive
    res["naive"] = {
        "cells": naive,
        "grad_evals_run": naive_evals_run,
        "wall_s_run": naive_time_run,
        "s_per_grad": s_per_grad_naive,
        "grad_evals_equal_ci": cost_evals,
        "wall_s_equal_ci_extrapolated": cost_time,
    }
    res["speedup_grad_evals"] = cost_evals / n_stream
    res["speedup_wall"] = cost_time / t_stream
    print(
        f"naive at equal CI width: {cost_evals:.0f} gradients (×{res['speedup_grad_evals']:.1f}), "
        f"{cost_time:.0f} s extrapolated (×{res['speedup_wall']:.1f})"
    )
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_noise.json").write_text(json.dumps(res, indent=1))
    md = [
        f"# bench_noise ({res['machine']['device']}, {res['machine']['cpu']})",
        "",
        "| gradient impl | s per mini-batch |",
        "|---|---|",
    ]
    md += [f"| {k} | {v:.4f} |" for k, v in res["grad_impl_s_per_batch"].items()]
    md += [
        "",
        f"stream: {n_stream} gradients, {t_stream:.1f} s; naive at equal CI width: {cost_evals:.0f} "
        f"gradients (×{res['speedup_grad_evals']:.1f}), {cost_time:.0f} s extrapolated (×{res['speedup_wall']:.1f})",
    ]
    (out / "bench_noise.md").write_text("\n".join(md) + "\n")


def _cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
