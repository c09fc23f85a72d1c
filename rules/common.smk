# Shared helpers: config validation, canonical wildcards, outputs, the code each rule's
# script runs, and each stage's params/input functions (one section per stage).
# Functions only (no rules) — the linter wants rules and functions apart.
import ast
from pathlib import Path
import sys

from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)  # igrm importable even without `pip install -e .`

from igrm.pipeline.config import (  # noqa: E402
    check_config,
    effective_lr,
    num,
    plan,
    plan_text,
    preset_overrides,
    training_runs,
    write_merged,
)
from igrm.pipeline.snakejob import importable_in_jobs  # noqa: E402
from igrm.pipeline import targets  # noqa: E402

importable_in_jobs(workflow.basedir)  # ... and in every job's script (igrm/pipeline/snakejob.py)

SCHEMA = os.path.join(workflow.basedir, "schemas", "config.schema.yaml")

# 1) our own pass: every bad key named, with the fix; 2) Snakemake's, which fills defaults.
check_config(config, SCHEMA)
validate(config, SCHEMA, set_default=True)

MERGED_CONFIG = "logs/config.merged.yaml"


def config_layers():
    """[(source, dict)] in Snakemake's merge order: the Snakefile's config.yaml, each
    --configfile, then --config."""
    from snakemake.common.configfile import load_configfile

    cs = workflow.config_settings
    cli = [str(f) for f in cs.configfiles]
    base = [f for f in workflow.configfiles if str(Path(f).absolute()) not in cli]
    layers = [(str(f), load_configfile(f)) for f in [*base, *cli]]
    if cs.config:
        layers.append(("--config", dict(cs.config)))
    return layers


def announce_plan():
    """Once, in the main process (not in a job that re-reads the Snakefile): the job count
    and rough cost, any preset key a later config layer changes, and the merged config
    written to logs/config.merged.yaml; all to stderr."""
    layers = config_layers()
    warnings = preset_overrides(layers)
    header = [
        "the merged configuration of this run, defaults filled in (written at parse time)",
        "layers, later wins: " + ", ".join(name for name, _ in layers),
        plan_text(plan(config)),
        *[f"WARNING: {w}" for w in warnings],
    ]
    path = write_merged(config, MERGED_CONFIG, header)
    for w in warnings:
        print(f"igrm WARNING: {w}", file=sys.stderr)
    print(f"{header[2]}\nigrm: merged config written to {path}", file=sys.stderr)


if workflow.is_main_process:
    announce_plan()

R = "results"
# tidy tables (one row per observation), apart from the paper's tables
TIDY = f"{R}/tidy"


# canonical numbers only (igrm.pipeline.config.num): `beta0.9` exists, `beta0.90` cannot
wildcard_constraints:
    beta=r"0(\.\d*[1-9])?|[1-9](\.\d*[1-9])?e-\d\d",
    eta=r"(0|[1-9]\d*)(\.\d*[1-9])?(e[-+]\d\d)?",
    problem="|".join(["two_factor", "lstsq"]),
    dataset="cifar10|cifar100|mnist|fashion_mnist",
    method="sgdm|gdm|igrm_explicit",
    grid="beta|lr|explicit",
    epoch=r"\d+",
    seed=r"\d+",


def _igrm_imports(path):
    """igrm modules a Python file imports (anywhere in it, lazily or not), as file paths."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    pkg = Path(workflow.basedir) / "igrm"
    here = Path(path).resolve().parent
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "igrm"]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] == "igrm":
                base = node.module
            elif node.level > 0 and pkg in (here, *here.parents):
                parts = here.relative_to(pkg.parent).parts
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                continue
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            rel = Path(*name.split("."))
            for cand in (pkg.parent / f"{rel}.py", pkg.parent / rel / "__init__.py"):
                if cand.is_file():
                    found.add(cand)
                    # importing a.b.c runs a/__init__.py and a/b/__init__.py too
                    for parent in cand.parent.relative_to(pkg.parent).parents[:-1]:
                        found.add(pkg.parent / parent / "__init__.py")
                    found.add(cand.parent / "__init__.py")
    return found


def code_inputs(script):
    """The igrm source files a script runs (its imports, transitively): declared as the
    rule's `code` input, so a result whose igrm code changed is outdated (README, "When
    code changes")."""
    todo = [Path(workflow.basedir) / "scripts" / script]
    seen = set()
    while todo:
        for f in _igrm_imports(todo.pop()):
            if f not in seen:
                seen.add(f)
                todo.append(f)
    return sorted(str(f) for f in seen)


# the report's categories, one per stage (report(..., category=CATEGORY["toy"]) inline)
CATEGORY = {
    "claims": "0 Claims",
    "toy": "1 Toy problems",
    "orders": "2 Modified-flow error orders",
    "cifar": "3 CIFAR training",
    "noise": "4 Gradient noise",
}


def cfg_at(path):
    """The config section at a '/'-separated path, as a plain dict (for params)."""
    node = config
    for part in path.split("/"):
        node = node[part]
    return node


def orders_claims_cfg(wildcards=None):
    """The keyword arguments of igrm.claims.orders.order_claims (besides the slopes)."""
    return {k: config["orders"][k] for k in ("slope_tol", "ci", "max_epsilon")}


def sweep_cfg(wildcards):
    """One sharpness-sweep job, as igrm.toy.sharpness_sweep's keywords: the two-factor
    problem and start, one eta, the sweep's settings."""
    tf = config["toy"]["two_factor"]
    sw = config["toy"]["sharpness_sweep"]
    return {
        "x": tf["x"],
        "y": tf["y"],
        "init": tf["init"],
        "etas": [float(wildcards.eta)],
        "betas": sw["betas"],
        "steps": sw["steps"],
        "flow_time": sw["flow_time"],
        "gtol": sw["gtol"],
    }


def convergence_cfg(wildcards):
    """The eta-convergence study as igrm.toy.limit_convergence's keywords: the two-factor
    problem and start, the settings of toy.limit_convergence."""
    tf = config["toy"]["two_factor"]
    lc = config["toy"]["limit_convergence"]
    return {
        "x": tf["x"],
        "y": tf["y"],
        "init": tf["init"],
        "betas": lc["betas"],
        "eps": lc["eps"],
        "time": lc["time"],
        "gtol": lc["gtol"],
    }


def sweep_files(wildcards=None):
    return [
        f"{R}/toy/sharpness_sweep/eta{num(e)}.h5"
        for e in config["toy"]["sharpness_sweep"]["etas"]
    ]


def gdm_cfg(wildcards):
    """One GD+M error-order job as igrm.orders.gdm_error_orders' keywords: one problem,
    one beta (so a new beta adds a job without rerunning the others), the settings of
    orders.gdm and the keys of the problem's own section orders.gdm.<problem>."""
    g = config["orders"]["gdm"]
    keys = ("h_grid", "t_burn_fraction", "rtol", "atol", "check_factor")
    return {
        "problem": wildcards.problem,
        "beta": float(wildcards.beta),
        **{k: g[k] for k in keys},
        **g[wildcards.problem],
    }


def gdm_files(wildcards=None):
    g = config["orders"]["gdm"]
    return [
        f"{R}/orders/gdm/{p}_beta{num(b)}.h5" for p in g["problems"] for b in g["betas"]
    ]


def sgdm_cfg(wildcards):
    """One SGD+M error-order job as igrm.orders.sgdm_error_orders' keywords: one beta."""
    s = {k: v for k, v in config["orders"]["sgdm"].items() if k != "betas"}
    return {**s, "beta": float(wildcards.beta)}


def sgdm_files(wildcards=None):
    return [
        f"{R}/orders/sgdm/beta{num(b)}.h5" for b in config["orders"]["sgdm"]["betas"]
    ]


def sgdm_real_cfg(wildcards):
    """One real-data SGD+M job as igrm.sgdm_real.sgdm_real_error_orders' keywords (besides
    the images and labels, read from the prepared dataset): one beta."""
    s = config["orders"]["sgdm_real"]
    return {
        **{k: v for k, v in s.items() if k not in ("enabled", "betas")},
        "beta": float(wildcards.beta),
    }


def sgdm_real_data(wildcards=None):
    """The prepared dataset of the real-data SGD+M study (rules/data.smk makes it)."""
    return f"{DATA}/{config['orders']['sgdm_real']['dataset']}.h5"


def sgdm_real_files(wildcards=None):
    s = config["orders"]["sgdm_real"]
    if not s["enabled"]:
        return []
    return [f"{R}/orders/sgdm_real/{s['dataset']}_beta{num(b)}.h5" for b in s["betas"]]


def gdm3_cfg(wildcards):
    """One O(h^3)-flow job as igrm.orders.gdm3_error_orders' keywords: one problem, one beta,
    the grid and tolerances of orders.gdm, orders.higher.series_orders (used on lstsq) and
    the keys of orders.gdm.<problem>."""
    g = config["orders"]["gdm"]
    keys = ("h_grid", "t_burn_fraction", "rtol", "atol", "check_factor")
    return {
        "problem": wildcards.problem,
        "beta": float(wildcards.beta),
        **{k: g[k] for k in keys},
        "series_orders": config["orders"]["higher"]["series_orders"],
        **g[wildcards.problem],
    }


def limits_cfg(wildcards=None):
    """The limit-sharpness study as igrm.higher_limits.limit_sharpness_orders' keywords: the
    two-factor problem and start of toy.two_factor, the settings of orders.higher.limits.
    """
    tf = config["toy"]["two_factor"]
    return {
        "x": tf["x"],
        "y": tf["y"],
        "init": tf["init"],
        **config["orders"]["higher"]["limits"],
    }


def higher_files(wildcards=None):
    hi = config["orders"]["higher"]
    out = [
        f"{R}/orders/gdm3/{p}_beta{num(b)}.h5"
        for p in hi["problems"]
        for b in hi["betas"]
    ]
    if hi["limits"]["betas"]:
        out.append(f"{R}/orders/limits/two_factor.h5")
    return out


def orders_files(wildcards):
    """The result files of one error-order family ({family}: gdm | sgdm | higher)."""
    return {
        "gdm": gdm_files,
        "sgdm": sgdm_files,
        "sgdm_real": sgdm_real_files,
        "higher": higher_files,
    }[wildcards.family]()


# which claim parts exist for which figure (the claims table gathers the enabled ones)
CLAIM_PARTS = {
    "toy": ["two_factor", "sharpness_sweep"],
    "orders_gdm": ["orders_gdm"],
    "orders_sgdm": ["orders_sgdm"],
    "orders_higher": ["orders_higher", "orders_higher_limits"],
    "cifar": ["acc_vs_beta", "acc_vs_lr", "curves", "spread", "explicit"],
    "explicit_in_range": ["explicit_in_range"],
    "noise": ["noise_variance", "noise_regularisation", "noise_bn"],
    "sharpness_runs": ["sharpness_runs"],
}


def claim_files(wildcards=None):
    figs = set(config["figures"])
    out = [
        f"{R}/claims/{part}.csv"
        for part, needs in CLAIM_PARTS.items()
        if figs & set(needs)
    ]
    # no figure of its own: its claims come whenever the study is enabled
    if config["orders"]["sgdm_real"]["enabled"]:
        out.append(f"{R}/claims/orders_sgdm_real.csv")
    return out


def final_outputs():
    """What `all` builds: the files of the named target fig_<name> / table_<name> of each
    figure and table the config lists (call it after the rules are defined)."""
    out = []
    for kind, names in (("fig", config["figures"]), ("table", config["tables"])):
        for name in names:
            target = getattr(rules, f"{kind}_{name}")
            # a figure's one rule makes it (its output); an alias rule names it (its input)
            out += list(target.output) or list(target.input)
    return out


# ---------------------------------------------------------------- data and training
DATA = "resources/data"
FULLBATCH = ("gdm", "igrm_explicit")


def grid_runs(grid):
    """(dataset, method, beta, eta, seed) of every run of one grid: 'beta' (SGD+M over
    beta at fixed eta), 'lr' (plain SGD over h = eta), 'explicit' (full batch: GD+M,
    GD and the explicit IGR-M baseline at one eta); igrm.pipeline.config.training_runs."""
    return training_runs(config, grid)


def run_path(dataset, method, beta, eta, seed, root=f"{R}/train"):
    return f"{root}/{dataset}/{config['train']['model']}/{method}/beta{num(beta)}_eta{num(eta)}_seed{seed}"


def grid_files(wildcards):
    return [run_path(*r) + ".h5" for r in grid_runs(wildcards.grid)]


# igrm.train keys passed as the config's train section has them
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


def train_cfg(wildcards):
    """The igrm.train.train cfg of one run: exactly igrm.train.TRAIN_KEYS (docs/training.md);
    all but igrm.train.EVAL_ONLY_KEYS form the run's checkpoint fingerprint."""
    t = config["train"]
    fullbatch = wildcards.method in FULLBATCH
    e = t["explicit"]
    return {
        "model": t["model"],
        "width": t["width"],
        "method": wildcards.method,
        "beta": float(wildcards.beta),
        "lr": float(wildcards.eta),
        "lr_mode": "effective",
        "batch_size": t["batch_size"],
        "epochs": e["steps"] if fullbatch else t["epochs"],
        "augment": ["none"] if fullbatch else t["augment"],
        "cutout_size": t["cutout_size"],
        "train_subset": t["train_subset"],
        "test_subset": e["test_subset"] if fullbatch else t["test_subset"],
        "fullbatch_subset": e["fullbatch_subset"] if fullbatch else None,
        "seed": int(wildcards.seed),
        "device": t["device"],
        "bf16": t["bf16"],
        "checkpoint_every": (
            max(1, e["steps"] // 10) if fullbatch else t["checkpoint_every"]
        ),
        "weight_decay": t["weight_decay"],
        "schedule": t["schedule"],
        "eval_batch_size": t["eval_batch_size"],
        "snapshot_epochs": noise_points(wildcards),
        **{k: t[k] for k in TRAIN_PASSTHROUGH},
    }


def checkpoint_dir(wildcards):
    return run_path(
        wildcards.dataset,
        wildcards.method,
        float(wildcards.beta),
        float(wildcards.eta),
        int(wildcards.seed),
        root=f"{R}/checkpoints",
    )


def analysis_cfg(*keys):
    """The named keyword arguments of a CIFAR analysis function (igrm.figures.cifar,
    igrm.claims.cifar, igrm.tidy.runs): train.analysis's keys, plus `eta` (the beta
    grid's one effective learning rate, None if it has several) and `model`."""
    t = config["train"]
    g = t["beta_grid"]
    etas = {effective_lr(lr, b, g["lr_mode"]) for lr in g["lrs"] for b in g["betas"]}
    a = {
        **t["analysis"],
        "eta": etas.pop() if len(etas) == 1 else None,
        "model": t["model"],
    }
    return {k: a[k] for k in keys}


# ---------------------------------------------------------------- explicit baseline in range
EXPLICIT_STUDY_KEYS = (
    "settings",
    "seeds",
    "n_train",
    "n_test",
    "pool_side",
    "width",
    "steps",
    "record_every",
    "mu_fractions",
    "lanczos_tol",
)


def explicit_study_data(wildcards=None):
    """The prepared dataset of the tracking study (train.explicit_study.dataset, or the first
    of train.datasets)."""
    ds = config["train"]["explicit_study"]["dataset"] or config["train"]["datasets"][0]
    return f"{DATA}/{ds}.h5"


def explicit_study_cfg(wildcards=None):
    """igrm.explicit_study.explicit_study's keywords: the section's keys and train.threads."""
    e = config["train"]["explicit_study"]
    return {
        **{k: e[k] for k in EXPLICIT_STUDY_KEYS},
        "threads": config["train"]["threads"],
    }


def explicit_study_claims_cfg(wildcards=None):
    """igrm.claims.explicit_study.explicit_study_claims' keywords (besides the table)."""
    a = config["train"]["analysis"]
    e = config["train"]["explicit_study"]
    return {
        **{
            k: a[k] for k in ("ci", "min_seeds", "max_epsilon", "max_penalty_curvature")
        },
        "mu_fractions": e["mu_fractions"],
        "n_test": e["n_test"],
        "sharpness_tol": config["train"]["sharpness"]["tol"],
    }


def explicit_study_fig_cfg(wildcards=None):
    a = config["train"]["analysis"]
    return {k: a[k] for k in ("max_epsilon", "max_penalty_curvature", "ci")}


# ---------------------------------------------------------------- gradient noise
def noise_points(wildcards):
    """Epochs whose parameters a training run keeps (igrm.pipeline.targets.noise_points)."""
    w = wildcards
    return targets.noise_points(config, w.method, w.beta, w.eta, w.seed)
