"""Outputs and logs (igrm.pipeline.io, igrm.pipeline.snakejob): atomic writes end with the mode the umask gives;
a rerun keeps the log of the earlier (even killed) attempt."""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from igrm.pipeline import io, snakejob

from .conftest import REPO


@pytest.fixture
def umask_002():
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(Path(path).stat().st_mode)


def test_atomic_writes_follow_the_umask(tmp_path, umask_002):
    """Under umask 0002 group members can read (and write) results: 0664, as open() gives."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    h5 = io.write_h5(tmp_path / "r.h5", {"a": np.arange(3)}, {"k": 1})
    txt = io.write_text_atomic(tmp_path / "t.csv", "a,b\n")
    tables = io.write_table(__import__("pandas").DataFrame({"a": [1.0]}), tmp_path / "table")
    for p in (h5, txt, *tables):
        assert mode(p) == mode(plain) == 0o664, p
    os.umask(0o077)
    assert mode(io.write_text_atomic(tmp_path / "private.txt", "x")) == 0o600
    assert io.current_umask() == 0o077


def test_downloaded_archive_follows_the_umask(tmp_path, monkeypatch, umask_002):
    from igrm import data

    from . import archives

    arc, _ = archives.make_cifar10(tmp_path / "src" / "cifar-10-binary.tar.gz")
    monkeypatch.setitem(data.DATASETS, "cifar10", archives.spec_for("cifar10", [arc], [arc.parent.as_uri() + "/"]))
    (path,) = data.download("cifar10", tmp_path / "raw", {"retries": 0})
    assert mode(path) == mode(data._sidecar(path)) == 0o664


def fake_job(log):
    return SimpleNamespace(log=[str(log)], rule="r", wildcards={"x": "1"})


def test_rerun_rotates_the_log(tmp_path):
    log = tmp_path / "logs" / "job.log"
    for i in range(1, 8):
        with snakejob.logged(fake_job(log)):
            print(f"attempt {i}")
    assert "attempt 7" in log.read_text()
    for k in range(1, snakejob.KEEP_LOGS + 1):
        assert f"attempt {7 - k}" in log.with_name(f"job.log.{k}").read_text()
    assert not log.with_name(f"job.log.{snakejob.KEEP_LOGS + 1}").exists()


KILLED = """
import os, signal, sys
from types import SimpleNamespace
from igrm.pipeline.snakejob import logged
with logged(SimpleNamespace(log=[sys.argv[1]], rule="r", wildcards={})):
    print("killed attempt, epoch 17", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_log_of_a_killed_attempt_survives_snakemakes_deletion(tmp_path):
    """Killed (SIGKILL: no clean-up), then Snakemake deletes <log> before the rerun."""
    log = tmp_path / "job.log"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(log)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    log.unlink()  # what Snakemake does to a job's log before it runs the job again
    with snakejob.logged(fake_job(log)):
        print("second attempt")
    assert "killed attempt, epoch 17" in log.with_name("job.log.1").read_text()
    assert "second attempt" in log.read_text() and "epoch 17" not in log.read_text()


def test_training_progress_is_a_live_csv_and_four_console_lines(tmp_path):
    """A training job's live view (igrm.pipeline.snakejob.RunProgress): every epoch appends one whole row
    to <log>.progress.csv (readable while the run goes: `tail -f`); the console gets a line at
    25/50/75/100 % of the epochs only (10 epochs: 3, 5, 8, 10), and when a run diverges."""
    import io as stdio

    console = stdio.StringIO()
    p = snakejob.RunProgress(fake_job(tmp_path / "logs" / "run.log"), console=console)
    assert p.path == tmp_path / "logs" / "run.progress.csv"
    for e in range(1, 11):
        row = {
            "train_loss": 1 / e,
            "train_acc": e / 20,
            "test_loss": 2 / e,
            "test_acc": e / 25,
            "grad_norm_sq": 0.5,
            "lr": 0.01,
            "steps": 7 * e,
            "wall_time": 1.5 * e,
        }
        p.epoch(e, 10, row, "completed" if e == 10 else "running")
        text = p.path.read_text()
        assert text.endswith("\n") and text.count("\n") == 1 + e  # the header, then one row per epoch
    rows = __import__("pandas").read_csv(p.path)
    assert list(rows.columns) == list(snakejob.PROGRESS_COLUMNS)
    assert rows["epoch"].tolist() == list(range(1, 11)) and rows["test_acc"].iloc[-1] == 0.4
    assert rows["status"].tolist() == ["running"] * 9 + ["completed"]
    lines = console.getvalue().splitlines()
    assert [ln.split("epoch ")[1].split("/")[0] for ln in lines] == ["3", "5", "8", "10"], lines
    assert lines[0] == "r x=1: epoch 3/10 running, test_acc 0.1200, train_loss 0.3333, 4 s/epoch"
    p.epoch(2, 200, {**row, "test_acc": float("nan")}, "diverged")  # not a quarter, but the end
    assert console.getvalue().splitlines()[-1].startswith("r x=1: epoch 2/200 diverged, test_acc nan")
    assert snakejob.console_epochs(200) == {50, 100, 150, 200} and snakejob.console_epochs(1) == {1}
    # a new attempt of the job starts its CSV afresh
    assert snakejob.RunProgress(fake_job(tmp_path / "logs" / "run.log")).path.read_text().count("\n") == 1


def test_a_silent_job_says_it_is_alive_and_a_talking_one_is_left_alone(tmp_path, monkeypatch):
    """igrm.pipeline.snakejob.Heartbeat: a line whenever the job has been silent on the console
    for ``every`` seconds (a minute in a run), with the run's clock against the plan's estimate;
    none while the job prints its own lines (a training job's progress)."""
    import io as stdio

    monkeypatch.setenv(snakejob.RUN_START_ENV, str(time.time() - 65))
    monkeypatch.setenv(snakejob.RUN_ETA_ENV, "480")
    beats = stdio.StringIO()
    with snakejob.Heartbeat(fake_job(tmp_path / "logs" / "noise.log"), every=0.3, stream=beats):
        time.sleep(1.2)
    lines = beats.getvalue().splitlines()
    assert 2 <= len(lines) <= 5, lines
    assert all("r x=1 still running" in ln and "of ~8:00 planned" in ln for ln in lines), lines
    assert str(tmp_path / "logs" / "noise.log") in lines[0]
    quiet, own = stdio.StringIO(), stdio.StringIO()
    with snakejob.Heartbeat(fake_job(tmp_path / "logs" / "train.log"), every=0.5, stream=quiet):
        for _ in range(8):
            snakejob.console("epoch line", own)
            time.sleep(0.15)
    assert quiet.getvalue() == "" and own.getvalue().count("epoch line") == 8


def test_the_run_clock_and_the_last_line(tmp_path, monkeypatch):
    env = {snakejob.RUN_START_ENV: "1000", snakejob.RUN_ETA_ENV: "3725"}
    assert snakejob.run_clock(env, now=1000 + 192) == "run 3:12 of ~1:02:05 planned"
    assert snakejob.run_clock({}, now=5) == ""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "tables").mkdir(parents=True)
    (tmp_path / "results" / "tables" / "claims_summary.md").write_text("x")
    (tmp_path / "results" / "index.html").write_text("x")
    line = snakejob.last_line("results", ok=True, report=True)
    assert line.startswith("igrm: finished.") and "results/tables/claims_summary.md" in line
    assert "results/index.html" in line and "report.zip" not in line  # not made: not pointed to
    assert "partial.md" in snakejob.last_line("results", ok=False, partial=("a/partial.md", "b/index.partial.html"))
    monkeypatch.setenv(snakejob.RUN_START_ENV, "0")  # restored after the test (start_run_clock sets both)
    monkeypatch.setenv(snakejob.RUN_ETA_ENV, "0")
    line = snakejob.start_run_clock({"training_passes": 9.0e5, "noise_passes": 0}, 2, 500.0)
    assert "about 15:00 (h:mm:ss)" in line and os.environ[snakejob.RUN_ETA_ENV] == "900"
    # a run of one target: only its own training jobs count (2 of the plan's 6 runs)
    plan = {"training_passes": 9.0e5, "noise_passes": 1.0e5, "training_runs": 6, "noise_jobs": 2}
    line = snakejob.start_run_clock(plan, 2, 500.0, {"train_run": 2, "fig_x": 1})
    assert "about 5:00 (h:mm:ss)" in line
    line = snakejob.start_run_clock(plan, 2, 500.0, {"fig_x": 1})
    assert "no training or noise estimate" in line and snakejob.RUN_ETA_ENV not in os.environ
