"""The README's run and job counts are the plan's (igrm.pipeline.config.plan, the function that
prints them at every start): a grid change that the README does not follow fails here."""

import copy
import re

import yaml
from snakemake.utils import update_config

from igrm.pipeline.config import load_schema, plan, training_runs, with_defaults

from .conftest import REPO

README = (REPO / "README.md").read_text()


def merged(*presets):
    cfg = copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text()))
    for p in presets:
        update_config(cfg, yaml.safe_load((REPO / "presets" / p).read_text()))
    return with_defaults(cfg, load_schema(REPO / "schemas" / "config.schema.yaml"))


def sgd_runs(cfg) -> int:
    runs = {r for g in ("beta", "lr", "explicit") for r in training_runs(cfg, g)}
    return sum(1 for _, method, *_ in runs if method == "sgdm")


def test_default_counts_in_the_readme_are_the_plans():
    p = plan(merged())
    m = re.search(r"plan of today's default[^:]*, is (\d+) training runs, (\d+) noise jobs\s+and (\d+) toy", README)
    assert m, "README: the default's plan sentence is gone"
    assert tuple(map(int, m.groups())) == (p["training_runs"], p["noise_jobs"], p["other_jobs"])


def test_paper_preset_counts_in_the_readme_are_the_plans():
    cfg = merged("paper.yaml")
    p, sgd = plan(cfg), sgd_runs(cfg)
    m = re.search(r"(\d+) training runs \(the plan: (\d+) SGD/SGD\+M runs, (\d+) full-batch runs\)", README)
    assert m, "README: the paper preset's run counts are gone"
    assert tuple(map(int, m.groups())) == (p["training_runs"], sgd, p["training_runs"] - sgd)
    formula = re.search(r"GPU-hours = \((\d+) × (\d+) × t_epoch \+ (\d+) × ", README)
    assert formula and (int(formula[1]), int(formula[2]), int(formula[3])) == (
        sgd,
        cfg["train"]["epochs"],
        p["training_runs"] - sgd,
    )
