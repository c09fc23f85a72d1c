"""The default run's design for the paper's observations (docs/observations.md): what it
trains, what it costs in example passes, and that every observation's margin is declared in
the schema before any run (the claims read them from train.analysis)."""

import math
from pathlib import Path

import yaml

from igrm.pipeline.config import plan, schema_defaults, training_runs, with_defaults

REPO = Path(__file__).resolve().parents[1]


def _default():
    return with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))


def test_default_plan_job_count_and_cost():
    """5 seeds × (3 β × 2 η + the lr grid's level not shared with β = 0, η = 0.1) SGD runs of
    20 epochs on 2000 images, plus the explicit grid (3 full-batch runs per seed, 60 steps on
    128 images): 50 training jobs, 1.5152 M example passes."""
    cfg = _default()
    t = cfg["train"]
    sgd = {r for g in ("beta", "lr") for r in training_runs(cfg, g)}
    assert len(sgd) == 5 * (3 * 2 + 1) == 35
    p = plan(cfg)
    assert p["training_runs"] == 35 + 3 * 5 == 50
    expected = 35 * t["epochs"] * t["train_subset"] + 15 * t["explicit"]["steps"] * t["explicit"]["fullbatch_subset"]
    assert p["training_passes"] == expected == 1_515_200
    # the obs-3 comparison runs at two η with the same seeds (paired), both with every β
    etas = {(b, e) for _, m, b, e, _ in training_runs(cfg, "beta")}
    assert {e for _, e in etas} == {0.1, 0.01}
    assert all((b, e) in etas for b in t["beta_grid"]["betas"] for e in (0.1, 0.01))


def test_observation_margins_are_declared_in_the_schema():
    a = schema_defaults("train/analysis")
    assert a["obs1_margin"] == a["obs3_margin"] == 0.01
    assert 0 < a["obs2_margin_ratio"] < 1 and math.isclose(a["obs2_margin_ratio"], 2 / 3, rel_tol=1e-3)
    assert a["accuracy"] == "last_mean" and a["spread_window"] == 10
    assert len(_default()["train"]["seeds"]) >= a["min_seeds"]


def test_observations_preset_is_the_stationary_regime():
    """presets/observations.yaml: the spread window lies past the epochs where the measured
    curves levelled off (≤ 40, docs/observations.md), with 10 seeds per level."""
    p = yaml.safe_load((REPO / "presets" / "observations.yaml").read_text())["train"]
    assert p["epochs"] - p["analysis"]["spread_window"] >= 40
    assert len(p["seeds"]) == 10 and p["beta_grid"]["lrs"] == [0.1]
