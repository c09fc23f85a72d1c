"""Measurement sweep behind the design of the observation claims (docs/observations.md).

Trains SGD+M runs on the prepared Fashion-MNIST file at constant learning rate for
``--epochs`` epochs and writes one row per (setting, run, epoch) to a CSV: test accuracy,
train loss, wall time. At constant lr a run of E epochs is the prefix of a longer run, so
one long run gives every shorter design's final accuracy, the levelling-off epoch and the
spread over any window. Settings are interleaved seed by seed in one process (so load drifts
hit every setting alike). Sharpness off (points 0): this sweep measures accuracy and time.

    python benchmarks/sweep_observations.py --data /tmp/fm.h5 --out sweep.csv \
        --seeds 0 2 4 --epochs 40 --settings main
"""

from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import time
from pathlib import Path

import torch

from igrm.data import load_prepared
from igrm.pipeline.config import schema_defaults
from igrm.pipeline.targets import train_job_cfg
from igrm.train import train

CONFIG = {"train": schema_defaults("train"), "noise": {"runs": [], "points": []}}

#: (label, model, width, bf16, method keys) per setting group; runs are (beta, eta)
GROUPS = {
    # obs 1 (plain SGD over h = eta), obs 3 (beta at eta 0.1), small-eta obs 3 (eta 0.01)
    "main": [
        (
            "cnn0.5_bf16",
            "small_cnn",
            0.5,
            "always",
            [
                (0.0, 0.1),
                (0.5, 0.1),
                (0.8, 0.1),
                (0.9, 0.1),
                (0.0, 0.025),
                (0.0, 0.05),
                (0.0, 0.2),
                (0.0, 0.01),
                (0.9, 0.01),
            ],
        ),
    ],
    # does bf16 autocast on CPU move accuracy? the same runs in float32; and ResNet-18 x0.125 bf16
    "check": [
        ("cnn0.5_fp32", "small_cnn", 0.5, False, [(0.0, 0.1), (0.9, 0.1)]),
        ("resnet0.125_bf16", "resnet18", 0.125, "always", [(0.0, 0.1), (0.9, 0.1)]),
    ],
}


def run_cfg(model, width, bf16, beta, eta, seed, epochs, train_subset, batch):
    cfg = train_job_cfg(CONFIG, "fashion_mnist", "sgdm", beta, eta, seed)
    cfg.update(
        model=model,
        width=width,
        bf16=bf16,
        epochs=epochs,
        train_subset=train_subset,
        batch_size=batch,
        checkpoint_every=10_000,
        device="cpu",
    )
    cfg["sharpness"] = {**cfg["sharpness"], "points": 0}
    return cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--settings", default="main")
    ap.add_argument("--train-subset", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = load_prepared(a.data)
    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout.strip()
    out = Path(a.out)
    new = not out.exists()
    with out.open("a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(
                [
                    "setting",
                    "model",
                    "width",
                    "bf16",
                    "train_subset",
                    "batch",
                    "beta",
                    "eta",
                    "seed",
                    "epoch",
                    "test_acc",
                    "train_loss",
                    "train_acc",
                    "wall_time",
                    "status",
                    "cpu",
                    "host",
                ]
            )
        for seed in a.seeds:  # interleaved: every setting once per seed
            for label, model, width, bf16, runs in GROUPS[a.settings]:
                for beta, eta in runs:
                    cfg = run_cfg(model, width, bf16, beta, eta, seed, a.epochs, a.train_subset, a.batch)
                    t0 = time.perf_counter()
                    ckpt = Path(f"/tmp/igrm23/ckpt_{label}_{beta}_{eta}_{seed}_{a.train_subset}_{a.batch}")
                    arr, attrs = train(cfg, data, ckpt, None)
                    dt = time.perf_counter() - t0
                    for i in range(len(arr["epoch"])):
                        w.writerow(
                            [
                                label,
                                model,
                                width,
                                bf16,
                                a.train_subset,
                                a.batch,
                                beta,
                                eta,
                                seed,
                                int(arr["epoch"][i]),
                                float(arr["test_acc"][i]),
                                float(arr["train_loss"][i]),
                                float(arr["train_acc"][i]),
                                float(arr["wall_time"][i]),
                                attrs["status"],
                                cpu,
                                platform.node(),
                            ]
                        )
                    fh.flush()
                    print(
                        f"{label} beta={beta} eta={eta} seed={seed}: {dt:.1f}s final {arr['test_acc'][-1]:.4f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
