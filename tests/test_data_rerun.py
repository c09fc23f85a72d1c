"""Which data.<name> keys rerun the science (rules/data.smk): only what changes the bytes of
the data (the md5 overrides), never how they are fetched (mirrors, local, retries, backoff_s,
timeout_s, progress_s). A real run of download -> prepare on a small CIFAR-10 archive given as
a local source (no network), then Snakemake dry runs with changed keys, and one real run with a
changed md5 that no source can satisfy: what a failed download shows on the console."""

import re
import shutil
from types import SimpleNamespace

import pytest

from .archives import make_cifar10, md5_of
from .conftest import REPO, snakemake

pytestmark = pytest.mark.pipeline

TINY = REPO / "tests" / "configs" / "tiny.yaml"
TARGET = "resources/data/cifar10.h5"


def data_yaml(path, archive, md5, **extra):
    lines = [f"    local: {archive}", f"    md5: {{cifar-10-binary.tar.gz: {md5}}}"]
    lines += [f"    {k}: {v}" for k, v in extra.items()]
    path.write_text("data:\n  cifar10:\n" + "\n".join(lines) + "\n")
    return path


# every rerun trigger but mtime: the code inputs are this checkout's igrm/ files, and an edit of
# one while the test runs is not what is tested (a job whose params change reruns, and then
# everything downstream of it: "input files updated by another job", with or without mtime)
TRIGGERS = ("--rerun-triggers", "params", "input", "software-env", "code")


def job_stats(out):
    """The jobs of Snakemake's "Job stats" table in ``out`` ({} when there is nothing to do)."""
    if "Nothing to be done" in out:
        return {}
    table = re.search(r"Job stats:\n(.*?)\n\n", out, re.S)
    assert table, out
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table[1], re.M) if m[1] != "total"}


def scheduled(wd, cfg):
    """The jobs a dry run of TARGET would run with the config file ``cfg``."""
    proc = snakemake(TARGET, "-n", "--cores", "1", *TRIGGERS, "--configfile", str(TINY), str(cfg), cwd=wd)
    return job_stats(proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    wd = tmp_path_factory.mktemp("data_rerun")
    archive, _ = make_cifar10(wd / "staged" / "cifar-10-binary.tar.gz")
    md5 = md5_of(archive)
    cfg = data_yaml(wd / "data.yaml", archive, md5)
    snakemake(TARGET, "--cores", "1", "--configfile", str(TINY), str(cfg), cwd=wd)
    assert (wd / TARGET).exists()
    return wd, archive, md5


@pytest.fixture(scope="module")
def md5_changed(prepared):
    """A real run of TARGET with a changed md5 override, in a copy of the prepared folder (the
    failed run leaves no manifest). Nothing can give an archive with that MD5: the one there
    is moved aside as .corrupt, there is no local copy, and the official URL only reaches a
    dead proxy (no network). So download_data reruns, and fails."""
    wd, _, _ = prepared
    wd = shutil.copytree(wd, wd.parent / (wd.name + "_md5"))
    log = wd / "logs" / "data" / "download_cifar10.log"
    first = log.read_text()
    cfg = data_yaml(wd / "data_md5.yaml", wd / "nowhere", "f" * 32, retries=0)
    dead = "http://127.0.0.1:9"
    proc = snakemake(
        TARGET,
        "--cores",
        "1",
        *TRIGGERS,
        "--configfile",
        str(TINY),
        str(cfg),
        cwd=wd,
        check=False,
        env={"HTTPS_PROXY": dead, "https_proxy": dead, "NO_PROXY": "", "no_proxy": ""},
    )
    return SimpleNamespace(wd=wd, log=log, first_log=first, rc=proc.returncode, out=proc.stdout + proc.stderr)


def test_transport_keys_rerun_nothing(prepared):
    wd, archive, md5 = prepared
    copy = wd / "elsewhere" / archive.name  # the same bytes from another local folder
    copy.parent.mkdir(exist_ok=True)
    copy.write_bytes(archive.read_bytes())
    assert scheduled(wd, wd / "data.yaml") == {}
    # every transport key changed at once: if any of them were a param, this would schedule
    # its job (one dry run instead of one per key: the suite's time)
    changed = data_yaml(
        wd / "data_transport.yaml",
        archive,
        md5,
        timeout_s=7.5,
        retries=0,
        backoff_s=0.25,
        progress_s=1,
        mirrors='["http://127.0.0.1:9/m/"]',
    )
    assert scheduled(wd, changed) == {}
    moved = data_yaml(
        wd / "data_local.yaml",
        copy.parent,
        md5,
        timeout_s=1,
        retries=5,
        mirrors='["http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/"]',
    )
    assert scheduled(wd, moved) == {}


def test_md5_override_reruns_download_and_prepare(md5_changed):
    assert job_stats(md5_changed.out) == {"download_data": 1, "prepare_data": 1}, md5_changed.out
    assert "reason: Params have changed since last execution" in md5_changed.out


def test_failed_download_shows_its_message_and_keeps_earlier_logs(md5_changed):
    """The DownloadError's message, with the ways out, on the console: the workflow profile
    profiles/default/ (show-failed-logs) prints the rule's log, where the job's own stderr
    gives one line (igrm.pipeline.snakejob.logged). One attempt (download_data: retries 0; download()
    retries per URL already). Snakemake deletes a job's log before rerunning it; the earlier
    attempt's log survives as <log>.1."""
    out, wd, log = md5_changed.out, md5_changed.wd, md5_changed.log
    assert md5_changed.rc != 0, out
    assert "Using workflow specific profile" in out and "Logfile logs/data/download_cifar10.log:" in out, out
    assert "DownloadError: Could not obtain cifar-10-binary.tar.gz for dataset 'cifar10'" in out
    assert "Ways out:" in out and "data.cifar10.mirrors" in out
    assert str(wd / "resources/data/raw/cifar10/cifar-10-binary.tar.gz") in out
    # the job's stderr: one line; the traceback only inside the printed log, printed once
    assert "(the whole message and the traceback: logs/data/download_cifar10.log)" in out
    assert out.count("Traceback (most recent call last)") == out.count("Logfile logs/data/download_cifar10.log:") == 1
    assert log.with_name(log.name + ".1").read_text() == md5_changed.first_log
    assert "previous attempt's log is logs/data/download_cifar10.log.1" in log.read_text()
