"""The README's run and job counts are the plan's (igrm.pipeline.config.plan, the function that
prints them at every start): a grid change that the README does not follow fails here (the paper
preset's counts: the generated table that tests/test_plan.py checks)."""

import copy
import re

import yaml
from snakemake.utils import update_config

from igrm.pipeline.config import load_schema, plan, with_defaults

from .conftest import REPO

README = (REPO / "README.md").read_text()


def merged(*presets):
    cfg = copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text()))
    for p in presets:
        update_config(cfg, yaml.safe_load((REPO / "presets" / p).read_text()))
    return with_defaults(cfg, load_schema(REPO / "schemas" / "config.schema.yaml"))


def test_default_counts_in_the_readme_are_the_plans():
    p = plan(merged())
    m = re.search(r"plan of today's default[^:]*, is (\d+) training runs, (\d+) noise jobs\s+and (\d+) toy", README)
    assert m, "README: the default's plan sentence is gone"
    assert tuple(map(int, m.groups())) == (p["training_runs"], p["noise_jobs"], p["other_jobs"])
