"""The prepared device check (issue 15): one run, one JSON + Markdown report, <= 8 minutes on one GPU.

    python benchmarks/gpu_check.py                 # on the GPU machine (repo root, PYTHONPATH=.)
    python benchmarks/gpu_check.py --cpu           # the same steps on the CPU at a tiny size (< 1 min)
    python benchmarks/gpu_check.py --cpu-smoke     # the timing and estimate sections only (a test)

Without CUDA it runs in the CPU mode by itself and the report says, first line, that no GPU
was found (tests/test_gpu_paths.py runs it so, so it never rots). Sections, each timed and
each recorded even if it fails (the error is in the report, the others still run):

1. ``card``: GPU name, driver, memory, CUDA, torch; the card's dense bf16 peak (a table of
   spec-sheet numbers, ``BF16_PEAK``; none on the CPU).
2. ``epoch``: one paper-setting epoch through ``igrm.train.train`` (ResNet-18 width 1, batch
   128, crop+flip+cutout, bf16 + channels_last, synthetic CIFAR-format images, evaluation on
   the test set included), eager and ``compile: true``; img/s and the achieved fraction of
   the bf16 peak (FLOPs per image counted by ``torch.utils.flop_counter``).
3. ``loader``: igrm's on-device loader vs a torchvision DataLoader feeding the same training
   step (benchmarks/bench_loader.py's loaders and timer); goal: >= 3x.
4. ``bf16_vs_fp32``: a short run twice, bf16 and fp32; per-epoch losses within ``BF16_RTOL``.
5. ``explicit_bf16``: the explicit IGR-M baseline (double backward) under bf16: finite, its
   step time, and ``compile`` falling back to eager.
6. ``paths``: ``deterministic: true`` against the fast path (``false``, the CUDA default),
   interleaved: the warm epoch's seconds and whether the losses agree.
7. ``fullbatch``: full-batch GD+M steps at the preset's size and evaluation schedule
   (``train.explicit.eval_every``): amortised seconds and FLOP/s per step.
8. ``ensemble``: K = 1, 4, 8, 16 (CPU: 1, 2) runs in one process, one vmapped step
   (igrm.ensemble): aggregate img/s against K = 1, member 0 against the run alone.
9. ``concurrency``: k = 1, 2, 4 (CPU: 1, 2) training processes at once on one GPU, each in its
   own igrm.pipeline.gpuslots slot (``runs_per_gpu = k``): aggregate img/s, the GPU-hour factor
   thr(k)/thr(1), and each run's metrics against the same run alone.
10. ``snakemake``: a 2-epoch paper-preset job end to end, ``snakemake --profile profiles/local
   --resources gpu=2`` with ``train.runs_per_gpu: 2`` (two concurrent jobs on the one GPU),
   on a synthetic full-size CIFAR-10 archive (no network); CPU: the tiny test config.
11. ``estimate``: the paper preset's GPU-hours for each way (fast / deterministic / compiled
   eager, runs_per_gpu k, ensemble K): its FLOPs by part from igrm.pipeline.plan.work over the
   throughputs measured above; the fastest way whose runs match the plain ones is picked.

Writes ``--out`` (default benchmarks/out/gpu_check/) report.json and report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from synthetic_data import synthetic

from igrm.pipeline.io import atomic_path

OUT = REPO / "benchmarks" / "out" / "gpu_check"
#: dense bf16 tensor-core peaks, FLOP/s (vendor spec sheets, without sparsity)
BF16_PEAK = {
    "H200": 989e12,
    "H100 SXM": 989e12,
    "H100 80GB HBM3": 989e12,
    "H100 NVL": 835e12,
    "H100 PCIe": 756e12,
    "H100": 756e12,
    "GH200": 989e12,
    "A100": 312e12,
    "A800": 312e12,
    "L40S": 362e12,
    "L40": 181e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
}
#: the bf16 setting of the bf16 sections: on the CPU ``always`` (CPU autocast, the path's test;
#: slow there, so the other CPU-mode sections run fp32)
BF16 = {"gpu": True, "cpu": "always"}
#: bf16 vs fp32: per-epoch mean losses of a short run agree to this relative difference
BF16_RTOL = 0.05
#: the preset whose GPU-hours the estimate reports (its runs and FLOPs: igrm.pipeline.plan.work)
PRESET = REPO / "presets" / "paper.yaml"

SIZES = {
    "gpu": {
        "model": "resnet18",
        "width": 1.0,
        "batch": 128,
        "n_train": 50_000,
        "n_test": 10_000,
        "epochs": 2,
        "compile": True,
        "loader_n": 20_000,
        "loader_workers": [0, 8],
        "loader_steps": 20,
        "loader_rounds": 3,
        "agree_subset": 2560,
        "agree_epochs": 5,
        "explicit_subset": 5000,
        "explicit_steps": 3,
        "conc_ks": [1, 2, 4],
        "conc_subset": 10_000,
        "conc_test": 1000,
        "conc_epochs": 2,
        "conc_rtol": BF16_RTOL,
        "smk_per_batch": 10_000,
        "smk_test": 10_000,
        "paths_subset": 10_000,
        "paths_reps": 2,
        "ens_ks": [1, 4, 8, 16],
        "ens_subset": 2560,
        "ens_test": 1000,
        "ens_rtol": BF16_RTOL,
        "fb_subset": 5000,
    },
    "cpu": {
        "model": "small_cnn",
        "width": 0.25,
        "batch": 32,
        "n_train": 64,
        "n_test": 32,
        "epochs": 2,
        "compile": "aot_eager",
        "loader_n": 256,
        "loader_workers": [0],
        "loader_steps": 2,
        "loader_rounds": 1,
        "agree_subset": 64,
        "agree_epochs": 2,
        "explicit_subset": 16,
        "explicit_steps": 2,
        "conc_ks": [2],
        "conc_subset": 64,
        "conc_test": 16,
        "conc_epochs": 1,
        "conc_rtol": 0.0,
        "smk_per_batch": 40,
        "smk_test": 100,
        "paths_subset": 64,
        "paths_reps": 1,
        "ens_ks": [1, 2],
        "ens_subset": 64,
        "ens_test": 16,
        "ens_rtol": 1e-4,
        "fb_subset": 16,
    },
}


# ------------------------------------------------------------------ helpers
def _cfg(mode, **keys):
    from tests._train_cfg import train_cfg

    s = SIZES[mode]
    base = dict(
        model=s["model"],
        width=s["width"],
        batch_size=s["batch"],
        augment=["crop+flip", "cutout"],
        cutout_size=16,
        device="cuda" if mode == "gpu" else "cpu",
        bf16=mode == "gpu",
        checkpoint_every=1000,
        eval_batch_size=2000,
        train_subset=None,
        test_subset=None,
        epochs=s["epochs"],
        lr=0.1,
        beta=0.9,
    )
    return train_cfg(**{**base, **keys})


def _train(cfg, data):
    from igrm.train import train

    msgs = []
    arrays, attrs = train(cfg, data, None, msgs.append)
    return arrays, attrs, msgs


def flops_per_image(name, width, device, bf16):
    """(training FLOPs, forward FLOPs) of one 32x32 image through model ``name`` at ``width``."""
    from torch.utils.flop_counter import FlopCounterMode

    from igrm.models import build_model

    model = build_model(name, 10, 3, width).to(device)
    x = torch.randn(4, 3, 32, 32, device=device)
    with FlopCounterMode(display=False) as fc:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
    fwd = fc.get_total_flops() / 4
    with FlopCounterMode(display=False) as fc:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        out.float().sum().backward()
    return fc.get_total_flops() / 4, fwd


def paper_plan():
    """The preset's filled config and its igrm.pipeline.plan.work (runs, FLOPs by part)."""
    import yaml

    from igrm.pipeline.config import check_config
    from igrm.pipeline.plan import merge_layers, work

    cfg = merge_layers(yaml.safe_load((REPO / "config.yaml").read_text()), yaml.safe_load(PRESET.read_text()))
    cfg = check_config(cfg)
    return cfg, work(cfg)


def flops_step(ctx, kind, n, n_test=0, every=1):
    """FLOPs of one step of ``n`` examples of the check's model (plan's per-example counts):
    ``kind`` train or explicit (gradient + double-backward HVP), plus ``n_test`` forward
    passes every ``every`` steps (the evaluation, amortised)."""
    from igrm.pipeline.plan import flops_per_example

    s = SIZES[ctx["mode"]]
    f = flops_per_example(s["model"], s["width"], "cifar10")
    per = f["train"] + (f["hvp"] if kind == "explicit" else 0.0)
    return n * per + n_test * f["forward"] / every


def _sync(ctx):
    if ctx["mode"] == "gpu":
        torch.cuda.synchronize()


def peak_for(name: str | None):
    if not name:
        return None, None
    for key in sorted(BF16_PEAK, key=len, reverse=True):
        if key.lower() in name.lower():
            return BF16_PEAK[key], key
    return None, None


# ------------------------------------------------------------------ sections
def sec_card(ctx):
    info = {
        "mode": ctx["mode"],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "nproc": os.cpu_count(),
        "host": platform.node(),
    }
    from bench_loader import cpu_model

    info["cpu_model"] = cpu_model()
    if ctx["mode"] == "gpu":
        p = torch.cuda.get_device_properties(0)
        info.update(
            gpu=p.name,
            memory_gib=round(p.total_memory / 2**30, 1),
            sm_count=p.multi_processor_count,
            capability=f"{p.major}.{p.minor}",
            bf16_supported=torch.cuda.is_bf16_supported(),
            cudnn=torch.backends.cudnn.version(),
        )
        try:
            q = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,power.limit,clocks.max.sm", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout
            info["nvidia_smi"] = q.strip().splitlines()[0]
            info["driver"] = info["nvidia_smi"].split(",")[1].strip()
        except (OSError, subprocess.SubprocessError, IndexError):
            info["driver"] = "unknown (nvidia-smi failed)"
    peak, key = peak_for(info.get("gpu"))
    info["bf16_peak_flops"], info["bf16_peak_source"] = peak, (f"spec sheet, {key}" if key else None)
    ctx["peak"] = peak
    return info


def sec_epoch(ctx):
    mode, s = ctx["mode"], SIZES[ctx["mode"]]
    data = synthetic(s["n_train"], s["n_test"])
    train_f, fwd_f = flops_per_image(s["model"], s["width"], ctx["device"], mode == "gpu")
    flops_epoch = s["n_train"] * train_f + s["n_test"] * fwd_f
    out = {
        "model": s["model"],
        "n_train": s["n_train"],
        "n_test": s["n_test"],
        "batch": s["batch"],
        "width": s["width"],
        "flops_per_train_image": train_f,
        "flops_per_eval_image": fwd_f,
        "runs": {},
    }
    ref = None
    for name, comp in (("eager", False), ("compiled", s["compile"])):
        arrays, attrs, _ = _train(_cfg(mode, epochs=s["epochs"], compile=comp), data)
        ref = arrays if ref is None else ref
        wt = [float(t) for t in arrays["wall_time"]]
        warm = wt[-1]
        r = {
            "compile": comp,
            "compiled": attrs["compiled"],
            "bf16": attrs["bf16"],
            "channels_last": attrs["channels_last"],
            "epoch_wall_s": wt,
            "warm_epoch_s": warm,
            "first_epoch_overhead_s": wt[0] - warm,
            "img_per_s": s["n_train"] / warm,
            "achieved_flops": flops_epoch / warm,
            "status": attrs["status"],
        }
        if ctx.get("peak"):
            r["fraction_of_bf16_peak"] = r["achieved_flops"] / ctx["peak"]
        r["loss_max_rel_diff_vs_eager"] = max(
            float(np.max(np.abs(arrays[m] - ref[m]) / np.abs(ref[m]))) for m in ("train_loss", "test_loss")
        )
        out["runs"][name] = r
    out["compile_speedup"] = out["runs"]["eager"]["warm_epoch_s"] / out["runs"]["compiled"]["warm_epoch_s"]
    ctx["t_epoch"] = min(r["warm_epoch_s"] for r in out["runs"].values()) * (50_000 / s["n_train"])
    ctx["thr_sgd"] = {"eager": flops_epoch / out["runs"]["eager"]["warm_epoch_s"]}
    ctx["thr_sgd"]["compiled"] = flops_epoch / out["runs"]["compiled"]["warm_epoch_s"]
    return out


def sec_loader(ctx):
    import bench_loader as bl

    mode, s = ctx["mode"], SIZES[ctx["mode"]]
    dev = ctx["device"]
    d = synthetic(s["loader_n"], 1)
    imgs, labels = d["train/images"], d["train/labels"]
    mean, std = bl.stats(imgs)
    args = argparse.Namespace(
        width=s["width"], bf16=mode == "gpu", warmup=2, steps=s["loader_steps"], rounds=s["loader_rounds"]
    )
    dl_dev = bl.DeviceLoader(imgs, labels, mean, std, s["batch"], dev)
    makers = {"igrm on-device": lambda: iter(dl_dev)}
    for w in s["loader_workers"]:
        dl = bl.torchvision_loader(imgs, labels, mean, std, s["batch"], w, dev)
        makers[f"torchvision DataLoader, {w} workers"] = lambda dl=dl: (bl.to_device(b, dev) for b in dl)
    alone = bl.time_loaders(makers, dev, 1)
    steps = bl.time_steps(makers, dev, args)
    res = {
        name: {"loader_img_per_s": alone[name]["images_per_s"], "step_img_per_s": steps[name]["images_per_s"]}
        for name in makers
    }
    ref = res["igrm on-device"]
    for name, r in res.items():
        r["igrm_loader_ratio"] = ref["loader_img_per_s"] / r["loader_img_per_s"]
        r["igrm_step_ratio"] = ref["step_img_per_s"] / r["step_img_per_s"]
    best_dl = max((r for n, r in res.items() if n != "igrm on-device"), key=lambda r: r["step_img_per_s"])
    return {
        "images": s["loader_n"],
        "results": res,
        "goal": "igrm step img/s >= 3x the best DataLoader's",
        "step_ratio_vs_best_dataloader": best_dl["igrm_step_ratio"],
        "goal_met": best_dl["igrm_step_ratio"] >= 3.0,
    }


def sec_bf16_vs_fp32(ctx):
    mode, s = ctx["mode"], SIZES[ctx["mode"]]
    data = synthetic(s["agree_subset"], min(1000, s["n_test"]), seed=1)
    low, a_low, _ = _train(_cfg(mode, epochs=s["agree_epochs"], bf16=BF16[mode]), data)
    ref, a_ref, _ = _train(_cfg(mode, epochs=s["agree_epochs"], bf16=False), data)
    out = {"subset": s["agree_subset"], "epochs": s["agree_epochs"], "bf16": a_low["bf16"], "rtol": BF16_RTOL}
    for k in ("train_loss", "test_loss"):
        rel = np.abs(low[k] - ref[k]) / np.abs(ref[k])
        out[k] = {"bf16": low[k].tolist(), "fp32": ref[k].tolist(), "max_rel_diff": float(rel.max())}
    out["within_tolerance"] = all(out[k]["max_rel_diff"] <= BF16_RTOL for k in ("train_loss", "test_loss"))
    out["autocast_changed_numbers"] = bool(not np.array_equal(low["train_loss"], ref["train_loss"]))
    return out


def sec_explicit(ctx):
    mode, s = ctx["mode"], SIZES[ctx["mode"]]
    data = synthetic(s["explicit_subset"], min(1000, s["n_test"]), seed=2)
    keys = dict(
        method="igrm_explicit",
        fullbatch_subset=s["explicit_subset"],
        epochs=s["explicit_steps"],
        augment=["none"],
        fullbatch_chunk=None,
        penalty_impl="double_backprop",
        test_subset=100,
        eval_every=s["explicit_steps"],  # the steps alone: evaluation is timed by the fullbatch section
    )
    arrays, attrs, _ = _train(_cfg(mode, **keys, bf16=BF16[mode]), data)
    _, a_c, msgs = _train(_cfg(mode, **{**keys, "epochs": 1}, compile=s["compile"]), data)
    wt = [float(t) for t in arrays["wall_time"]]
    ctx["thr_explicit"] = flops_step(ctx, "explicit", s["explicit_subset"]) / wt[-1]
    return {
        "subset": s["explicit_subset"],
        "steps": s["explicit_steps"],
        "bf16": attrs["bf16"],
        "status": attrs["status"],
        "finite": bool(np.isfinite(arrays["train_loss"]).all() and np.isfinite(arrays["grad_norm_sq"]).all()),
        "train_loss": arrays["train_loss"].tolist(),
        "step_wall_s": wt,
        "compile_fell_back": a_c["compiled"] is False and any("runs eager" in m for m in msgs),
    }


def sec_paths(ctx):
    """deterministic: true (deterministic algorithms, NaN fills, no cuDNN autotuner) against
    false (the fast path, the CUDA default), interleaved; the warm epoch of each."""
    import statistics

    mode, s = ctx["mode"], SIZES[ctx["mode"]]
    data = synthetic(s["paths_subset"], min(1000, s["n_test"]), seed=5)
    c = _cfg(mode, epochs=2, test_subset=min(1000, s["n_test"]))
    times, arrays = {"fast": [], "deterministic": []}, {}
    for _ in range(s["paths_reps"]):
        for name, det in (("fast", False), ("deterministic", True)):
            a, at, _ = _train({**c, "deterministic": det}, data)
            times[name].append(float(a["wall_time"][-1]))
            arrays[name] = a
            assert at["deterministic"] is det
    med = {k: statistics.median(v) for k, v in times.items()}
    f, d = arrays["fast"], arrays["deterministic"]
    diff = max(float(np.max(np.abs(f[m] - d[m]) / np.abs(d[m]))) for m in ("train_loss", "test_loss"))
    tol = BF16_RTOL if mode == "gpu" else 0.0
    ctx["paths_ratio"] = med["deterministic"] / med["fast"]
    ctx["paths_match"] = diff <= tol
    return {
        "subset": s["paths_subset"],
        "warm_epoch_s": times,
        "median_s": med,
        "deterministic_over_fast": ctx["paths_ratio"],
        "loss_max_rel_diff": diff,
        "bit_identical": all(np.array_equal(f[k], d[k]) for k in f if not k.endswith("wall_time")),
        "match": ctx["paths_match"],
        "tolerance": tol,
    }


def sec_fullbatch(ctx):
    """Full-batch GD+M steps at the preset's size with its evaluation schedule
    (train.explicit.eval_every, test_subset): 2 x eval_every steps, the last eval_every timed
    (one evaluation among them), amortised seconds and FLOP/s per step."""
    mode, s = ctx["mode"], SIZES[ctx["mode"]]
    e = ctx["paper_cfg"]["train"]["explicit"]
    every = int(e["eval_every"]) if mode == "gpu" else 2
    n_test = (e["test_subset"] or 10_000) if mode == "gpu" else s["n_test"]
    data = synthetic(s["fb_subset"], n_test, seed=6)
    c = _cfg(mode, method="gdm", fullbatch_subset=s["fb_subset"], epochs=2 * every, augment=["none"])
    c.update(test_subset=n_test, eval_every=every, fullbatch_chunk=None)
    a, at, _ = _train(c, data)
    wt = [float(t) for t in a["wall_time"]]
    per_step = sum(wt[every:]) / every
    ctx["thr_fb"] = flops_step(ctx, "train", s["fb_subset"], n_test, every) / per_step
    return {
        "subset": s["fb_subset"],
        "eval_every": every,
        "test_images": n_test,
        "evaluated_steps": [int(i) + 1 for i in np.flatnonzero(np.isfinite(a["test_acc"]))],
        "step_wall_s": wt,
        "amortised_step_s": per_step,
        "flops_per_s": ctx["thr_fb"],
        "status": at["status"],
    }


def sec_ensemble(ctx):
    """K runs (seeds 0..K-1) in one process, one vmapped step (igrm.ensemble), K in ens_ks:
    aggregate img/s of the warm epoch against K = 1, and member 0 against seed 0 alone."""
    from igrm.ensemble import train_ensemble

    mode, s = ctx["mode"], SIZES[ctx["mode"]]
    n, n_test = s["ens_subset"], s["ens_test"]
    data = synthetic(n, n_test, seed=7)
    base = _cfg(mode, epochs=2, test_subset=n_test)
    alone, _, _ = _train(base, data)
    out = {"subset": n, "test": n_test, "ks": {}, "alone_warm_epoch_s": float(alone["wall_time"][-1])}
    for k in s["ens_ks"]:
        cfgs = [{**base, "seed": i} for i in range(k)]
        res = train_ensemble(cfgs, data, [None] * k, [None] * k)
        _sync(ctx)
        t = max(float(a["wall_time"][-1]) for a, _ in res)  # the epoch of all members, evaluations included
        a0 = res[0][0]
        diff = max(float(np.max(np.abs(a0[m] - alone[m]) / np.abs(alone[m]))) for m in ("train_loss", "test_loss"))
        out["ks"][str(k)] = {"warm_epoch_s": t, "img_per_s": k * n / t, "member0_loss_max_rel_diff": diff}
        out["ks"][str(k)]["member0_matches_alone"] = diff <= s["ens_rtol"]
    thr1 = out["ks"]["1"]["img_per_s"]
    for r in out["ks"].values():
        r["gpu_hour_factor"] = r["img_per_s"] / thr1
    ok = {k: r for k, r in out["ks"].items() if r["member0_matches_alone"]}
    best = max(ok, key=lambda k: ok[k]["gpu_hour_factor"]) if ok else "1"
    out["best_k"], out["best_factor"] = int(best), out["ks"][best]["gpu_hour_factor"]
    ctx["ens_factor"], ctx["ens_k"] = out["best_factor"], out["best_k"]
    ctx["ens_all"] = {int(k): (r["gpu_hour_factor"], r["member0_matches_alone"]) for k, r in out["ks"].items()}
    return out


CONC_RUN = textwrap.dedent("""
    import json, sys, time, numpy as np, torch
    sys.path.insert(0, {repo!r})
    torch.set_num_threads(1)
    from igrm.pipeline.gpuslots import acquire_gpu
    cfg, data_npz, out_npz, k = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    with acquire_gpu(n_gpus=1, lock_dir=sys.argv[5], runs_per_gpu=k, timeout=0) as ids:
        from igrm.train import train
        z = np.load(data_npz)
        data = {{n.replace("__", "/"): z[n] for n in z.files}}
        data["attrs"] = json.loads(str(z["attrs_json"]))
        if cfg["device"] == "cuda":   # CUDA context, kernels, cudnn autotuning: before the start
            warm = {{**cfg, "epochs": 1, "train_subset": 2 * cfg["batch_size"], "test_subset": 2}}
            train(warm, data, None, lambda m: None)
        print("ready", flush=True)
        sys.stdin.readline()
        t0 = time.perf_counter()
        arrays, attrs = train(cfg, data, None, lambda m: None)
        if cfg["device"] == "cuda":
            torch.cuda.synchronize()
        arrays["seconds"] = np.asarray(time.perf_counter() - t0)
    np.savez(out_npz, **arrays)
""")


def sec_concurrency(ctx):
    mode, s = ctx["mode"], SIZES[ctx["mode"]]
    tmp = ctx["tmp"] / "conc"
    tmp.mkdir()
    d = synthetic(s["conc_subset"], min(1000, s["n_test"]), seed=3)
    np.savez(
        tmp / "data.npz",
        **{k.replace("/", "__"): v for k, v in d.items() if k != "attrs"},
        attrs_json=json.dumps(d["attrs"]),
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "IGRM_RUNS_PER_GPU")}
    code = CONC_RUN.format(repo=str(REPO))
    out = {"subset": s["conc_subset"], "epochs": s["conc_epochs"], "ks": {}}
    # the reference: seed 0 alone, in this process (its throughput is the baseline where k=1 is not run)
    ref_cfg = _cfg(mode, epochs=s["conc_epochs"], seed=0, test_subset=s["conc_test"])
    if mode == "gpu":
        _train({**ref_cfg, "epochs": 1, "train_subset": 2 * s["batch"], "test_subset": 2}, d)  # warm-up
    sync = torch.cuda.synchronize if mode == "gpu" else (lambda: None)
    t0 = time.perf_counter()
    alone, _, _ = _train(ref_cfg, d)
    sync()
    t_alone = time.perf_counter() - t0
    out["alone_in_process"] = {"wall_s": t_alone, "img_per_s": s["conc_subset"] * s["conc_epochs"] / t_alone}
    for k in s["conc_ks"]:
        cfgs = [_cfg(mode, epochs=s["conc_epochs"], seed=i, test_subset=s["conc_test"]) for i in range(k)]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    code,
                    json.dumps(c),
                    str(tmp / "data.npz"),
                    str(tmp / f"k{k}_{i}.npz"),
                    str(k),
                    str(tmp / f"locks{k}"),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO,
            )
            for i, c in enumerate(cfgs)
        ]
        for p in procs:
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"concurrent run did not start: {line!r} {p.communicate()}")
        t0 = time.perf_counter()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            p.stdin.close()
            if p.wait(timeout=600) != 0:
                raise RuntimeError(f"concurrent run failed (k={k})")
        wall = time.perf_counter() - t0
        runs = [np.load(tmp / f"k{k}_{i}.npz") for i in range(k)]
        images = k * s["conc_subset"] * s["conc_epochs"]
        per_run = [float(z["seconds"]) for z in runs]
        # all start at the signal: the aggregate rate is over the slowest run's training time
        # (wall_s adds the processes' exit and result writing)
        r = {"wall_s": wall, "per_run_s": per_run, "img_per_s": images / max(per_run)}
        z = runs[0]
        diff = max(float(np.max(np.abs(z[m] - alone[m]) / np.abs(alone[m]))) for m in ("train_loss", "test_loss"))
        r["seed0_loss_max_rel_diff_vs_alone"] = diff
        r["seed0_bit_identical_to_alone"] = all(
            np.array_equal(z[n], alone[n])
            for n in alone
            if n.startswith("final_state/") or n in ("train_loss", "test_loss", "grad_norm_sq")
        )
        r["seed0_matches_alone"] = r["seed0_bit_identical_to_alone"] if mode == "cpu" else diff <= s["conc_rtol"]
        out["ks"][str(k)] = r
    thr1 = out["ks"]["1"]["img_per_s"] if "1" in out["ks"] else out["alone_in_process"]["img_per_s"]
    for r in out["ks"].values():
        r["gpu_hour_factor"] = r["img_per_s"] / thr1
    out["baseline"] = "k=1 (one process)" if "1" in out["ks"] else "the run alone in this process"
    best = max(out["ks"], key=lambda k: out["ks"][k]["gpu_hour_factor"])
    out["best_k"], out["best_factor"] = int(best), out["ks"][best]["gpu_hour_factor"]
    if out["best_factor"] < 1.0:  # sharing does not pay: one run per GPU
        out["best_k"], out["best_factor"] = 1, 1.0
    out["tolerance"] = "bit-identical (CPU)" if mode == "cpu" else f"relative {s['conc_rtol']} (bf16, cudnn.benchmark)"
    ctx["conc_factor"], ctx["conc_k"] = out["best_factor"], out["best_k"]
    ctx["conc_all"] = {int(k): (r["gpu_hour_factor"], r["seed0_matches_alone"]) for k, r in out["ks"].items()}
    return out


def sec_snakemake(ctx):
    from igrm.pipeline.config import num
    from tests.archives import make_cifar10, md5_of

    mode, s = ctx["mode"], SIZES[ctx["mode"]]
    wd = ctx["tmp"] / "smk"
    wd.mkdir()
    archive, _ = make_cifar10(
        wd / "staged" / "cifar-10-binary.tar.gz", n_per_batch=s["smk_per_batch"], n_test=s["smk_test"]
    )
    (wd / "data.yaml").write_text(
        f"data:\n  cifar10:\n    local: {archive}\n    md5: {{cifar-10-binary.tar.gz: {md5_of(archive)}}}\n"
    )
    if mode == "gpu":
        base, model, lr, betas = REPO / "presets" / "paper.yaml", "resnet18", 0.1, (0.0, 0.9)
        over = "train:\n  epochs: 2\n  runs_per_gpu: 2\n  checkpoint_every: 1\n"
    else:
        base, model, lr, betas = REPO / "tests" / "configs" / "tiny.yaml", "small_cnn", 0.1, (0.0, 0.9)
        over = "train:\n  epochs: 2\n  runs_per_gpu: 2\n  gpus_per_job: 1\n  checkpoint_every: 1\n"
    (wd / "over.yaml").write_text(over)
    # the two jobs must fit at once: cores >= 2 x train.threads (the paper preset: 4 each)
    targets = [f"results/train/cifar10/{model}/sgdm/beta{num(b)}_eta{num(lr)}_seed0.h5" for b in betas]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "IGRM_GPU_LOCK_DIR": str(wd / "locks")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    if mode == "cpu":
        env["IGRM_GPUS"] = "1"  # one pretend GPU: the slot path runs, training stays on the CPU
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(wd),
        *targets,
        "--profile",
        str(REPO / "profiles" / "local"),
        "--cores",
        str(max(2, os.cpu_count() or 2)) if mode == "gpu" else "2",
        "--resources",
        "gpu=2",
        "--configfile",
        str(base),
        str(wd / "data.yaml"),
        str(wd / "over.yaml"),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    wall = time.perf_counter() - t0
    out = {"command": " ".join(cmd[1:]), "returncode": proc.returncode, "wall_s": wall, "targets": targets}
    if proc.returncode != 0:
        out["stderr_tail"] = proc.stderr[-3000:]
        raise RuntimeError(f"snakemake failed ({proc.returncode}): {proc.stderr[-1500:]}")
    import h5py

    runs = []
    for t in targets:
        with h5py.File(wd / t, "r") as f:
            a = dict(f.attrs)
            runs.append(
                {
                    "target": t,
                    "device": str(a.get("device")),
                    "bf16": bool(a.get("bf16")),
                    "epoch_wall_s": [float(x) for x in f["wall_time"][()]],
                    "started": str(a.get("started", "")),
                    "finished": str(a.get("finished", "")),
                }
            )
    logs = "".join(p.read_text() for p in (wd / "logs" / "train").rglob("*.log"))
    out["runs"] = runs
    out["slots_taken"] = logs.count("GPU slot(s)")
    out["two_jobs_concurrent"] = _overlap(runs)
    # the first job's HDF5 against the same run alone in this process (its stored config, the
    # prepared data): bit-identical on the CPU. GPU mode skips it (the concurrency section
    # compares shared and alone runs there, within the bf16 tolerance; GPU minutes are few)
    if mode == "gpu":
        return out
    from igrm.data import load_prepared
    from igrm.pipeline.io import read_h5

    shared, attrs = read_h5(wd / targets[0])
    cfg = {k: v for k, v in json.loads(attrs["config"]).items() if k != "dataset"}
    alone, _, _ = _train(cfg, load_prepared(wd / "resources" / "data" / "cifar10.h5"))
    names = [n for n in alone if n.startswith("final_state/")] + ["train_loss", "test_loss", "grad_norm_sq"]
    out["first_job_bit_identical_to_alone"] = all(np.array_equal(np.asarray(shared[n]), alone[n]) for n in names)
    out["first_job_loss_max_rel_diff_vs_alone"] = max(
        float(np.max(np.abs(np.asarray(shared[m]) - alone[m]) / np.abs(alone[m]))) for m in ("train_loss", "test_loss")
    )
    return out


def _overlap(runs):
    from datetime import datetime

    try:
        iv = [(datetime.fromisoformat(r["started"]), datetime.fromisoformat(r["finished"])) for r in runs]
    except ValueError:
        return None
    return bool(iv[0][0] < iv[1][1] and iv[1][0] < iv[0][1])


def sec_estimate(ctx):
    """The preset's GPU-hours for each way of running it, from its FLOPs by part
    (igrm.pipeline.plan.work) over the throughputs measured above; the fastest way whose runs
    match the plain ones is picked."""
    w = ctx["paper_plan"]
    thr = ctx.get("thr_sgd")
    if not thr or "thr_fb" not in ctx or "thr_explicit" not in ctx:
        raise RuntimeError("needs the epoch, explicit_bf16 and fullbatch sections")
    fl = w["flops"]
    sgd = fl["sgd_train"] + fl["sgd_eval"] + fl["sharpness"] + fl["noise"]
    fb_h = (
        (fl["fullbatch_train"] + fl["fullbatch_eval"]) / ctx["thr_fb"] + fl["explicit_train"] / ctx["thr_explicit"]
    ) / 3600
    base = thr["eager"]
    ways = {"eager, fast path": (base, True)}
    if "paths_ratio" in ctx:
        ways["eager, deterministic"] = (base / ctx["paths_ratio"], True)
    if "compiled" in thr:
        ways["compiled"] = (thr["compiled"], True)
    for k, (f, ok) in ctx.get("conc_all", {}).items():
        ways[f"runs_per_gpu {k}"] = (base * f, ok)
    for k, (f, ok) in ctx.get("ens_all", {}).items():
        ways[f"ensemble {k}"] = (base * f, ok)
    hours = {name: {"gpu_hours": sgd / t / 3600 + fb_h, "matches": ok} for name, (t, ok) in ways.items()}
    best = min((n for n in hours if hours[n]["matches"]), key=lambda n: hours[n]["gpu_hours"])
    return {
        "formula": "GPU-h = (sgd_train + sgd_eval + sharpness + noise) / thr_sgd(way) + (fullbatch_train +"
        " fullbatch_eval) / thr_fb + explicit_train / thr_explicit, FLOPs from igrm.pipeline.plan.work",
        "preset": str(PRESET.relative_to(REPO)),
        "runs": {"sgd": w["sgd_runs"], "fullbatch": w["fullbatch_runs"], "jobs": w["jobs"]},
        "flops": fl,
        "thr_sgd_flops_per_s": thr,
        "thr_fb_flops_per_s": ctx["thr_fb"],
        "thr_explicit_flops_per_s": ctx["thr_explicit"],
        "ways": hours,
        "best": best,
        "gpu_hours_best": hours[best]["gpu_hours"],
        "gpu_hours_one_run_per_gpu": hours["eager, fast path"]["gpu_hours"],
        "goal_4h_met": hours[best]["gpu_hours"] <= 4.0,
        "note": "" if ctx["mode"] == "gpu" else "CPU mode: tiny model, not a GPU number",
    }


#: the sections of --cpu-smoke (no subprocesses, no Snakemake, no compile)
SMOKE = ("epoch", "paths", "explicit_bf16", "fullbatch", "ensemble", "estimate")

SECTIONS = [
    ("card", sec_card),
    ("epoch", sec_epoch),
    ("loader", sec_loader),
    ("bf16_vs_fp32", sec_bf16_vs_fp32),
    ("explicit_bf16", sec_explicit),
    ("paths", sec_paths),
    ("fullbatch", sec_fullbatch),
    ("ensemble", sec_ensemble),
    ("concurrency", sec_concurrency),
    ("snakemake", sec_snakemake),
    ("estimate", sec_estimate),
]


# ------------------------------------------------------------------ report
def markdown(rep) -> str:
    L = [f"# GPU check ({rep['mode']} mode)", ""]
    if rep["no_gpu"]:
        L += [
            "**No GPU was found** (torch.cuda.is_available() is False): every step ran on the CPU at a tiny size; "
            "no number below is a GPU measurement.",
            "",
        ]
    c = rep["sections"].get("card", {}).get("result", {})
    L += [
        f"Machine: {c.get('gpu', 'no GPU')}, driver {c.get('driver', '-')}, torch's CUDA build {c.get('cuda_build')}, "
        f"torch {c.get('torch')}, {c.get('nproc')} CPUs ({c.get('cpu_model')}), host {c.get('host')}; "
        f"started {rep['started']}, total {rep['total_s']:.1f} s.",
        "",
    ]
    L += ["| section | status | seconds | key numbers |", "|---|---|---|---|"]
    for name, sec in rep["sections"].items():
        L.append(f"| {name} | {sec['status']} | {sec['seconds']:.1f} | {_key_numbers(name, sec)} |")
    L += ["", "Full numbers: report.json."]
    return "\n".join(L) + "\n"


def _key_numbers(name, sec):
    r = sec.get("result")
    if sec["status"] != "ok":
        return (sec.get("error") or "").splitlines()[-1][:200] if sec.get("error") else sec["status"]
    f = lambda x: f"{x:.3g}"
    if name == "card":
        return f"bf16 peak {f(r['bf16_peak_flops'] / 1e12) + ' TFLOP/s' if r['bf16_peak_flops'] else 'unknown'}"
    if name == "epoch":
        return "; ".join(
            f"{k}: {f(v['warm_epoch_s'])} s/epoch, {f(v['img_per_s'])} img/s"
            + (f", {100 * v['fraction_of_bf16_peak']:.1f}% of peak" if "fraction_of_bf16_peak" in v else "")
            + f" (1st epoch +{f(v['first_epoch_overhead_s'])} s)"
            for k, v in r["runs"].items()
        )
    if name == "loader":
        return (
            f"igrm step / best DataLoader step {f(r['step_ratio_vs_best_dataloader'])}x "
            f"(goal 3x: {'met' if r['goal_met'] else 'not met'})"
        )
    if name == "bf16_vs_fp32":
        return (
            f"max rel. diff train {f(r['train_loss']['max_rel_diff'])}, test {f(r['test_loss']['max_rel_diff'])}"
            f" (tolerance {r['rtol']}: {'within' if r['within_tolerance'] else 'OUTSIDE'})"
        )
    if name == "explicit_bf16":
        return (
            f"finite {r['finite']}, {f(r['step_wall_s'][-1])} s/step at {r['subset']} examples, "
            f"compile falls back {r['compile_fell_back']}"
        )
    if name == "concurrency":
        return "; ".join(
            f"k={k}: {f(v['img_per_s'])} img/s, x{f(v['gpu_hour_factor'])}, matches alone {v['seed0_matches_alone']}"
            for k, v in r["ks"].items()
        )
    if name == "snakemake":
        return (
            f"{f(r['wall_s'])} s, 2 jobs concurrent: {r['two_jobs_concurrent']}, first job vs alone: "
            f"{'bit-identical' if r['first_job_bit_identical_to_alone'] else 'max rel. loss diff ' + f(r['first_job_loss_max_rel_diff_vs_alone'])}, "
            f"epochs {[[round(t, 2) for t in x['epoch_wall_s']] for x in r['runs']]}"
        )
    if name == "paths":
        return f"deterministic / fast {f(r['deterministic_over_fast'])}x, match {r['match']}"
    if name == "fullbatch":
        return f"{f(r['amortised_step_s'])} s/step at {r['subset']} examples, eval every {r['eval_every']}"
    if name == "ensemble":
        return "; ".join(
            f"K={k}: {f(v['img_per_s'])} img/s, x{f(v['gpu_hour_factor'])}, matches {v['member0_matches_alone']}"
            for k, v in r["ks"].items()
        )
    if name == "estimate":
        return (
            f"{r['runs']['sgd']} SGD + {r['runs']['fullbatch']} full-batch runs; "
            + "; ".join(f"{n}: {f(v['gpu_hours'])} GPU-h" for n, v in r["ways"].items())
            + f"; best: {r['best']} ({f(r['gpu_hours_best'])} GPU-h; goal <= 4: {'met' if r['goal_4h_met'] else 'not met'})"
        )
    return ""


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cpu", action="store_true", help="the CPU mode even where CUDA is available")
    p.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="the CPU mode's timing and estimate sections only, no compile (a test: tests/test_paper_scale.py)",
    )
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--only", nargs="+", default=None, help="run only these sections (card always runs)")
    p.add_argument("--budget-s", type=float, default=480.0, help="skip the remaining sections after this")
    args = p.parse_args(argv)
    if args.cpu_smoke:
        args.cpu, args.only = True, args.only or list(SMOKE)
        SIZES["cpu"]["compile"] = False
    torch.set_num_threads(1 if args.cpu or not torch.cuda.is_available() else min(4, os.cpu_count() or 1))
    mode = "gpu" if torch.cuda.is_available() and not args.cpu else "cpu"
    if mode == "gpu":
        torch.backends.cudnn.benchmark = True
    paper_cfg, paper = paper_plan()
    ctx = {
        "paper_cfg": paper_cfg,
        "paper_plan": paper,
        "mode": mode,
        "device": torch.device("cuda" if mode == "gpu" else "cpu"),
        "tmp": Path(tempfile.mkdtemp(prefix="igrm-gpu-check-")),
    }
    rep = {
        "mode": mode,
        "no_gpu": not torch.cuda.is_available(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sizes": SIZES[mode],
        "sections": {},
    }
    if rep["no_gpu"]:
        print(
            "gpu_check: NO GPU FOUND (torch.cuda.is_available() is False): running the CPU mode at a tiny size",
            flush=True,
        )
    t_all = time.perf_counter()
    try:
        for name, fn in SECTIONS:
            if args.only and name != "card" and name not in args.only:
                continue
            if time.perf_counter() - t_all > args.budget_s:
                rep["sections"][name] = {"status": "skipped (time budget)", "seconds": 0.0}
                continue
            t0 = time.perf_counter()
            try:
                rep["sections"][name] = {"status": "ok", "result": fn(ctx)}
            except Exception as e:  # each section on its own: the report records the failure
                rep["sections"][name] = {
                    "status": "failed",
                    "error": f"{type(e).__name__}: {e}",
                    "traceback": traceback.format_exc()[-4000:],
                }
            rep["sections"][name]["seconds"] = time.perf_counter() - t0
            print(
                f"gpu_check: {name}: {rep['sections'][name]['status']} ({rep['sections'][name]['seconds']:.1f} s)"
                f" {_key_numbers(name, rep['sections'][name])}",
                flush=True,
            )
    finally:
        shutil.rmtree(ctx["tmp"], ignore_errors=True)
    rep["total_s"] = time.perf_counter() - t_all
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(json.dumps(rep, indent=1, default=str) + "\n")
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(markdown(rep))
    print(f"gpu_check: wrote {out / 'report.json'} and {out / 'report.md'} ({rep['total_s']:.1f} s)", flush=True)
    return rep


if __name__ == "__main__":
    r = main()
    sys.exit(0 if all(s["status"] == "ok" for s in r["sections"].values()) else 1)
