"""CPU ratios of issue 25's changes, side by side in one process, interleaved repetitions.

    PYTHONPATH=. python benchmarks/bench_paper_scale.py [--reps 5] [--out benchmarks/out/paper_scale.json]

1. ``deterministic``: one SGD+M epoch (ResNet-18 x0.125, batch 128, crop+flip, the default
   run's model) with ``deterministic: true`` (torch deterministic algorithms + NaN fills of new
   tensors) against ``false``; the results are compared bit for bit.
2. ``fullbatch_eval``: a full-batch GD+M run at the default config's sizes (128 examples,
   500 test images, 60 steps) evaluating after every step against ``eval_every: 10``.
3. ``epoch0``: the epoch-0 sharpness point measured (default train.sharpness) against read from
   the shared file (igrm.epoch0).
4. ``ensemble``: K = 4 seeds in one vmapped step (igrm.ensemble) against the 4 runs one by one.

Each timing is the median over ``--reps`` interleaved repetitions (A B A B ...), one thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from synthetic_data import synthetic


def cfg(**keys):
    from tests._train_cfg import train_cfg

    base = dict(device="cpu", train_subset=None, test_subset=None, checkpoint_every=1000, epochs=1)
    return train_cfg(**{**base, **keys})


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(fns: dict, reps: int) -> dict:
    """{name: [seconds per repetition]}, the functions called in turn, ``reps`` rounds."""
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            times[k].append(timed(fn)[0])
    return times


def _ratio(times, slow, fast):
    return {
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "all_s": times,
        "ratio": statistics.median(times[slow]) / statistics.median(times[fast]),
    }


def deterministic(reps):
    from igrm.train import train

    data = synthetic(512, 256)
    c = cfg(
        sharpness={
            "points": 0,
            "algorithm": "lanczos",
            "iters": 6,
            "final_iters": 12,
            "tol": 0.01,
            "subset": 32,
            "trace_probes": 3,
        }
    )
    runs = {v: (lambda v=v: train({**c, "deterministic": v}, data, None, None)) for v in (True, False)}
    a, b = runs[True](), runs[False]()
    same = all(np.array_equal(a[0][k], b[0][k]) for k in a[0] if not k.endswith("wall_time"))
    out = _ratio(interleaved({"true": runs[True], "false": runs[False]}, reps), "true", "false")
    return {**out, "bit_identical": same, "setting": "ResNet-18 x0.125, 512 images, batch 128, 1 epoch + 256 test"}


def fullbatch_eval(reps):
    from igrm.train import train

    data = synthetic(256, 500)
    c = cfg(method="gdm", beta=0.9, lr=0.1, fullbatch_subset=128, epochs=60, test_subset=500, augment=["none"])
    c["sharpness"] = {**c["sharpness"], "points": 0}
    runs = {str(k): (lambda k=k: train({**c, "eval_every": k}, data, None, None)) for k in (1, 10)}
    out = _ratio(
        interleaved({"every_step": runs["1"], "eval_every_10": runs["10"]}, reps), "every_step", "eval_every_10"
    )
    return {**out, "setting": "GD+M, ResNet-18 x0.125, 128 examples full batch, 60 steps, 500 test images"}


def epoch0(reps):
    from igrm.train import train

    data = synthetic(512, 64)
    c = cfg(train_subset=512, epochs=1)
    c["sharpness"] = {**c["sharpness"], "points": 1}  # the initialisation only
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        measured, read = [], []
        for r in range(reps):
            a, _ = train({**c, "beta": 0.9}, data, root / f"r{r}" / "a", None)  # fresh folder: measures
            b, _ = train({**c, "beta": 0.5}, data, root / f"r{r}" / "b", None)  # its sibling: reads
            measured.append(float(a["sharpness/wall_time"][0]))
            read.append(float(b["sharpness/wall_time"][0]))
            assert a["sharpness/lambda_max"][0] == b["sharpness/lambda_max"][0]
        epoch = float(np.median([a["wall_time"][0]]))
    return {
        "median_s": {"measured": statistics.median(measured), "read": statistics.median(read)},
        "epoch_s": epoch,
        "saved_per_shared_run_s": statistics.median(measured) - statistics.median(read),
        "setting": "default train.sharpness (lanczos, 6 products, 3 probes, 32 examples), ResNet-18 x0.125",
    }


def ensemble(reps, k=4):
    from igrm.ensemble import train_ensemble
    from igrm.train import train

    data = synthetic(256, 64)
    cs = [cfg(seed=s, beta=0.9, lr=0.1, augment=["crop+flip"]) for s in range(k)]
    for c in cs:
        c["sharpness"] = {**c["sharpness"], "points": 0}
    fns = {
        "sequential": lambda: [train(c, data, None, None) for c in cs],
        f"ensemble_k{k}": lambda: train_ensemble(cs, data, [None] * k, [None] * k),
    }
    out = _ratio(interleaved(fns, reps), "sequential", f"ensemble_k{k}")
    return {**out, "setting": f"{k} seeds, ResNet-18 x0.125, 256 images, batch 128, 1 epoch + 64 test"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "paper_scale.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from bench_loader import cpu_model

    rep = {"cpu": cpu_model(), "threads": 1, "torch": torch.__version__, "reps": args.reps, "results": {}}
    for name, fn in (
        ("deterministic", deterministic),
        ("fullbatch_eval", fullbatch_eval),
        ("epoch0", epoch0),
        ("ensemble", ensemble),
    ):
        if args.only and name not in args.only:
            continue
        rep["results"][name] = r = fn(args.reps)
        print(name, json.dumps({k: v for k, v in r.items() if k != "all_s"}), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rep, indent=1) + "\n")
    return rep


if __name__ == "__main__":
    main()
