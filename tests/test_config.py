"""Config validation: bad values stop the workflow before any job, naming the key."""

import copy

import pytest
import yaml

from igrm.pipeline.config import (
    ConfigError,
    canonical,
    check_config,
    geometric_grid,
    num,
    run_id,
    schema_defaults,
    with_defaults,
)

from .conftest import REPO, snakemake

SCHEMA = REPO / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def default_config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_default_config_is_valid(default_config):
    check_config(default_config, SCHEMA)


def test_config_yaml_is_the_default_run(default_config):
    """config.yaml sets the study's design over the schema's defaults (README, "What config.yaml
    sets"), each to its default value: filling {} and filling config.yaml give the same config."""
    assert with_defaults(default_config) == with_defaults({})


def test_one_filler_fills_in_schema_order():
    """with_defaults is the one filler: every default set, every mapping in the schema's
    property order (so the order the config files write does not reach the rules' params),
    keys the schema does not name kept after them; one section alone gives the same."""
    schema = yaml.safe_load(SCHEMA.read_text())
    cfg = with_defaults(
        {"toy": {"two_factor": {"steps": 3, "eta": 0.5}}, "data": {"cifar10": {"md5": {"b": "0" * 32}}}}
    )
    assert list(cfg["toy"]["two_factor"]) == list(schema["properties"]["toy"]["properties"]["two_factor"]["properties"])
    assert cfg["toy"]["two_factor"]["steps"] == 3 and cfg["toy"]["two_factor"]["x"] == 1.0
    assert cfg["data"]["cifar10"]["retries"] == 3 and cfg["data"]["mnist"]["mirrors"] == []
    assert with_defaults({"steps": 3, "eta": 0.5}, path="toy/two_factor") == cfg["toy"]["two_factor"]
    assert schema_defaults("toy/two_factor") == with_defaults({})["toy"]["two_factor"]
    # the figure list is written once (an anchor in the schema): enum and default are one list
    figures = schema["properties"]["figures"]
    assert figures["default"] == figures["items"]["enum"] == with_defaults({})["figures"]


BAD = [
    # (mutation, key that the message must name, phrase it must contain)
    (lambda c: c["toy"]["two_factor"].update(betas=[0.5, 1.0]), "toy.two_factor.betas[1]", "greater than or equal"),
    (lambda c: c["orders"]["gdm"].update(betas=[-0.1]), "orders.gdm.betas[0]", "less than the minimum"),
    (lambda c: c["toy"]["sigmoid"].update(eta=0.0), "toy.sigmoid.eta", "less than or equal"),
    (lambda c: c["orders"]["sgdm"]["h_grid"].update(min=-1.0e-3), "orders.sgdm.h_grid.min", "less than or equal"),
    (lambda c: c["toy"]["two_factor"].update(stpes=10), "toy.two_factor.stpes", "Did you mean 'steps'"),
    (lambda c: c.update(figures=["sigmiod"]), "figures[0]", "Did you mean 'sigmoid'"),
    (lambda c: c["toy"]["two_factor"].update(eta="1e-3"), "toy.two_factor.eta", "write 1.0e-3"),
    (lambda c: c["train"].update(ensemble=0), "train.ensemble", "less than the minimum of 1"),
]


@pytest.mark.parametrize("mutate,key,phrase", BAD)
def test_bad_values_name_the_key(default_config, mutate, key, phrase):
    cfg = copy.deepcopy(default_config)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        check_config(cfg, SCHEMA)
    assert f"config key {key}" in str(err.value)
    assert phrase in str(err.value)


def test_yaml_reads_exponent_without_point_as_string():
    """The reason for the hint: PyYAML (YAML 1.1) reads 1e-3 as a string."""
    assert yaml.safe_load("a: 1e-3")["a"] == "1e-3"
    assert yaml.safe_load("a: 1.0e-3")["a"] == 1.0e-3


@pytest.mark.pipeline
@pytest.mark.parametrize(
    "text,key",
    [
        ("toy:\n  two_factor:\n    eta: 1e-3\n", "toy.two_factor.eta"),
        ("toy:\n  sharpness_sweep:\n    betas: [0.5, 1.2]\n", "toy.sharpness_sweep.betas[1]"),
        ("figures: [two_factor, sharpnes_sweep]\n", "figures[1]"),
        ("orders:\n  gdm:\n    h_grid: {min: 0.0, max: 1.0e-2, num: 4}\n", "orders.gdm.h_grid.min"),
        ("orders:\n  unknown_part: {}\n", "orders.unknown_part"),
    ],
)
def test_workflow_rejects_bad_config_before_any_job(tmp_path, text, key):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = snakemake("--cores", "1", "--configfile", str(bad), cwd=tmp_path, check=False, timeout=120)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"config key {key}" in out, out[-3000:]
    assert not (tmp_path / "results").exists()


def test_canonical_numbers():
    assert num(0.9) == num(0.90) == num(9e-1) == "0.9"
    assert num(1e-2) == "0.01"
    assert num(0.0) == "0"
    assert canonical("0.9", "beta") == 0.9
    with pytest.raises(ValueError, match="canonical"):
        canonical("0.90", "beta")
    assert run_id(beta=0.90, eta=1.0e-2, seed=3) == "beta0.9_eta0.01_seed3"


def test_geometric_grid():
    g = geometric_grid({"min": 1.0e-3, "max": 1.6e-2, "num": 5})
    assert g[0] == pytest.approx(1e-3) and g[-1] == pytest.approx(1.6e-2)
    assert g[1] / g[0] == pytest.approx(2.0)
