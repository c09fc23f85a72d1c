"""One contract from a config section to its function: each science entry point a rule's
script calls has, as keyword arguments, exactly the keys of the config section the rule
passes (the schema's properties), with the job's wildcard in place of the grid key it
enumerates, and no defaults (defaults live only in the schema)."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from igrm.pipeline.targets import NOISE_COVERAGE_DESIGN, NOISE_NOT_PER_POINT

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())


@dataclass
class Entry:
    func: str  # "igrm.toy.simulate_sigmoid"
    section: str  # "toy/sigmoid": its keys are the function's keywords
    per_job: dict = field(default_factory=dict)  # grid key -> the wildcard that replaces it
    sections: dict = field(default_factory=dict)  # keyword -> a second section passed whole
    data: tuple = ()  # positional/keyword data arguments (arrays, tables, paths)
    omit: tuple = ()  # keys of the section the job is not given (they do not change its result)


ENTRY_POINTS: list[Entry] = [
    # ----------------------------------------------------------------- toy, orders
    Entry("igrm.toy.simulate_two_factor", "toy/two_factor"),
    Entry("igrm.toy.simulate_sigmoid", "toy/sigmoid"),
    Entry(
        "igrm.toy.sharpness_sweep",
        "toy/sharpness_sweep",
        per_job={"etas": "eta"},
        sections={"two_factor": "toy/two_factor"},
    ),
    Entry("igrm.toy.limit_convergence", "toy/limit_convergence", sections={"two_factor": "toy/two_factor"}),
    Entry("igrm.claims.toy.toy_claims", "toy/claims", data=("sweep_df", "finals_df", "convergence_df")),
    # one job per (problem, beta): the grids replaced by the job's wildcards; the problems' own
    # sections (two_factor, lstsq) stay in and the function uses the job's one
    Entry("igrm.orders.gdm_error_orders", "orders/gdm", per_job={"problems": "problem", "betas": "beta"}),
    Entry("igrm.orders.sgdm_error_orders", "orders/sgdm", per_job={"betas": "beta"}),
    Entry(
        "igrm.higher_limits.limit_sharpness_orders", "orders/higher/limits", sections={"two_factor": "toy/two_factor"}
    ),
    Entry(
        "igrm.order_r_study.order_r_error_orders",
        "orders/higher/any_order",
        per_job={"problems": "problem", "betas": "beta"},
        sections={"two_factor": "orders/gdm/two_factor", "lstsq": "orders/gdm/lstsq"},
    ),
    Entry(
        "igrm.order_r_limits.limit_sharpness_any_order",
        "orders/higher/any_order_limits",
        sections={"two_factor": "toy/two_factor"},
    ),
    # narrower than a whole section (tests/test_orders.py, test_contract_*): gdm3_error_orders
    # (orders/gdm per job + orders.higher.series_orders), sgdm_real_error_orders
    # (orders/sgdm_real per beta, less `enabled`), order_claims (the scalar keys of orders)
    # ----------------------------------------------------------------- training
    # eta: the beta grid's one effective lr (igrm.pipeline.targets.analysis_eta); model: train.model
    Entry("igrm.claims.cifar.cifar_claims", "train/analysis", data=("epochs", "finals", "eta", "model")),
    # threads: train.threads
    Entry(
        "igrm.explicit_study.explicit_study",
        "train/explicit_study",
        data=("train_images", "train_labels", "test_images", "test_labels", "threads"),
    ),
    # the edge-of-stability study and its claims (issue 22); threads: train.threads
    Entry("igrm.eos.eos_study", "train/eos", data=("train_images", "train_labels", "threads")),
    Entry("igrm.claims.eos.eos_claims", "train/flatness", data=("table", "ci", "min_seeds", "max_epsilon")),
    Entry(
        "igrm.claims.modified_loss.modified_loss_claims",
        "orders/modified_loss",
        data=("two_factor", "lstsq", "slope_tol", "ci", "max_epsilon"),
    ),
    # ----------------------------------------------------------------- noise
    # one point's estimate: section noise less the keys that choose the points or judge the
    # results (targets.NOISE_NOT_PER_POINT); augmentation = train.pad and train.cutout_size;
    # point = the job's label (targets.noise_point_params)
    Entry(
        "igrm.noise.estimate_noise",
        "noise",
        omit=NOISE_NOT_PER_POINT,
        data=("model_state", "data", "augmentation", "point"),
    ),
    # the coverage simulation: the design keys of section noise (targets.NOISE_COVERAGE_DESIGN)
    Entry(
        "igrm.noise_calibration.simulate_coverage",
        "noise",
        omit=tuple(k for k in SCHEMA["properties"]["noise"]["properties"] if k not in NOISE_COVERAGE_DESIGN),
    ),
]


def schema_keys(path: str) -> set[str]:
    node = SCHEMA
    for part in path.split("/"):
        node = node["properties"][part]
    return set(node["properties"])


def resolve(name: str):
    module, attr = name.rsplit(".", 1)
    return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.func)
def test_keywords_are_the_sections_keys(entry):
    params = inspect.signature(resolve(entry.func)).parameters
    names = set(params) - set(entry.data)
    expected = (
        (schema_keys(entry.section) - set(entry.per_job) - set(entry.omit))
        | set(entry.per_job.values())
        | set(entry.sections)
    )
    assert names == expected, (
        f"{entry.func}: keywords not in {entry.section}: {sorted(names - expected)}; "
        f"keys not taken: {sorted(expected - names)}"
    )
    with_default = sorted(n for n in expected if params[n].default is not inspect.Parameter.empty)
    assert not with_default, f"{entry.func}: defaults belong in the schema, not the code: {with_default}"


def test_second_sections_exist():
    for e in ENTRY_POINTS:
        assert set(e.omit) <= schema_keys(e.section), f"{e.func}: omits keys {e.section} does not have"
        for path in e.sections.values():
            schema_keys(path)


def test_a_planted_mismatch_is_caught():
    """The check fails on a function that takes a key its section does not have."""

    def fake(*, x, y, init, bogus):  # toy/two_factor has no 'bogus'
        pass

    params = set(inspect.signature(fake).parameters)
    assert params != schema_keys("toy/two_factor")
