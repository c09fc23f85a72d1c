"""Where the pipeline's files are and what each job is given: the one module the rules
(rules/*.smk) and the tests share for target paths, grid enumeration and the few job
inputs that are not a plain config section.

Every function takes the merged config (defaults filled from the schema) explicitly, so a
test can call it without Snakemake. A rule's ``params`` are otherwise config sections
passed unchanged (:func:`section`), and the function a script calls has exactly that
section's keys as keyword arguments (tests/test_contract.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .config import FULLBATCH, effective_lr, num, training_runs

R = "results"
TIDY = f"{R}/tidy"
DATA = "resources/data"


def at(config: Mapping[str, Any], path: str) -> Any:
    """The config node at a '/'-separated path (KeyError names the path)."""
    node: Any = config
    for part in path.split("/"):
        try:
            node = node[part]
        except (KeyError, TypeError):
            raise KeyError(f"config has no section {path!r} (at {part!r})") from None
    return node


def section(config: Mapping[str, Any], path: str, **per_job: tuple[str, Callable]) -> Callable:
    """A rule's params function: the config section at ``path``, unchanged, except that each
    grid key named in ``per_job`` (``etas=("eta", float)``) is replaced by the job's own
    wildcard value under the wildcard's name: one job runs one point of the grid."""

    def params(wildcards=None) -> dict:
        sec = dict(at(config, path))
        for key, (wildcard, cast) in per_job.items():
            sec.pop(key)
            sec[wildcard] = cast(getattr(wildcards, wildcard))
        return sec

    return params


# ------------------------------------------------------------------------------ toy, orders
# Result files of the toy and error-order simulations: one file per grid point, so that a new
# point adds a job without rerunning the others.


def sweep_files(config: Mapping[str, Any]) -> list[str]:
    """The sharpness sweep's result files, one per η of toy.sharpness_sweep.etas."""
    return [f"{R}/toy/sharpness_sweep/eta{num(e)}.h5" for e in config["toy"]["sharpness_sweep"]["etas"]]


def gdm_files(config: Mapping[str, Any]) -> list[str]:
    """GD+M error-order files, one per (problem, β) of orders.gdm."""
    g = config["orders"]["gdm"]
    return [f"{R}/orders/gdm/{p}_beta{num(b)}.h5" for p in g["problems"] for b in g["betas"]]


def sgdm_files(config: Mapping[str, Any]) -> list[str]:
    """SGD+M error-order files, one per β of orders.sgdm."""
    return [f"{R}/orders/sgdm/beta{num(b)}.h5" for b in config["orders"]["sgdm"]["betas"]]


def sgdm_real_files(config: Mapping[str, Any]) -> list[str]:
    """Real-data SGD+M files, one per β of orders.sgdm_real (none unless it is enabled)."""
    s = config["orders"]["sgdm_real"]
    if not s["enabled"]:
        return []
    return [f"{R}/orders/sgdm_real/{s['dataset']}_beta{num(b)}.h5" for b in s["betas"]]


def sgdm_real_data(config: Mapping[str, Any]) -> str:
    """The prepared dataset the real-data SGD+M study reads (rules/data.smk makes it)."""
    return f"{DATA}/{config['orders']['sgdm_real']['dataset']}.h5"


def sgdm_real_job(config: Mapping[str, Any]) -> Callable:
    """The params of one real-data SGD+M job: orders.sgdm_real with ``beta`` in place of its
    grid ``betas``, less ``enabled`` (it says whether the jobs exist at all, :func:`sgdm_real_files`)."""
    one_beta = section(config, "orders/sgdm_real", betas=("beta", float))

    def params(wildcards=None) -> dict:
        sec = one_beta(wildcards)
        sec.pop("enabled")
        return sec

    return params


def higher_files(config: Mapping[str, Any]) -> list[str]:
    """The O(h³) study's files: one per (problem, β) of orders.higher, and the limit study's
    (when orders.higher.limits.betas is not empty)."""
    hi = config["orders"]["higher"]
    out = [f"{R}/orders/gdm3/{p}_beta{num(b)}.h5" for p in hi["problems"] for b in hi["betas"]]
    if hi["limits"]["betas"]:
        out.append(f"{R}/orders/limits/two_factor.h5")
    return out


def order_r_files(config: Mapping[str, Any]) -> list[str]:
    """The any-order study's files: one per (problem, β) of orders.higher.any_order (none when
    its orders are []), and the limit study's of orders.higher.any_order_limits."""
    hi = config["orders"]["higher"]
    ao, lim = hi["any_order"], hi["any_order_limits"]
    out = (
        [f"{R}/orders/order_r/{p}_beta{num(b)}.h5" for p in ao["problems"] for b in ao["betas"]] if ao["orders"] else []
    )
    if lim["orders"] and lim["betas"]:
        out.append(f"{R}/orders/order_r_limits/two_factor.h5")
    return out


def _any_order_on(config: Mapping[str, Any]) -> bool:
    return bool(config["orders"]["higher"]["any_order"]["orders"])


def _any_order_loss_on(config: Mapping[str, Any]) -> bool:
    """GD on the modified loss exists for the polynomial problems only (not sigmoid)."""
    ao = config["orders"]["higher"]["any_order"]
    return bool(ao["orders"]) and bool({"two_factor", "lstsq"} & set(ao["problems"]))


def _any_order_limits_on(config: Mapping[str, Any]) -> bool:
    lim = config["orders"]["higher"]["any_order_limits"]
    return bool(lim["orders"]) and bool(lim["betas"])


#: figures of optional studies (off in the default run): name → whether the config runs its study.
#: They are in the one figure list (the schema's `figures`) but built only when this says so.
OPTIONAL_FIGURES: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "orders_any_order": _any_order_on,
    "orders_any_order_loss": _any_order_loss_on,
    "orders_any_order_limits": _any_order_limits_on,
}


def built_figures(config: Mapping[str, Any]) -> list[str]:
    """The figures `all` builds and the results page shows: the config's `figures`, less each
    optional figure (OPTIONAL_FIGURES) whose study the config does not run."""
    return [f for f in config["figures"] if f not in OPTIONAL_FIGURES or OPTIONAL_FIGURES[f](config)]


#: the result files of each error-order family (the {family} of rule tidy_orders)
ORDER_FAMILIES = {
    "gdm": gdm_files,
    "sgdm": sgdm_files,
    "sgdm_real": sgdm_real_files,
    "higher": higher_files,
    "order_r": order_r_files,
}


def orders_files(config: Mapping[str, Any], family: str) -> list[str]:
    """The result files of one error-order family (gdm | sgdm | sgdm_real | higher)."""
    return ORDER_FAMILIES[family](config)


# ------------------------------------------------------------------------------ training
#: igrm.train keys passed as the config's train section has them (train_job_cfg)
TRAIN_PASSTHROUGH = (
    "pad",
    "fullbatch_chunk",
    "channels_last",
    "step_milestones",
    "step_gamma",
    "blowup_factor",
    "penalty_impl",
    "penalty_eps",
    "deterministic",
    "sharpness",
    "compile",
)


def run_path(
    config: Mapping[str, Any], dataset: str, method: str, beta: float, eta: float, seed: int, root: str = f"{R}/train"
) -> str:
    """A training run's path without suffix: ``<root>/<dataset>/<model>/<method>/beta<β>_eta<η>_seed<s>``
    (``root``: results/train for the result, results/checkpoints, results/noise)."""
    return f"{root}/{dataset}/{config['train']['model']}/{method}/beta{num(beta)}_eta{num(eta)}_seed{seed}"


def grid_files(config: Mapping[str, Any], grid: str) -> list[str]:
    """The result files of one training grid ('beta', 'lr', 'explicit'; igrm.pipeline.config.training_runs)."""
    return [run_path(config, *r) + ".h5" for r in training_runs(config, grid)]


def checkpoint_dir(config: Mapping[str, Any], dataset: str, method: str, beta: float, eta: float, seed: int) -> str:
    """Where a run's resume checkpoints live: outside the declared outputs (docs/training.md)."""
    return run_path(config, dataset, method, beta, eta, seed, root=f"{R}/checkpoints")


def last_epoch(config: Mapping[str, Any], method: str) -> int:
    """A run's last epoch: train.explicit.steps for the full-batch methods, else train.epochs."""
    t = config["train"]
    return t["explicit"]["steps"] if method in FULLBATCH else t["epochs"]


def snapshot_epochs(config: Mapping[str, Any], method: str, beta: float, eta: float, seed: int) -> list[int]:
    """Epochs whose parameters a training run keeps: the noise points (noise.points, past the
    end = its last epoch) if the run is one of noise.runs, else none."""
    key = (method, num(beta), num(eta), int(seed))
    probed = {(r["method"], num(r["beta"]), num(r["eta"]), int(r["seed"])) for r in config["noise"]["runs"]}
    if key not in probed:
        return []
    last = last_epoch(config, method)
    return sorted({min(int(p), last) for p in config["noise"]["points"]})


def train_job_cfg(config: Mapping[str, Any], dataset: str, method: str, beta: float, eta: float, seed: int) -> dict:
    """The igrm.train.train cfg of one run: exactly igrm.train.TRAIN_KEYS (docs/training.md),
    from the train section and the run's own values; the full-batch methods take their
    length, augmentation, test subset and checkpoint interval from train.explicit. All but
    igrm.train.EVAL_ONLY_KEYS form the run's checkpoint fingerprint."""
    t = config["train"]
    fullbatch = method in FULLBATCH
    e = t["explicit"]
    return {
        "model": t["model"],
        "width": t["width"],
        "method": method,
        "beta": float(beta),
        "lr": float(eta),
        "lr_mode": "effective",
        "batch_size": t["batch_size"],
        "epochs": e["steps"] if fullbatch else t["epochs"],
        "augment": ["none"] if fullbatch else t["augment"],
        "cutout_size": t["cutout_size"],
        "train_subset": t["train_subset"],
        "test_subset": e["test_subset"] if fullbatch else t["test_subset"],
        "fullbatch_subset": e["fullbatch_subset"] if fullbatch else None,
        "seed": int(seed),
        "device": t["device"],
        "bf16": t["bf16"],
        "checkpoint_every": max(1, e["steps"] // 10) if fullbatch else t["checkpoint_every"],
        "weight_decay": t["weight_decay"],
        "schedule": t["schedule"],
        "eval_batch_size": t["eval_batch_size"],
        "snapshot_epochs": snapshot_epochs(config, method, beta, eta, seed),
        "eval_every": e["eval_every"] if fullbatch else 1,
        **{k: t[k] for k in TRAIN_PASSTHROUGH},
    }


def run_log(dataset: str, method: str, beta: float, eta: float, seed: int) -> str:
    """A training run's log, as rule train_run writes it; its per-epoch progress CSV goes
    beside it (igrm.pipeline.snakejob.progress_path), in an ensemble job too."""
    return f"logs/train/{dataset}/{method}/beta{num(beta)}_eta{num(eta)}_seed{seed}.log"


#: the training grids of SGD runs, the ones an ensemble job trains (train.ensemble > 1)
SGD_GRIDS = ("beta", "lr")


def ensemble_groups(config: Mapping[str, Any]) -> list[dict]:
    """The ensemble jobs of ``train.ensemble`` = K > 1 (none for K = 1): the runs of the SGD
    grids (:data:`SGD_GRIDS`; a run in both belongs to the first) in groups of at most K that
    igrm.ensemble can step together: per grid and dataset, the runs whose cfgs agree on
    igrm.ensemble.SHARED_KEYS, K consecutive ones in training_runs order. Each group: ``name``
    (``<grid>_<dataset>_<i>``, rule train_ensemble_<name>), ``dataset``, and per member (in
    one order) ``outputs`` (the result files rule train_run writes for K = 1), ``cfgs``
    (:func:`train_job_cfg`), ``checkpoint_dirs`` and ``logs`` (:func:`run_log`)."""
    k = int(config["train"]["ensemble"])
    if k == 1:
        return []
    from igrm.ensemble import SHARED_KEYS  # imports torch: only where ensembles are asked for

    seen: set[str] = set()
    groups = []
    for grid in SGD_GRIDS:
        cells: dict[tuple, list[tuple]] = {}
        for run in training_runs(config, grid):
            path = run_path(config, *run)
            if run[1] in FULLBATCH or path in seen:
                continue
            seen.add(path)
            cfg = train_job_cfg(config, *run)
            cells.setdefault((run[0], repr([cfg[key] for key in SHARED_KEYS])), []).append(run)
        count: dict[str, int] = {}
        for (dataset, _), runs in cells.items():
            for start in range(0, len(runs), k):
                i = count[dataset] = count.get(dataset, -1) + 1
                groups.append(ensemble_group(config, f"{grid}_{dataset}_{i}", runs[start : start + k]))
    return groups


def ensemble_group(config: Mapping[str, Any], name: str, runs: list[tuple]) -> dict:
    """One ensemble job of :func:`ensemble_groups`: its runs (dataset, method, beta, eta, seed)
    with what each member's files and cfg are when rule train_run trains it alone."""
    return {
        "name": name,
        "dataset": runs[0][0],
        "outputs": [run_path(config, *r) + ".h5" for r in runs],
        "cfgs": [train_job_cfg(config, *r) for r in runs],
        "checkpoint_dirs": [checkpoint_dir(config, *r) for r in runs],
        "logs": [run_log(*r) for r in runs],
    }


def job_run(wildcards) -> tuple[str, str, float, float, int]:
    """(dataset, method, beta, eta, seed) of a training job's wildcards."""
    w = wildcards
    return w.dataset, w.method, float(w.beta), float(w.eta), int(w.seed)


def analysis_eta(config: Mapping[str, Any]) -> float | None:
    """The beta grid's one effective learning rate (train.beta_grid), None if it has several:
    the η the CIFAR figures and claims plot and judge (None: every η with a β sweep)."""
    g = config["train"]["beta_grid"]
    etas = {effective_lr(lr, b, g["lr_mode"]) for lr in g["lrs"] for b in g["betas"]}
    return etas.pop() if len(etas) == 1 else None


def explicit_study_data(config: Mapping[str, Any]) -> str:
    """The prepared dataset of the tracking study (train.explicit_study.dataset, or the first
    of train.datasets)."""
    ds = config["train"]["explicit_study"]["dataset"] or config["train"]["datasets"][0]
    return f"{DATA}/{ds}.h5"


def eos_data(config: Mapping[str, Any]) -> str:
    """The prepared dataset of the EoS study (train.eos.dataset, or the first of train.datasets)."""
    ds = config["train"]["eos"]["dataset"] or config["train"]["datasets"][0]
    return f"{DATA}/{ds}.h5"


# ------------------------------------------------------------------------------ noise
#: keys of config section ``noise`` that do not change one point's estimate: which runs and
#: epochs are probed and with how many threads (runs, points, threads), the coverage
#: simulation's population (calibration) and the verdicts' settings (min_groups,
#: theory_margin, slides_margin). The noise_point job is given the rest, so a change of a
#: verdict setting reruns the claims, not hours of estimates (tests/test_contract.py checks
#: that igrm.noise.estimate_noise takes exactly the rest).
NOISE_NOT_PER_POINT = ("runs", "points", "threads", "calibration", "min_groups", "theory_margin", "slides_margin")
#: keys of config section ``noise`` that the coverage simulation reads: the design of the noise
#: jobs it reproduces and its own population (calibration; igrm.noise_calibration.simulate_coverage
#: takes exactly these). A change of calibration.min_coverage (the claims' threshold) reruns it too.
NOISE_COVERAGE_DESIGN = (
    "betas",
    "ks",
    "n_blocks",
    "n_groups",
    "block_len",
    "batch_size",
    "sampler",
    "train_subset",
    "ci_level",
    "trajectory",
    "calibration",
)


def noise_run_keys(config: Mapping[str, Any]) -> set[tuple[str, str, str, int]]:
    """(method, beta, eta, seed) of every probed run, numbers as canonical text (igrm.pipeline.config.num)."""
    from .config import num

    return {(r["method"], num(r["beta"]), num(r["eta"]), int(r["seed"])) for r in config["noise"]["runs"]}


def noise_points(config: Mapping[str, Any], method: str, beta, eta, seed) -> list[int]:
    """Epochs whose parameters a training run keeps: the noise points (past the end: the
    last epoch), for a probed run; none for the others."""
    from .config import FULLBATCH, num

    if (method, num(beta), num(eta), int(seed)) not in noise_run_keys(config):
        return []
    t = config["train"]
    last = t["explicit"]["steps"] if method in FULLBATCH else t["epochs"]
    return sorted({min(int(p), last) for p in config["noise"]["points"]})


def noise_files(config: Mapping[str, Any]) -> list[str]:
    """The noise_point results: one per dataset, probed run and point."""
    from .config import num

    out = []
    for d in config["train"]["datasets"]:
        for r in config["noise"]["runs"]:
            base = (
                f"{R}/noise/{d}/{config['train']['model']}/{r['method']}/"
                f"beta{num(r['beta'])}_eta{num(r['eta'])}_seed{r['seed']}"
            )
            out += [f"{base}/epoch{p}.h5" for p in noise_points(config, r["method"], r["beta"], r["eta"], r["seed"])]
    return out


def noise_point_label(wildcards) -> str:
    """The point's label in the tables: dataset/method/beta<β>_eta<η>_seed<s>/epoch<e>."""
    w = wildcards
    return f"{w.dataset}/{w.method}/beta{w.beta}_eta{w.eta}_seed{w.seed}/epoch{w.epoch}"


def noise_point_params(config: Mapping[str, Any], wildcards) -> dict[str, Any]:
    """igrm.noise.estimate_noise's keywords for one (run, point): section ``noise`` less
    :data:`NOISE_NOT_PER_POINT`, ``augmentation`` (train.pad, train.cutout_size: the batches
    are augmented as training does) and the point's label."""
    n, t = config["noise"], config["train"]
    return {
        **{k: v for k, v in n.items() if k not in NOISE_NOT_PER_POINT},
        "augmentation": {"pad": t["pad"], "cutout_size": t["cutout_size"]},
        "point": noise_point_label(wildcards),
    }


def noise_coverage_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """igrm.noise_calibration.simulate_coverage's keywords: :data:`NOISE_COVERAGE_DESIGN` of section ``noise``."""
    return {k: config["noise"][k] for k in NOISE_COVERAGE_DESIGN}
