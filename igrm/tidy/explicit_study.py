"""Tidy table of the explicit-baseline tracking study (results/tidy/explicit_study.csv) from its
result file (``(arrays, attrs)`` of :func:`igrm.pipeline.io.read_h5`; :func:`igrm.explicit_study.explicit_study`):
one row per (setting, seed, run, record), with the range monitor's expansion parameters
(docs/theory.md (T75))."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..explicit_study import range_monitor

VALUES = ["param_dist", "function_dist", "train_loss", "test_acc", "lambda_max", "lambda_residual", "grad_norm"]
COLUMNS = [
    "setting",
    "beta",
    "eta",
    "h",
    "mu_star",
    "seed",
    "run",
    "mu_fraction",
    "mu",
    "record",
    "s",
    *VALUES,
    "epsilon",
    "penalty_curvature",
    "diverged",
]


def _attr(v):
    return json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v


def tidy_explicit_study(arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> pd.DataFrame:
    """Rows: setting (tag), beta, eta, h, mu_star, seed, run ('gdm' or 'mu<f>'), mu_fraction
    (NaN for gdm), mu (the run's penalty; μ* for GD+M, whose implicit regulariser it stands
    for), record, s (= kη, (T70)), the recorded values, ``epsilon`` = η|λ|/(1−β) and
    ``penalty_curvature`` = 2μ|λ| at the run's own λ_max ((T75)), diverged."""
    runs = [str(r) for r in _attr(attrs["runs"])]
    fr = [float(f) for f in _attr(attrs["mu_fractions"])]
    seeds = [int(s) for s in _attr(attrs["seeds"])]
    rows = []
    for st in _attr(attrs["settings"]):
        tag, beta, eta = st["tag"], float(st["beta"]), float(st["eta"])
        s = np.asarray(arrays[f"{tag}/s"], float)
        div = np.asarray(arrays[f"{tag}/diverged"], bool)
        vals = {n: np.asarray(arrays[f"{tag}/{n}"], float) for n in VALUES}
        for i, seed in enumerate(seeds):
            for r, run in enumerate(runs):
                f = np.nan if run == "gdm" else fr[r - 1]
                mu = float(st["mu_star"]) * (1.0 if run == "gdm" else f)
                lam = vals["lambda_max"][i, r]
                mon = range_monitor(
                    lam=lam, beta=beta, eta=eta, mu=mu, max_epsilon=np.inf, max_penalty_curvature=np.inf
                )
                for k in range(len(s)):
                    rows.append(
                        [
                            tag,
                            beta,
                            eta,
                            float(st["h"]),
                            float(st["mu_star"]),
                            seed,
                            run,
                            f,
                            mu,
                            k,
                            s[k],
                            *(vals[n][i, r, k] for n in VALUES),
                            mon["epsilon"][k],
                            mon["penalty_curvature"][k],
                            bool(div[i, r]),
                        ]
                    )
    return pd.DataFrame(rows, columns=COLUMNS)
