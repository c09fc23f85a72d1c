"""Synthetic CIFAR-format data for the benchmarks (gpu_check.py, bench_paper_scale.py): random
uint8 images 32x32x3 and labels 0-9 in igrm.train's data layout, CIFAR-10's channel statistics."""

from __future__ import annotations

import numpy as np


def synthetic(n_train, n_test, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "train/images": rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
        "train/labels": rng.integers(0, 10, n_train).astype(np.int64),
        "test/images": rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
        "test/labels": rng.integers(0, 10, n_test).astype(np.int64),
        "attrs": {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26], "num_classes": 10},
    }
