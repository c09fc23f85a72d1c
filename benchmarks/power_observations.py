"""Power table of the observation claims (docs/observations.md) from measured curves.

Reads per-epoch test accuracies, either this folder's sweep CSVs
(benchmarks/sweep_observations.py: setting, beta, eta, seed, epoch, test_acc) or a pipeline
run's tidy tables (results/tidy/cifar_{beta,lr}_epochs.csv), and for each observation and
candidate length E (epochs at constant lr) prints the per-seed effects ((T150)), their mean
and SD, the seeds per level that decide either way at the declared margin ((T152)) and the
probability that n seeds decide at the observed effect ((T152) with θ = the observed mean).

    python benchmarks/power_observations.py /tmp/sweepA.csv /tmp/sweepB.csv --setting cnn0.5_bf16
    python benchmarks/power_observations.py results/tidy/cifar_beta_epochs.csv results/tidy/cifar_lr_epochs.csv
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd

from igrm.pipeline.config import schema_defaults
from igrm.stats import FAILS, INCONCLUSIVE, REPRODUCES, decision_probabilities, seed_slopes, seeds_to_decide
from igrm.tidy.runs import plateau

A = schema_defaults("train/analysis")


def load(paths, setting):
    d = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    if "setting" in d:
        d = d[d["setting"] == setting] if setting else d
    d = d.dropna(subset=["test_acc"])
    return d[["beta", "eta", "seed", "epoch", "test_acc"]]


def per_seed(d, levels, x_of, value, epochs):
    """(n_seeds, k) table of ``value(curve[:epochs])`` per seed and level; levels = [(beta, eta)]."""
    seeds = sorted(set(d["seed"]))
    tab = np.full((len(seeds), len(levels)), np.nan)
    for j, (b, e) in enumerate(levels):
        g = d[np.isclose(d["beta"], b) & np.isclose(d["eta"], e)]
        for i, s in enumerate(seeds):
            a = g[g["seed"] == s].sort_values("epoch")["test_acc"].to_numpy()
            if len(a) >= epochs:
                tab[i, j] = value(a[:epochs])
    x = np.array([x_of(b, e) for b, e in levels])
    ok = np.isfinite(tab).all(1)
    return x, tab[ok]


def report(name, x, tab, margin, n_plan, unit_scale, unit, sd_scale=None):
    sd_scale = sd_scale or unit_scale
    b = seed_slopes(x, tab) * np.ptp(x)
    n = len(b)
    if n < 2:
        return f"| {name} | {n} | – | – | – | – |"
    m, sd = float(b.mean()), float(b.std(ddof=1))
    need = seeds_to_decide(sd, margin, 0.95)
    p = decision_probabilities(m, sd, n_plan, margin, 0.95)
    return (
        f"| {name} | {n} | {unit_scale(m)} {unit} | {sd_scale(sd)} | {need if need else '> 200'} | "
        f"{p[REPRODUCES]:.2f} / {p[FAILS]:.2f} / {p[INCONCLUSIVE]:.2f} |"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--setting", default=None)
    ap.add_argument("--n", type=int, default=5, help="seeds per level of the planned design")
    ap.add_argument("--epochs", type=int, nargs="+", default=[10, 20, 30, 40])
    ap.add_argument("--window", type=int, default=A["spread_window"])
    ap.add_argument("--obs2-window", type=int, default=20)
    a = ap.parse_args()
    d = load(a.csv, a.setting)
    W = a.window
    pp = lambda v: f"{100 * v:+.2f}"
    print(
        f"| observation, E epochs | seeds | mean effect | per-seed SD | seeds to decide (T152) | "
        f"P(rep / not / inc) at n={a.n}, θ = mean |"
    )
    print("|---|---|---|---|---|---|")
    last_mean = lambda c: float(np.mean(c[-W:]))
    for E in a.epochs:
        x, t = per_seed(d, [(0.0, 0.025), (0.0, 0.05), (0.0, 0.1)], lambda b, e: math.log10(e), last_mean, E)
        print(report(f"obs 1, h 0.025…0.1, E={E}", x, t, A["obs1_margin"], a.n, pp, "pp"))
        for eta in (0.1, 0.01):
            x, t = per_seed(d, [(0.0, eta), (0.5, eta), (0.9, eta)], lambda b, e: b, last_mean, E)
            if len(t):
                print(report(f"obs 3, β 0/0.5/0.9, η={eta}, E={E}", x, t, A["obs3_margin"], a.n, pp, "pp"))
            x, t = per_seed(d, [(0.0, eta), (0.9, eta)], lambda b, e: b, last_mean, E)
            if len(t):
                print(report(f"obs 3, β 0/0.9, η={eta}, E={E}", x, t, A["obs3_margin"], a.n, pp, "pp"))
        if E > a.obs2_window:
            neg_log_spread = lambda c: -math.log(plateau(c[-a.obs2_window :])[0])
            x, t = per_seed(d, [(0.0, 0.1), (0.5, 0.1), (0.9, 0.1)], lambda b, e: b, neg_log_spread, E)
            ratio = lambda v: f"{math.exp(-v):.3g}×"
            print(
                report(
                    f"obs 2, β 0/0.5/0.9, W={a.obs2_window}, E={E}",
                    x,
                    t,
                    math.log(1 / A["obs2_margin_ratio"]),
                    a.n,
                    ratio,
                    "ratio",
                    lambda v: f"{v:.3g} (log)",
                )
            )


if __name__ == "__main__":
    main()
