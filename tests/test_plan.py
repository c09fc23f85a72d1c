"""igrm.pipeline.plan: the one count of a config's runs, jobs, FLOPs and hours; the README's
paper table is its output (issue 25)."""

import re

import pytest
import yaml

from igrm.pipeline.config import check_config, training_runs
from igrm.pipeline.plan import (
    FLOPS,
    THROUGHPUTS,
    count_flops,
    fullbatch_eval_steps,
    readme_table,
    sharpness_points,
    work,
)
from igrm.train import eval_due, sharpness_epochs

from .conftest import REPO


def merged(*files):
    from igrm.pipeline.plan import merge_layers

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for f in files:
        cfg = merge_layers(cfg, yaml.safe_load((REPO / f).read_text()) or {})
    return check_config(cfg)


PAPER = merged("presets/paper.yaml")


def test_paper_counts_match_the_grids():
    w = work(PAPER)
    t = PAPER["train"]
    sgd = {r for g in ("beta", "lr") for r in training_runs(PAPER, g)}
    assert w["sgd_runs"] == len(sgd) == 48  # 4 betas + 5 lrs - the shared (beta 0, eta 0.1), x 2 datasets x 3 seeds
    assert w["fullbatch_runs"] == len(training_runs(PAPER, "explicit")) == 3 * 2 * len(t["seeds"])
    assert w["training_runs"] == w["sgd_runs"] + w["fullbatch_runs"]


def test_paper_flops_by_part_from_the_per_example_counts():
    """Each part recomputed by hand from FLOPS and the preset's sizes."""
    w, t = work(PAPER), PAPER["train"]
    f10, f100 = FLOPS[("resnet18", 1.0, 10, 3, 32)], FLOPS[("resnet18", 1.0, 100, 3, 32)]
    per_ds = 24  # SGD runs per dataset
    steps_per_epoch = 50000 // 128
    want = per_ds * 200 * steps_per_epoch * 128 * (f10["train"] + f100["train"])
    assert w["flops"]["sgd_train"] == pytest.approx(want, rel=1e-12)
    assert w["flops"]["sgd_eval"] == pytest.approx(per_ds * 200 * 10000 * (f10["forward"] + f100["forward"]))
    e = t["explicit"]
    n_eval = len(range(e["eval_every"], e["steps"] + 1, e["eval_every"]))
    assert w["flops"]["fullbatch_eval"] == pytest.approx(9 * n_eval * 10000 * (f10["forward"] + f100["forward"]))
    gd = 6 * 2000 * 5000 * (f10["train"] + f100["train"])
    assert w["flops"]["fullbatch_train"] == pytest.approx(gd)
    assert w["flops"]["explicit_train"] == pytest.approx(gd / 2 * (1 + f10["hvp"] / f10["train"]), rel=1e-3)
    assert w["flops_total"] == pytest.approx(sum(w["flops"].values()))
    for k, v in THROUGHPUTS.items():
        assert w["hours"][k] == pytest.approx(w["flops_total"] / v["flops_per_s"] / 3600)


def test_declared_flops_are_the_counted_ones():
    for key, declared in FLOPS.items():
        assert count_flops(*key) == declared, key


def test_counted_flops_of_a_linear_model():
    """FlopCounterMode's count of small_cnn's head alone checks the scale: a width change moves
    every conv by the square of the width (the count is not a constant)."""
    a = count_flops("small_cnn", 0.5, 10, 3, 32)
    b = count_flops("small_cnn", 1.0, 10, 3, 32)
    assert 3.0 < b["forward"] / a["forward"] < 4.0  # first conv scales linearly, the rest quadratically
    assert 2.5 < a["train"] / a["forward"] < 3.5 and 2.5 < a["hvp"] / a["train"] < 3.5


def test_readme_paper_table_is_the_plan():
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- plan: presets/paper.yaml \(generated\) -->\n(.*?)<!-- /plan -->", text, re.S)
    assert m, "README.md lacks the generated paper table"
    assert m.group(1) == readme_table(work(PAPER)), (
        "README's paper table is stale: python -m igrm.pipeline.plan --configfile presets/paper.yaml --table"
    )
    assert "42 SGD runs" not in text and "42 ×" not in text


def test_eval_schedule_is_the_one_train_uses():
    for steps in (1, 2, 7, 60, 2000):
        for every in (1, 3, 10, 20):
            want = [e for e in range(1, steps + 1) if eval_due(e, steps, every)]
            assert fullbatch_eval_steps(steps, every) == want
            assert want[-1] == steps


def test_sharpness_points_are_igrm_train_s():
    for points in range(7):
        for epochs in (*range(1, 40), 60, 200, 2000):
            assert sharpness_points(points, epochs) == sharpness_epochs(points, epochs), (points, epochs)
