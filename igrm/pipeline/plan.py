"""What a config costs: runs, jobs, FLOPs by part and GPU-hours, from one function.

:func:`work` counts the training runs of the three grids (igrm.pipeline.config.training_runs,
distinct), the noise and toy/error-order jobs, and the floating-point operations of each part
of the work: SGD training and its per-epoch evaluation, the full-batch GD/GD+M steps, the
explicit IGR-M baseline's steps, the full-batch runs' evaluations (on their schedule,
``train.explicit.eval_every``), the sharpness points and the noise gradients. FLOPs per example
are counted with ``torch.utils.flop_counter.FlopCounterMode`` on the meta device
(:func:`count_flops`; no memory, no arithmetic), per architecture and input shape; the counts
of the shipped configurations are declared in :data:`FLOPS` (tests/test_plan.py recounts them),
others are counted on first use (torch imported then).

Device-hours are FLOPs over an achieved throughput in FLOP/s: measured (benchmarks/gpu_check.py
passes its own) or declared (:data:`THROUGHPUTS`, each with its source). The README's paper
table, the plan printed at every start (rules/common.smk) and the device check all read
:func:`work`; tests/test_plan.py checks the README against it.

    python -m igrm.pipeline.plan --configfile presets/paper.yaml    # the plan of a preset
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from .config import FULLBATCH, TRAIN_SIZE, num, training_runs

#: test-set sizes when test_subset is null (the full test split)
TEST_SIZE = {"cifar10": 10000, "cifar100": 10000, "mnist": 10000, "fashion_mnist": 10000}
#: (classes, channels, side) of each dataset's images
SHAPE = {"cifar10": (10, 3, 32), "cifar100": (100, 3, 32), "mnist": (10, 1, 28), "fashion_mnist": (10, 1, 28)}

#: FLOPs per example, counted by :func:`count_flops` (FlopCounterMode, meta device, torch 2.x):
#: key (model, width, classes, channels, side) -> forward, train (forward + backward),
#: hvp (one Hessian-vector product by double backward: forward, backward with graph, backward)
FLOPS: dict[tuple, dict[str, float]] = {
    ("resnet18", 1.0, 10, 3, 32): {"forward": 1110845440.0, "train": 3328997376.0, "hvp": 10109282304.0},
    ("resnet18", 1.0, 100, 3, 32): {"forward": 1110937600.0, "train": 3329273856.0, "hvp": 10110111744.0},
    ("resnet18", 0.125, 10, 3, 32): {"forward": 17745152.0, "train": 52793088.0, "hvp": 159902976.0},
    ("resnet18", 0.125, 10, 1, 28): {"forward": 14343680.0, "train": 42918144.0, "hvp": 129645056.0},
    ("small_cnn", 0.5, 10, 3, 32): {"forward": 5604608.0, "train": 15929088.0, "hvp": 46902528.0},
    # the default config's (Fashion-MNIST): without it every Snakemake start imported torch to count
    ("small_cnn", 0.5, 10, 1, 28): {"forward": 3839744.0, "train": 11293440.0, "hvp": 33654528.0},
}

#: achieved throughputs (FLOP/s) the plan converts FLOPs with when nothing is measured; each an
#: assumption with its source, replaced by benchmarks/gpu_check.py's measurement on a GPU
THROUGHPUTS: dict[str, dict[str, Any]] = {
    "cpu_core": {
        "flops_per_s": 2.6e10,
        "source": "measured (docs/performance.md, 'The default run, end to end'): ~500 example passes per"
        " second per core for ResNet-18 x0.125 (5.28e7 FLOP per pass), one CPU core",
    },
    "h100_eager_b128": {
        "flops_per_s": 4.0e13,
        "source": "assumed: ResNet-18, batch 128, eager bf16 on one H100 is launch-bound, ~4.5 s per"
        " 50 000-image epoch with its 10 000-image evaluation (1.77e14 FLOP): ~4 % of the 989 TFLOP/s peak",
    },
    "h100_airbench_class": {
        "flops_per_s": 3.5e14,
        "source": "assumed: the utilisation of KellerJordan/cifar10-airbench (35-52 % of an A100's bf16"
        " peak, arXiv 2404.00498), low end, on the 989 TFLOP/s H100 peak",
    },
}

PARTS = (
    "sgd_train",
    "sgd_eval",
    "fullbatch_train",
    "explicit_train",
    "fullbatch_eval",
    "sharpness",
    "noise",
)


# ------------------------------------------------------------------ FLOPs per example
def count_flops(model: str, width: float, classes: int, channels: int, side: int) -> dict[str, float]:
    """FLOPs per example of ``model`` at ``width`` on (channels, side, side) inputs: forward,
    train (forward + backward of the mean cross-entropy) and hvp (a Hessian-vector product by
    double backward, as igrm.regularizers.hvp_double_backprop), counted by FlopCounterMode on
    meta tensors (shapes only) for a batch of 2, divided by 2."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from ..models import build_model

    b = 2
    with torch.device("meta"):
        net = build_model(model, classes, channels, float(width))
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    x = torch.randn(b, channels, side, side, device="meta")
    y = torch.zeros(b, dtype=torch.long, device="meta")

    def loss():
        return F.cross_entropy(net(x), y)

    out = {}
    with FlopCounterMode(display=False) as fc:
        with torch.no_grad():
            net(x)
    out["forward"] = fc.get_total_flops() / b
    with FlopCounterMode(display=False) as fc:
        torch.autograd.grad(loss(), params)
    out["train"] = fc.get_total_flops() / b
    with FlopCounterMode(display=False) as fc:
        g = torch.autograd.grad(loss(), params, create_graph=True)
        torch.autograd.grad(sum((a * a.detach()).sum() for a in g), params)
    out["hvp"] = fc.get_total_flops() / b
    return out


@functools.cache
def flops_per_example(model: str, width: float, dataset: str) -> dict[str, float]:
    """:data:`FLOPS` of the architecture on ``dataset``'s images, else :func:`count_flops`."""
    key = (model, float(width), *SHAPE[dataset])
    return FLOPS[key] if key in FLOPS else count_flops(*key)


# ------------------------------------------------------------------ the work of a config
def fullbatch_eval_steps(steps: int, eval_every: int) -> list[int]:
    """Steps (1-based) after which a full-batch run evaluates its test set: every
    ``eval_every``-th and always the last (what the claims read: its final accuracy)."""
    k = max(1, int(eval_every))
    return sorted({s for s in range(k, int(steps) + 1, k)} | {int(steps)})


def sharpness_points(points: int, epochs: int) -> list[int]:
    """The epochs igrm.train.sharpness_epochs measures at (the same formula without torch;
    tests/test_plan.py compares them): ``points`` evenly spaced over [0, epochs], rounded."""
    if int(points) <= 0:
        return []
    if int(points) == 1:
        return [0]
    n, e = int(points), int(epochs)
    return sorted({int(round(i * e / (n - 1))) for i in range(n)})


def _sharpness_hvps(sh: Mapping[str, Any], epochs: int) -> tuple[int, int]:
    """(HVPs at epoch 0, HVPs at the other points) of one run, at most (no early stop)."""
    pts = sharpness_points(int(sh["points"]), int(epochs))
    per = int(sh["iters"]) + max(0, int(sh["trace_probes"]) - 1)
    last = (int(sh["final_iters"]) if sh["final_iters"] is not None else int(sh["iters"])) + max(
        0, int(sh["trace_probes"]) - 1
    )
    rest = sum(last if e == int(epochs) else per for e in pts if e != 0)
    return (per if 0 in pts else 0), rest


def _run_flops(cfg: Mapping[str, Any], d: str, m: str) -> dict[str, float]:
    """FLOPs of one training run by part (the epoch-0 sharpness point apart: 'sharpness0')."""
    t = cfg["train"]
    f = flops_per_example(t["model"], t["width"], d)
    n_train = min(t["train_subset"] or TRAIN_SIZE[d], TRAIN_SIZE[d])
    out = dict.fromkeys(PARTS, 0.0)
    if m in FULLBATCH:
        e = t["explicit"]
        n, steps = min(e["fullbatch_subset"], n_train), e["steps"]
        n_test = min(e["test_subset"] or TEST_SIZE[d], TEST_SIZE[d])
        step = f["train"] + (f["hvp"] if m == "igrm_explicit" else 0.0)
        out["fullbatch_train" if m == "gdm" else "explicit_train"] = steps * n * step
        out["fullbatch_eval"] = len(fullbatch_eval_steps(steps, e["eval_every"])) * n_test * f["forward"]
        epochs, n_used = steps, n
    else:
        bs = min(t["batch_size"], n_train)
        n_test = min(t["test_subset"] or TEST_SIZE[d], TEST_SIZE[d])
        out["sgd_train"] = t["epochs"] * (n_train // bs) * bs * f["train"]
        out["sgd_eval"] = t["epochs"] * n_test * f["forward"]
        epochs, n_used = t["epochs"], n_train
    sh = t["sharpness"]
    n_sharp = n_used if sh["subset"] is None else min(sh["subset"], n_used)
    at0, rest = _sharpness_hvps(sh, epochs)
    out["sharpness"] = rest * n_sharp * f["hvp"]
    out["sharpness0"] = at0 * n_sharp * f["hvp"]
    return out


def work(cfg: Mapping[str, Any], throughput: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Runs, jobs, FLOPs by part and GPU-hours of a filled-in config.

    Keys: ``sgd_runs``, ``fullbatch_runs``, ``training_runs`` (distinct, all grids),
    ``training_passes`` (examples forward and backward), ``noise_jobs``, ``noise_passes``,
    ``other_jobs``, ``jobs``; ``flops`` {part: FLOP} over :data:`PARTS` (the epoch-0 sharpness
    points counted once per (dataset, method, seed), as igrm.epoch0's file shares them,
    ``sharpness0_saved``: what the cache saves), ``flops_total``; ``hours`` {throughput name:
    hours of one device} over :data:`THROUGHPUTS` and ``throughput`` (name -> FLOP/s) if given."""
    from .config import plan

    p = dict(plan(cfg))
    t = cfg["train"]
    runs = sorted(
        {(d, m, num(b), num(e), int(s)) for g in ("beta", "lr", "explicit") for d, m, b, e, s in training_runs(cfg, g)}
    )
    flops = dict.fromkeys(PARTS, 0.0)
    at0: dict[tuple, float] = {}
    at0_all = 0.0
    for d, m, _b, _e, s in runs:
        r = _run_flops(cfg, d, m)
        for k in PARTS:
            flops[k] += r[k]
        # one epoch-0 measurement per (dataset, method, seed): igrm.epoch0's file, shared by the
        # runs of one checkpoint folder (igrm.train.EPOCH0_DIR)
        at0[(d, m, s)] = r["sharpness0"]
        at0_all += r["sharpness0"]
    flops["sharpness"] += sum(at0.values())
    f_noise = flops_per_example(t["model"], t["width"], t["datasets"][0])["train"]
    flops["noise"] = p["noise_passes"] * f_noise
    total = sum(flops.values())
    tp = {k: v["flops_per_s"] for k, v in THROUGHPUTS.items()}
    tp.update(throughput or {})
    p.update(
        sgd_runs=sum(m == "sgdm" for _, m, *_ in runs),
        fullbatch_runs=sum(m in FULLBATCH for _, m, *_ in runs),
        flops=flops,
        sharpness0_saved=at0_all - sum(at0.values()),
        flops_total=total,
        hours={k: total / v / 3600 for k, v in tp.items()},
    )
    return p


def text(w: Mapping[str, Any]) -> str:
    """The plan in a few lines (printed at every start, and by ``python -m igrm.pipeline.plan``)."""
    parts = ", ".join(f"{k} {v:.2g}" for k, v in w["flops"].items() if v)
    hours = "; ".join(f"{v:.3g} h at {k}" for k, v in w["hours"].items())
    return (
        f"{w['sgd_runs']} SGD runs + {w['fullbatch_runs']} full-batch runs = {w['training_runs']} training"
        f" runs, {w['noise_jobs']} noise jobs, {w['other_jobs']} toy/error-order jobs ({w['jobs']} jobs at"
        f" most); {w['flops_total']:.3g} FLOP ({parts}); {hours}"
    )


def summary(cfg: Mapping[str, Any]) -> str:
    """:func:`text` of :func:`work`: the plan printed at every start (rules/common.smk)."""
    return text(work(cfg))


PART_NAMES = {
    "sgd_train": "SGD+M / SGD training",
    "sgd_eval": "SGD runs' per-epoch test evaluation",
    "fullbatch_train": "full-batch GD / GD+M steps",
    "explicit_train": "explicit IGR-M steps (gradient + double-backward HVP)",
    "fullbatch_eval": "full-batch runs' test evaluation (train.explicit.eval_every)",
    "sharpness": "sharpness points (λ_max, tr H; epoch 0 once per seed)",
    "noise": "gradient-noise estimates",
}


def readme_table(w: Mapping[str, Any]) -> str:
    """The README's paper-scale table (tests/test_plan.py checks README.md against it)."""
    rows = [
        "| quantity | value |",
        "|---|---|",
        f"| training runs (SGD + full batch) | {w['training_runs']} ({w['sgd_runs']} + {w['fullbatch_runs']}) |",
        f"| jobs (training, noise, toy/error-order; at most) | {w['jobs']} |",
    ]
    rows += [f"| FLOP: {PART_NAMES[k]} | {v:.2e} |" for k, v in w["flops"].items()]
    rows.append(f"| FLOP: total | {w['flops_total']:.2e} |")
    rows += [f"| hours at {k} ({THROUGHPUTS[k]['flops_per_s']:.2g} FLOP/s) | {v:.3g} |" for k, v in w["hours"].items()]
    return "\n".join(rows) + "\n"


def main(argv=None) -> None:
    import argparse

    import yaml

    from .config import SCHEMA_PATH, check_config

    ap = argparse.ArgumentParser(description="the plan of config.yaml merged with --configfile files")
    ap.add_argument("--configfile", nargs="*", default=[])
    ap.add_argument("--table", action="store_true", help="the README's Markdown table instead of the text")
    args = ap.parse_args(argv)
    cfg: dict = yaml.safe_load((SCHEMA_PATH.parents[1] / "config.yaml").read_text())
    for f in args.configfile:
        cfg = merge_layers(cfg, yaml.safe_load(open(f).read()) or {})
    cfg = check_config(cfg)
    print(readme_table(work(cfg)) if args.table else summary(cfg))


def merge_layers(a: Mapping, b: Mapping) -> dict:
    """Snakemake's --configfile merge: nested mappings merged, everything else replaced."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merge_layers(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


if __name__ == "__main__":
    main()
