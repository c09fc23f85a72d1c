"""results/report.zip appears only whole, and no temporary file holds the config
(scripts/report.py; docs/reliability.md, "The report"). The script runs against a one-rule
Snakefile here, so the nested `snakemake --report` takes seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

SNAKEFILE = """
rule all:
    output: "results/a.txt"
    shell: "echo a > {output}"
"""

RUNNER = """
import runpy, sys, types
smk = types.SimpleNamespace(
    output=["results/report.zip"], log=["logs/report.log"], rule="make_report",
    wildcards={}, params=types.SimpleNamespace(cfg={"secret_key": "value"}, snakefile=sys.argv[1]),
)
runpy.run_path(sys.argv[2], init_globals={"snakemake": smk})
"""


def start(wd: Path, env=None):
    (wd / "Snakefile").write_text(SNAKEFILE)
    (wd / "runner.py").write_text(textwrap.dedent(RUNNER))
    (wd / "results").mkdir(exist_ok=True)
    (wd / "results" / "a.txt").write_text("a\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    cmd = [sys.executable, "runner.py", str(wd / "Snakefile"), str(REPO / "scripts" / "report.py")]
    return subprocess.Popen(cmd, cwd=wd, env=env, start_new_session=True)


def tmp_yamls(tmpdir: Path) -> set[str]:
    return {p.name for p in tmpdir.glob("tmp*.yaml")}


@pytest.mark.pipeline
def test_report_is_renamed_into_place_whole_and_leaves_no_config_in_tmp(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    wd = tmp_path / "wd"
    wd.mkdir()
    proc = start(wd, env={"TMPDIR": str(tmpdir)})
    assert proc.wait(timeout=300) == 0, (wd / "logs" / "report.log").read_text()
    with zipfile.ZipFile(wd / "results" / "report.zip") as z:
        assert z.testzip() is None and any(n.startswith("report/") for n in z.namelist())
    assert not (wd / "results" / ".report.zip.part").exists()
    assert tmp_yamls(tmpdir) == set()
    assert "secret_key" in (wd / "logs" / "report.config.yaml").read_text()


@pytest.mark.pipeline
def test_killed_report_leaves_no_partial_zip_and_no_config_in_tmp(tmp_path):
    """The process group SIGKILLed while the nested report runs: no results/report.zip, no
    /tmp/tmpXXXX.yaml; the next report clears the staging folder and completes."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    wd = tmp_path / "wd"
    wd.mkdir()
    proc = start(wd, env={"TMPDIR": str(tmpdir)})
    staging = wd / "results" / ".report.zip.part"
    deadline = time.time() + 120
    while not (staging.exists() or tmp_yamls(tmpdir)) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.5)  # the nested snakemake under way
    assert proc.poll() is None, "the report ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (wd / "results" / "report.zip").exists()
    assert tmp_yamls(tmpdir) == set()
    (staging / "report.zip").parent.mkdir(parents=True, exist_ok=True)
    (staging / "report.zip").write_bytes(b"PK\x03\x04 half a zip")  # what a later kill could leave
    proc = start(wd, env={"TMPDIR": str(tmpdir)})
    assert proc.wait(timeout=300) == 0
    assert zipfile.is_zipfile(wd / "results" / "report.zip") and not staging.exists()
