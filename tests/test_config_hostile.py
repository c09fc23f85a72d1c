"""Hostile configs are stopped before any job runs, with the dotted key named: non-finite
numbers, grid entries that collapse into one run once written in file names, grids too
large to start unconfirmed; and a preset changed by a later config layer is reported, with
the merged config written to logs/config.merged.yaml."""

import copy

import pytest
import yaml
from snakemake.utils import update_config

from igrm.pipeline.config import (
    ConfigError,
    check_config,
    plan,
    preset_overrides,
    with_defaults,
    write_merged,
)

from .conftest import REPO, snakemake

SCHEMA = REPO / "schemas" / "config.schema.yaml"
TINY = REPO / "tests" / "configs" / "tiny.yaml"
PAPER = REPO / "presets" / "paper.yaml"


@pytest.fixture(scope="module")
def tiny():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load(TINY.read_text()))
    return cfg


def merged(base, text):
    cfg = copy.deepcopy(base)
    update_config(cfg, yaml.safe_load(text))
    return cfg


def rejected(cfg):
    with pytest.raises(ConfigError) as err:
        check_config(cfg, SCHEMA)
    return str(err.value)


# ------------------------------------------------------------------ non-finite numbers
NONFINITE = [
    ("toy:\n  two_factor:\n    eta: .nan\n", "toy.two_factor.eta"),
    ("train:\n  beta_grid:\n    betas: [0.0, .nan, 0.9]\n", "train.beta_grid.betas[1]"),
    ("train:\n  width: .inf\n", "train.width"),
    ("train:\n  lr_grid:\n    lrs: [0.05, -.inf]\n", "train.lr_grid.lrs[1]"),
    ("train:\n  beta_grid:\n    lrs: [.inf]\n", "train.beta_grid.lrs[0]"),
    ("noise:\n  runs: [{method: sgdm, beta: 0.9, eta: .nan, seed: 0}]\n", "noise.runs[0].eta"),
    ("toy:\n  two_factor:\n    init: [2.8, -.inf]\n", "toy.two_factor.init[1]"),
    ("orders:\n  gdm:\n    h_grid: {min: 5.0e-3, max: .inf, num: 4}\n", "orders.gdm.h_grid.max"),
]


@pytest.mark.parametrize("text,key", NONFINITE)
def test_nonfinite_numbers_are_rejected_with_the_key(tiny, text, key):
    msg = rejected(merged(tiny, text))
    assert f"config key {key}: " in msg, msg
    assert "not a finite number" in msg


def _dry_run_with(tmp_path, text: str):
    """``snakemake -n`` on the tiny config with ``text`` merged over it: (process, its output)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = snakemake("-n", "--cores", "1", "--configfile", str(TINY), str(bad), cwd=tmp_path, check=False, timeout=300)
    return proc, proc.stdout + proc.stderr


@pytest.mark.pipeline
def test_nonfinite_is_rejected_by_a_dry_run_before_any_job(tmp_path):
    proc, out = _dry_run_with(tmp_path, "train:\n  beta_grid:\n    betas: [0.0, .nan]\n  width: .inf\n")
    assert proc.returncode != 0
    assert "config key train.beta_grid.betas[1]: nan is not a finite number" in out, out[-3000:]
    assert "config key train.width: inf is not a finite number" in out
    assert "train_run" not in out  # no DAG was built
    assert not (tmp_path / "results").exists()


# ------------------------------------------------------------ values that are one run
NEAR = "[0.8, 0.8000000000000001, 0.80000000000001]"
COLLIDING = [
    (f"train:\n  beta_grid:\n    betas: {NEAR}\n", "train.beta_grid.betas"),
    ("train:\n  beta_grid:\n    lrs: [0.1, 0.1000000000000001]\n", "train.beta_grid.lrs"),
    ("train:\n  lr_grid:\n    lrs: [0.05, 0.05000000000001]\n", "train.lr_grid.lrs"),
    (f"noise:\n  betas: {NEAR}\n", "noise.betas"),
    ("toy:\n  sharpness_sweep:\n    etas: [1.0e-2, 0.01000000000000001]\n", "toy.sharpness_sweep.etas"),
    (f"toy:\n  sharpness_sweep:\n    betas: {NEAR}\n", "toy.sharpness_sweep.betas"),
    (f"toy:\n  limit_convergence:\n    betas: {NEAR}\n", "toy.limit_convergence.betas"),
    ("toy:\n  limit_convergence:\n    eps: [0.04, 0.04000000000000001]\n", "toy.limit_convergence.eps"),
    (f"toy:\n  two_factor:\n    betas: {NEAR}\n", "toy.two_factor.betas"),
    (f"toy:\n  sigmoid:\n    betas: {NEAR}\n", "toy.sigmoid.betas"),
    (f"orders:\n  gdm:\n    betas: {NEAR}\n", "orders.gdm.betas"),
    (f"orders:\n  sgdm:\n    betas: {NEAR}\n", "orders.sgdm.betas"),
]


@pytest.mark.parametrize("text,key", COLLIDING, ids=[k for _, k in COLLIDING])
def test_values_that_name_one_run_are_rejected(tiny, text, key):
    cfg = merged(tiny, text)
    check_config_schema_only(cfg)  # JSON Schema alone (uniqueItems) lets them through
    msg = rejected(cfg)
    assert f"config key {key}[1]: " in msg, msg
    assert f"the same value as {key}[0]" in msg
    if "0.80000000000001" in text:
        assert f"config key {key}[2]: " in msg


def check_config_schema_only(cfg):
    import jsonschema

    schema = yaml.safe_load(SCHEMA.read_text())
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(cfg))


def test_large_integers_are_not_near_duplicates(tiny):
    """Seeds are written as integers (seed10000000000000 and seed10000000000001 are two
    files), not through num's 12 significant digits."""
    check_config(merged(tiny, "train:\n  seeds: [10000000000000, 10000000000001]\n"), SCHEMA)


def test_duplicate_noise_runs_are_rejected(tiny):
    cfg = merged(
        tiny,
        "noise:\n  runs: [{method: sgdm, beta: 0.9, eta: 0.1, seed: 0},"
        " {method: sgdm, beta: 0.9000000000000001, eta: 0.1, seed: 0}]\n",
    )
    msg = rejected(cfg)
    assert "config key noise.runs[1]: the same run as noise.runs[0]" in msg, msg


def test_raw_lrs_that_give_one_effective_lr_are_rejected(tiny):
    """lr_mode raw: eta = lr / (1 - beta). 0.1 and 0.0999999999999 are two learning rates
    in file names, but at beta 0.8 both give eta 0.5: one run, read twice."""
    cfg = merged(tiny, "train:\n  beta_grid: {betas: [0.8], lrs: [0.1, 0.0999999999999], lr_mode: raw}\n")
    msg = rejected(cfg)
    assert "config key train.beta_grid.lrs[1]: with lr_mode 'raw'" in msg, msg
    assert "beta0.8_eta0.5" in msg
    # the same learning rates read as effective ones are two runs
    cfg["train"]["beta_grid"]["lr_mode"] = "effective"
    check_config(cfg, SCHEMA)


def test_explicit_beta_zero_is_rejected(tiny):
    """The explicit grid runs GD+M at train.explicit.beta and plain GD (beta 0): at beta 0
    they are one file, which the explicit tidy table would read twice."""
    msg = rejected(merged(tiny, "train:\n  explicit: {beta: 0.0}\n"))
    assert "config key train.explicit.beta: 0.0 makes the explicit grid's GD+M run the plain-GD run" in msg, msg


def test_noise_points_past_the_end_that_are_one_epoch_are_rejected(tiny):
    """Points past a run's end are its last epoch: [3, 5] at train.epochs 3 is one job."""
    msg = rejected(merged(tiny, "noise:\n  points: [0, 3, 5]\n"))
    assert "config key noise.points[2]: 5 and noise.points[1] = 3 are both epoch 3" in msg, msg
    assert "train.epochs = 3" in msg


@pytest.mark.pipeline
def test_near_duplicate_beta_is_rejected_by_a_dry_run(tmp_path):
    proc, out = _dry_run_with(tmp_path, f"train:\n  beta_grid:\n    betas: {NEAR}\n")
    assert proc.returncode != 0
    assert "config key train.beta_grid.betas[1]: " in out, out[-3000:]
    assert "is the same value as train.beta_grid.betas[0] = 0.8 once written in file names" in out
    assert "config key train.beta_grid.betas[2]" in out
    assert not (tmp_path / "results").exists()


# ------------------------------------------------------------------ large grids
def test_large_grid_needs_confirmation(tiny):
    big = merged(tiny, "train:\n  seeds: [" + ", ".join(map(str, range(40))) + "]\n")
    msg = rejected(big)
    assert "config key confirm_large_grid: this config plans" in msg, msg
    assert "set confirm_large_grid: true" in msg and "max_jobs_without_confirm = 200" in msg
    assert "240 training runs" in msg  # 40 seeds x (2 beta + 2 lr + 3 explicit - 1 shared)
    check_config(merged(big, "confirm_large_grid: true\n"), SCHEMA)
    check_config(merged(big, "max_jobs_without_confirm: 1000\n"), SCHEMA)


def test_plan_counts_distinct_runs(tiny):
    """The tiny grid: beta {0, 0.9} x lr 0.1, lr {0.05, 0.1}, 3 explicit runs; beta 0 at
    0.1 is one run of two grids. Noise: 1 run x points {0, 3}."""
    p = plan(with_defaults(tiny, yaml.safe_load(SCHEMA.read_text())))
    assert p["training_runs"] == 6
    assert p["noise_jobs"] == 2
    # sweep etas, gdm problems x betas, sgdm betas, higher-order problems x betas, limits,
    # the explicit baseline's tracking study (one setting)
    assert p["other_jobs"] == 2 + 2 * 2 + 1 + 1 * 1 + 1 + 1
    assert p["jobs"] == 18


@pytest.mark.pipeline
def test_dry_run_prints_the_plan_and_writes_the_merged_config(tmp_path):
    bad = tmp_path / "big.yaml"
    bad.write_text("train:\n  seeds: [" + ", ".join(map(str, range(40))) + "]\n")
    proc = snakemake("-n", "--cores", "1", "--configfile", str(TINY), str(bad), cwd=tmp_path, check=False, timeout=300)
    assert proc.returncode != 0
    assert "config key confirm_large_grid" in proc.stdout + proc.stderr

    proc = snakemake("-n", "--cores", "1", "--configfile", str(TINY), cwd=tmp_path, timeout=300)
    assert "= 6 training runs" in proc.stderr, proc.stderr[-3000:]
    assert "2 noise jobs" in proc.stderr and "18 jobs at most" in proc.stderr, proc.stderr[-3000:]
    # a dry run writes beside the real run's record, never over it
    assert "merged config written to logs/config.merged.dryrun.yaml" in proc.stderr
    assert not (tmp_path / "logs" / "config.merged.yaml").exists()
    log = tmp_path / "logs" / "config.merged.dryrun.yaml"
    text = log.read_text()
    assert f"layers, later wins: {REPO / 'config.yaml'}, {TINY}" in text
    cfg = yaml.safe_load(text)
    assert cfg["train"]["model"] == "small_cnn"  # tiny.yaml's
    assert cfg["train"]["sharpness"]["iters"] == 6  # a schema default, filled in
    assert cfg["confirm_large_grid"] is False
    assert not list(log.parent.glob(".config.merged.*.*"))  # no temporary left


# ------------------------------------------------------------------ presets
def test_presets_declare_their_intent():
    for preset in sorted((REPO / "presets").glob("*.yaml")):
        p = yaml.safe_load(preset.read_text())["preset"]
        assert p["name"] == preset.stem and p["intent"]


def test_preset_overrides_are_named():
    layers = [
        ("config.yaml", {"train": {"model": "resnet18", "device": "auto"}}),
        ("paper.yaml", yaml.safe_load(PAPER.read_text())),
        ("mine.yaml", {"train": {"model": "small_cnn", "datasets": ["cifar10", "mnist"], "epochs": 200}}),
        ("--config", {"train": {"device": "cpu"}}),
    ]
    warnings = preset_overrides(layers)
    assert len(warnings) == 3, warnings  # epochs 200 is the preset's own value
    joined = "\n".join(warnings)
    assert "preset 'paper' (paper.yaml) sets train.model = 'resnet18'; mine.yaml changes it to 'small_cnn'" in joined
    assert "train.datasets = ['cifar10', 'cifar100']; mine.yaml changes it" in joined
    assert "train.device = 'cuda'; --config changes it to 'cpu'" in joined
    # config.yaml is not a preset: a preset changing it is what presets are for
    assert preset_overrides(layers[:2]) == []


@pytest.mark.pipeline
def test_preset_merged_over_an_incompatible_config_is_reported(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("train:\n  model: small_cnn\n  datasets: [cifar10, mnist]\n")
    proc = snakemake("-n", "--cores", "1", "--configfile", str(PAPER), str(mine), cwd=tmp_path, timeout=300)
    assert "igrm WARNING: preset 'paper'" in proc.stderr, proc.stderr[-3000:]
    assert "sets train.model = 'resnet18'" in proc.stderr
    log = (tmp_path / "logs" / "config.merged.dryrun.yaml").read_text()
    assert "# WARNING: preset 'paper'" in log and "train.datasets" in log
    assert yaml.safe_load(log)["train"]["model"] == "small_cnn"


def test_write_merged_replaces_atomically(tmp_path):
    path = tmp_path / "logs" / "config.merged.yaml"
    write_merged({"a": 1}, path, ["first"])
    write_merged({"a": 2, "b": [0.5, 1.0e-5]}, path, ["second", "line"])
    text = path.read_text()
    assert text.startswith("# second\n# line\n")
    assert yaml.safe_load(text) == {"a": 2, "b": [0.5, 1.0e-5]}
    assert [p.name for p in path.parent.iterdir()] == ["config.merged.yaml"]
