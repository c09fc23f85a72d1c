# Shared helpers: config validation, canonical wildcards, outputs, the code each rule's
# script runs, and each stage's params/input functions (one section per stage).
# Functions only (no rules) — the linter wants rules and functions apart.
from pathlib import Path
import sys

sys.path.insert(0, workflow.basedir)  # igrm importable even without `pip install -e .`

from igrm.pipeline.config import (
    check_config,
    effective_lr,
    num,
    plan,
    plan_text,
    preset_overrides,
    training_runs,
    write_merged,
)
from igrm.pipeline.plan import summary as plan_summary
from igrm.pipeline import code as igrm_code
from igrm.pipeline.configfile import check_files as check_config_files
from igrm.pipeline import stale as igrm_stale
from igrm.pipeline import targets
from igrm.pipeline.snakejob import importable_in_jobs
from igrm.pipeline.targets import section

# ... and in every job's script (igrm/pipeline/snakejob.py)
importable_in_jobs(workflow.basedir)

SCHEMA = os.path.join(workflow.basedir, "schemas", "config.schema.yaml")


# Validate (every bad key named, with the fix), then fill in the schema's defaults with the
# one filler, igrm.pipeline.config.with_defaults (not Snakemake's validate(set_default=True),
# a second filler: the rules, the tests and igrm.data all see the same filled config).
def config_files():
    """The config files in Snakemake's merge order: the Snakefile's config.yaml, each --configfile."""
    cli = [str(f) for f in workflow.config_settings.configfiles]
    base = [f for f in workflow.configfiles if str(Path(f).absolute()) not in cli]
    return [*base, *cli]


# each file re-read strictly first: duplicate keys, alias bombs (igrm/pipeline/configfile.py)
check_config_files(config_files())
_filled = check_config(config, SCHEMA)
config.clear()
config.update(_filled)

MERGED_CONFIG = "logs/config.merged.yaml"


def run_cores(wf):
    """--cores of this run; None under an executor run without it (SLURM), where
    workflow.cores raises instead of answering."""
    from snakemake.exceptions import WorkflowError

    try:
        return wf.cores
    except WorkflowError:
        return None


def dry_run():
    """-n / --dry-run on the command line (parse time knows no more): a dry run writes its
    merged config beside the real run's record, never over it."""
    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    return any(
        a in ("--dry-run", "--dryrun", "--dry_run")
        or (not a.startswith("--") and a[1:].isalpha() and "n" in a[1:])
        for a in flags
    )


if dry_run():
    MERGED_CONFIG = "logs/config.merged.dryrun.yaml"


def config_layers():
    """[(source, dict)] in Snakemake's merge order: the Snakefile's config.yaml, each
    --configfile, then --config."""
    from snakemake.common.configfile import load_configfile

    cs = workflow.config_settings
    layers = [(str(f), load_configfile(f)) for f in config_files()]
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
        f"igrm plan: {plan_summary(config)}",
        *[f"WARNING: {w}" for w in warnings],
    ]
    path = write_merged(config, MERGED_CONFIG, header)
    for w in warnings:
        print(f"igrm WARNING: {w}", file=sys.stderr)
    print(f"{header[2]}\nigrm: merged config written to {path}", file=sys.stderr)


if workflow.is_main_process:
    announce_plan()
    # stale outputs that Snakemake's mtimes would keep (igrm/pipeline/stale.py)
    igrm_stale.check(
        ".",
        act=igrm_stale.runs_jobs(sys.argv),
        warn=lambda m: print(m, file=sys.stderr),
    )
    if note := igrm_stale.concurrent_note("."):
        print(note, file=sys.stderr)

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


def code_inputs(script):
    """The igrm source files a script runs (its imports, transitively): declared as the
    rule's `code` input, so a result whose igrm code changed is outdated (README, "When
    code changes"); igrm/pipeline/code.py."""
    return igrm_code.code_inputs(script, workflow.basedir)


# the report's categories, one per stage (report(..., category=CATEGORY["toy"]) inline)
CATEGORY = {
    "claims": "0 Claims",
    "toy": "1 Toy problems",
    "orders": "2 Modified-flow error orders",
    "cifar": "3 CIFAR training",
    "noise": "4 Gradient noise",
}


# toy and error orders: result files per grid point (igrm/pipeline/targets.py)
def sweep_files(w=None):
    return targets.sweep_files(config)


def orders_files(w):
    return targets.orders_files(config, w.family)


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
    "eos": ["eos"],
    "modified_loss": ["orders_higher"],
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
    # the any-order study (docs/modified_flows.md section 8): its claims whenever it runs
    if targets.orders_files(config, "order_r"):
        out.append(f"{R}/claims/orders_order_r.csv")
    # its section 8.4 is exact (no result files): with the study's orders
    if config["orders"]["higher"]["any_order"]["orders"]:
        out.append(f"{R}/claims/order_r_metric.csv")
    return out


def final_outputs():
    """What `all` builds: the outputs of the rule fig_<name> / table_<name> of each figure
    and table the config lists, less the figures of optional studies it does not run (call
    it after the rules are defined)."""
    out = []
    # optional studies' figures only when the study runs (targets.built_figures)
    figures = targets.built_figures(config)
    for kind, names in (("fig", figures), ("table", config["tables"])):
        for name in names:
            out += list(getattr(rules, f"{kind}_{name}").output)
    # the results page, its findings record and glossary (before the report, which shows the glossary)
    out += list(rules.results_page.output)
    return out


# ---------------------------------------------------------------- data and training
DATA = targets.DATA


def run_path(dataset, method, beta, eta, seed, root=f"{R}/train"):
    return targets.run_path(config, dataset, method, beta, eta, seed, root=root)


# ---------------------------------------------------------------- gradient noise
def noise_points(wildcards):
    """Epochs whose parameters a training run keeps (igrm.pipeline.targets.noise_points)."""
    w = wildcards
    return targets.noise_points(config, w.method, w.beta, w.eta, w.seed)
