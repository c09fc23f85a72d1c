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


def pytest_collection_modifyitems(config, items):
    """The files that run Snakemake first, the most Snakemake-running tests first: pytest-xdist
    (`-n 2 --dist loadfile`, README) hands whole files to the workers in this order
    (pyproject: --no-loadscope-reorder; its own order, by test count, started the slowest
    files last and left one worker running them alone). SLURM files lead: they mostly wait on
    the scheduler, which then overlaps the other worker's files. Ties keep xdist's order
    (more tests first), then the collection order."""
    by_file: dict = {}
    for i, item in enumerate(items):
        by_file.setdefault(item.nodeid.split("::")[0], []).append((i, item))

    def cost(entry):
        name, tests = entry
        marks = [{m.name for m in item.iter_markers()} for _, item in tests]
        slurm = sum("slurm" in m for m in marks)
        snakemake_runs = sum(bool({"pipeline", "slurm"} & m) for m in marks)
        return (-slurm, -snakemake_runs, -len(tests), tests[0][0])

    items[:] = [item for _, tests in sorted(by_file.items(), key=cost) for _, item in tests]


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
