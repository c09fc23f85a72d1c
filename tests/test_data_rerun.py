"""Which data.<name> keys rerun the science (rules/data.smk): only what changes the bytes of
the data (the md5 overrides), never how they are fetched (mirrors, local, retries, backoff_s,
timeout_s, progress_s). A real run of download -> prepare on a small CIFAR-10 archive given as
a local source (no network), then Snakemake dry runs with changed keys."""

import re
import shutil

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


def scheduled(wd, cfg):
    """The jobs a dry run of TARGET would run with the config file ``cfg``. Every rerun
    trigger but mtime: the code inputs are this checkout's igrm/ files, and an edit of one
    while the test runs is not what is tested (a job whose params change reruns, and then
    everything downstream of it: "input files updated by another job", with or without mtime)."""
    proc = snakemake(TARGET, "-n", "--cores", "1", "--rerun-triggers", "params", "input", "software-env",
                     "code", "--configfile", str(TINY), str(cfg), cwd=wd)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = re.search(r"Job stats:\n(.*?)\n\n", out, re.S)
    assert table, out
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table[1], re.M) if m[1] != "total"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    wd = tmp_path_factory.mktemp("data_rerun")
    archive, _ = make_cifar10(wd / "staged" / "cifar-10-binary.tar.gz")
    md5 = md5_of(archive)
    cfg = data_yaml(wd / "data.yaml", archive, md5)
    snakemake(TARGET, "--cores", "1", "--configfile", str(TINY), str(cfg), cwd=wd)
    assert (wd / TARGET).exists()
    return wd, archive, md5


def test_transport_keys_rerun_nothing(prepared):
    wd, archive, md5 = prepared
    copy = wd / "elsewhere" / archive.name  # the same bytes from another local folder
    copy.parent.mkdir(exist_ok=True)
    copy.write_bytes(archive.read_bytes())
    assert scheduled(wd, wd / "data.yaml") == {}
    # every transport key changed at once: if any of them were a param, this would schedule
    # its job (one dry run instead of one per key: the suite's time)
    changed = data_yaml(wd / "data_transport.yaml", archive, md5, timeout_s=7.5, retries=0, backoff_s=0.25,
                        progress_s=1, mirrors='["http://127.0.0.1:9/m/"]')
    assert scheduled(wd, changed) == {}
    moved = data_yaml(wd / "data_local.yaml", copy.parent, md5, timeout_s=1, retries=5,
                      mirrors='["http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/"]')
    assert scheduled(wd, moved) == {}


def test_md5_override_reruns_download_and_prepare(prepared):
    wd, archive, _ = prepared
    other = data_yaml(wd / "data_md5.yaml", archive, "f" * 32)
    jobs = scheduled(wd, other)
    assert jobs.get("download_data") == 1 and jobs.get("prepare_data") == 1


def test_failed_download_shows_its_message_and_keeps_earlier_logs(prepared):
    """A download that fails (no source works) prints the DownloadError's message, with the way
    out, on the console: the workflow profile profiles/default/ (show-failed-logs) prints the
    rule's log, where the job's own stderr gives one line only (igrm.snakejob.logged).
    Snakemake deletes a job's log before rerunning it; the earlier attempt's log survives as
    <log>.1. One attempt (download_data: retries 0; download() retried per URL already). Runs
    in a copy of the prepared folder: the failed run leaves no manifest."""
    wd, _, _ = prepared
    wd = shutil.copytree(wd, wd.parent / (wd.name + "_failed"))
    log = wd / "logs" / "data" / "download_cifar10.log"
    first = log.read_text()
    assert "rule download_data" in first
    # nothing works: the md5 override no longer matches the archive there (moved aside as
    # .corrupt), no local copy, and the official URL only reaches a dead proxy (no network)
    failing = data_yaml(wd / "data_fail.yaml", wd / "nowhere", "a" * 32, retries=0)
    dead = "http://127.0.0.1:9"
    proc = snakemake(TARGET, "--cores", "1", "--forcerun", "download_data", "--configfile", str(TINY),
                     str(failing), cwd=wd, check=False,
                     env={"HTTPS_PROXY": dead, "https_proxy": dead, "NO_PROXY": "", "no_proxy": ""})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Using workflow specific profile" in out and "Logfile logs/data/download_cifar10.log:" in out, out
    assert "DownloadError: Could not obtain cifar-10-binary.tar.gz for dataset 'cifar10'" in out
    assert "Ways out:" in out and "data.cifar10.mirrors" in out
    assert str(wd / "resources/data/raw/cifar10/cifar-10-binary.tar.gz") in out
    # the job's stderr: one line per attempt; the traceback only inside each printed log
    assert "(the whole message and the traceback: logs/data/download_cifar10.log)" in out
    assert out.count("Traceback (most recent call last)") == out.count("Logfile logs/data/download_cifar10.log:")
    assert out.count("Logfile logs/data/download_cifar10.log:") == 1  # printed once: not retried
    assert log.with_name(log.name + ".1").read_text() == first
    assert "previous attempt's log is logs/data/download_cifar10.log.1" in log.read_text()
