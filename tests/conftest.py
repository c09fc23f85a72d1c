import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# The test being run (set before its fixtures): snakemake() below refuses to run for a test
# that is not marked pipeline or slurm, so the fast tier (-m "not pipeline and not slurm",
# README) never runs Snakemake.
_RUNNING: dict = {"item": None}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _RUNNING["item"] = item


def pytest_runtest_teardown(item):
    _RUNNING["item"] = None


def snakemake(*args, cwd, check=True, timeout=900, env=None, as_user=False):
    """Run this repo's workflow in ``cwd`` with the test interpreter's Snakemake (``env``: extra
    environment variables). Only from a test marked pipeline or slurm. Snakemake's job blocks
    are on (``--quiet host``; the tests read the jobs from them) unless ``as_user``: the
    console a user gets from profiles/default."""
    item = _RUNNING["item"]
    if item is not None and not {"pipeline", "slurm"} & {m.name for m in item.iter_markers()}:
        raise AssertionError(
            f"{item.nodeid} runs Snakemake but is not marked: add @pytest.mark.pipeline"
            " (or slurm), so that the fast tier -m 'not pipeline and not slurm' stays fast"
        )
    verbose = [] if as_user else ["--quiet", "host"]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *verbose, "--directory", str(cwd), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture
def repo():
    return REPO
