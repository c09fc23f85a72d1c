"""Outputs and logs (igrm.io, igrm.snakejob): atomic writes end with the mode the umask gives;
a rerun keeps the log of the earlier (even killed) attempt."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from igrm import io, snakejob

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
from igrm.snakejob import logged
with logged(SimpleNamespace(log=[sys.argv[1]], rule="r", wildcards={})):
    print("killed attempt, epoch 17", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_log_of_a_killed_attempt_survives_snakemakes_deletion(tmp_path):
    """Killed (SIGKILL: no clean-up), then Snakemake deletes <log> before the rerun."""
    log = tmp_path / "job.log"
    proc = subprocess.run([sys.executable, "-c", KILLED, str(log)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    log.unlink()  # what Snakemake does to a job's log before it runs the job again
    with snakejob.logged(fake_job(log)):
        print("second attempt")
    assert "killed attempt, epoch 17" in log.with_name("job.log.1").read_text()
    assert "second attempt" in log.read_text() and "epoch 17" not in log.read_text()
