"""The SLURM profile on a real scheduler (docs/cluster.md).

The profile checks run anywhere. The cluster tests (marker `slurm`) need a SLURM cluster
that answers on this machine: CI starts a single-node one with .ci/slurm-setup.sh; without
`sbatch` (a laptop) they are skipped with the reason. They run the workflow through
`--profile profiles/slurm --profile profiles/ci-slurm` in temporary folders:

- the CIFAR part of the tiny test config: every cluster job goes through sbatch (one SLURM
  log per job) and the results equal a local run's;
- a training job cancelled with scancel: Snakemake reports it with its logs and its retry
  resumes from the checkpoint; one Ctrl-C cancels the retry; a killed head process leaves
  an orphan that the next run cancels (igrm/pipeline/slurm.py) before it resumes and finishes;
- a job that fails at run time is reported with its log paths.

Foreground Snakemake calls are wrapped in `timeout -s INT` (SIGINT makes Snakemake cancel
its SLURM jobs; SIGTERM would leave them running); background ones get exactly one SIGINT
from the test (see `smk`). No step waits on a job being slow or fast: jobs that must be
cancelled mid-run cannot finish by construction, and are held (scontrol suspend) before
their checkpoint is read.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from .conftest import REPO

TINY = REPO / "tests" / "configs" / "tiny.yaml"
SLURM = REPO / "profiles" / "slurm" / "config.yaml"
CI = REPO / "profiles" / "ci-slurm" / "config.yaml"
PROFILES = ["--profile", str(SLURM.parent), "--profile", str(CI.parent)]
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")
SITE_KEYS = ("slurm_partition", "slurm_account", "gpu_model")


def load(path):
    return yaml.safe_load(path.read_text())


# ------------------------------------------------------------------ profile checks (anywhere)
def gpu_rules():
    """Rules whose `resources:` declare gpu=..., from the rule files' text."""
    found = set()
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for name, body in re.findall(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)*)", smk.read_text(), re.M):
            res = re.search(r"^\s+resources:\n((?:\s{8,}.*\n)*)", body, re.M)
            if res and re.search(r"^\s+gpu\s*=", res.group(1), re.M):
                found.add(name)
    return found


def test_slurm_profile_settings():
    p = load(SLURM)
    assert p["executor"] == "slurm"
    assert p["slurm-requeue"] is True and p["retries"] >= 1
    assert p["keep-going"] is True and p["rerun-incomplete"] is True
    assert p["slurm-logdir"] and p["latency-wait"] >= 30 and p["jobs"] >= 1
    assert {"mem_mb", "runtime", "cpus_per_task"} <= set(p["default-resources"])


def test_every_gpu_rule_has_cluster_resources():
    rules = gpu_rules()
    assert "train_run" in rules
    res = load(SLURM)["set-resources"]
    missing = rules - set(res)
    assert not missing, f"GPU rule(s) {sorted(missing)} need `<rule>: *gpu_job` in profiles/slurm set-resources"
    for r in rules:
        assert res[r] == res["train_run"], r  # one GPU block (YAML alias), one place


def test_site_settings_live_in_one_place():
    """Partition, account and GPU model: the SITE block of profiles/slurm only; the rules
    declare portable resources (gpu=N, threads) and no scheduler flags."""
    lines = [ln.split("#")[0] for ln in SLURM.read_text().splitlines()]
    count = {k: sum(bool(re.match(rf"\s+{k}:", ln)) for ln in lines) for k in SITE_KEYS}
    assert count == {"slurm_partition": 2, "slurm_account": 1, "gpu_model": 1}, count
    for smk in (REPO / "rules").glob("*.smk"):
        text = smk.read_text()
        for k in (*SITE_KEYS, "slurm_extra", "cpus_per_task"):
            assert k not in text, f"{smk.name} sets {k}: cluster settings belong in profiles/slurm"


def test_ci_overlay_restates_the_same_resources():
    """Later profiles replace whole top-level keys: the overlay must name every rule and
    resource of profiles/slurm, or CI would test something else than users run."""
    base, ci = load(SLURM), load(CI)
    assert set(ci["default-resources"]) == set(base["default-resources"])
    assert set(ci["set-resources"]) == set(base["set-resources"])
    for rule, res in base["set-resources"].items():
        assert set(ci["set-resources"][rule]) == set(res), rule
    assert ci["slurm-status-command"] == "squeue"
    assert "executor" not in ci and "slurm-requeue" not in ci and "retries" not in ci


def test_run_ids_are_read_from_snakemake_logs(tmp_path):
    """The hooks find a run's SLURM run ID in its log (Snakemake passes a list of paths);
    a local run's log has none, so the hooks do nothing for it."""
    from igrm.pipeline.slurm import _alive, slurm_run_ids

    a, b, local = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "local.log"
    a.write_text("Building DAG of jobs...\nSLURM run ID: 1f0c-aa\nJob 0 has been submitted\n")
    b.write_text("SLURM run ID: 77-bb\n")
    local.write_text("Building DAG of jobs...\nlocalrule all:\n")
    assert slurm_run_ids(a) == ["1f0c-aa"] and slurm_run_ids(str(b)) == ["77-bb"]
    assert slurm_run_ids([a, b, tmp_path / "missing.log"]) == ["1f0c-aa", "77-bb"]
    assert slurm_run_ids(local) == [] and slurm_run_ids(None) == [] and slurm_run_ids([]) == []
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert _alive(os.getpid()) and not _alive(dead.pid)


# ------------------------------------------------------------------ on a SLURM cluster
def cluster_or_skip():
    if shutil.which("sbatch") is None:
        pytest.skip("no `sbatch`: the SLURM tests need a cluster (CI: .ci/slurm-setup.sh)")
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"`sinfo` does not answer ({e}): no SLURM controller")
    if out.returncode != 0 or not re.search(r"idle|mixed|alloc", out.stdout):
        pytest.skip(f"no usable SLURM node (sinfo: {out.stdout.strip() or out.stderr.strip()})")
    pytest.importorskip("snakemake_executor_plugin_slurm")


def smk(wd, *args, timeout=240, slurm=True, background=False):
    """Snakemake on this repo's workflow, started in `wd` (the plugin puts logs/slurm under
    the start folder). In the foreground it is stopped by SIGINT after `timeout` s; in the
    background it runs without `timeout` (which would send a SIGINT twice: to the child and
    to its process group), in a session of its own with SIGINT at its default, so that the
    test's one SIGINT is one Ctrl-C; the test stops it (Run.interrupt / Run.kill)."""
    base = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--quiet",  # Snakemake's job blocks on (profiles/default hides them): the tests read them
        "host",
        "--directory",
        str(wd),
        *(PROFILES if slurm else []),
        *args,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    if background:
        log = open(wd / f"snakemake-{time.monotonic_ns()}.out", "w")
        proc = subprocess.Popen(
            base,
            cwd=wd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        proc.out_path = log.name
        return proc
    cmd = ["timeout", "-s", "INT", "-k", "30", str(timeout), *base]
    return subprocess.run(cmd, cwd=wd, env=env, capture_output=True, text=True, timeout=timeout + 60)


def data_config(wd, n_per_batch=40):
    from .archives import make_cifar10, md5_of

    archive, _ = make_cifar10(wd / "staged" / "cifar-10-binary.tar.gz", n_per_batch=n_per_batch, n_test=100)
    cfg = wd / "data.yaml"
    cfg.write_text(f"data:\n  cifar10:\n    local: {archive}\n    md5: {{cifar-10-binary.tar.gz: {md5_of(archive)}}}\n")
    return cfg


def h5_arrays(path):
    out = {}
    with h5py.File(path) as h:
        h.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def wait_for(predicate, timeout, what, proc=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"Snakemake ended (rc {proc.returncode}) while waiting for {what}:\n"
                + open(proc.out_path).read()[-4000:]
            )
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


CIFAR_TARGETS = ["results/tables/cifar_final.csv", "results/claims/cifar.csv"]


@pytest.mark.slurm
def test_cifar_part_through_sbatch_equals_local(tmp_path_factory):
    cluster_or_skip()
    runs = {}
    for kind in ("slurm", "local"):  # the cluster run mostly waits: run both at once
        wd = tmp_path_factory.mktemp(f"cifar_{kind}")
        args = [*CIFAR_TARGETS, "--configfile", str(TINY), str(data_config(wd))]
        if kind == "local":
            runs[kind] = (wd, smk(wd, "--cores", "1", *args, slurm=False))
        else:
            runs[kind] = (wd, smk(wd, *args, timeout=240, background=True))
    slurm_proc = runs["slurm"][1]
    try:
        slurm_proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        slurm_proc.send_signal(signal.SIGINT)
        slurm_proc.wait(timeout=120)
        raise AssertionError("the SLURM run took over 300 s:\n" + open(slurm_proc.out_path).read()[-4000:]) from None
    for kind, (wd, proc) in runs.items():
        out = proc.stdout + proc.stderr if kind == "local" else open(proc.out_path).read()
        assert proc.returncode == 0, f"{kind} run failed ({proc.returncode}):\n{out[-6000:]}"
        runs[kind] = (wd, out)

    wd, out = runs["slurm"]
    # every job of a non-local rule went through sbatch, and ran there
    cluster_jobs = re.findall(r"^rule (\w+):$", out, re.M)
    local_jobs = re.findall(r"^localrule (\w+):$", out, re.M)
    submitted = SUBMITTED.findall(out)
    # local: the download and the cheap tidy/plot/table/claims rules (localrule: True)
    assert cluster_jobs and "train_run" in cluster_jobs
    assert all(j == "download_data" or j.startswith(("tidy_", "fig_", "table_", "claims_")) for j in local_jobs), (
        local_jobs
    )
    assert not any(j.startswith(("tidy_", "fig_", "table_", "claims_")) for j in cluster_jobs)
    assert len(submitted) == len(cluster_jobs), (len(submitted), cluster_jobs)
    assert len({j for j, _ in submitted}) == len(submitted)
    logs = sorted((wd / "logs" / "slurm").rglob("*.log"))
    assert len(logs) == len(cluster_jobs)
    for jobid, log in submitted:
        text = open(log).read()
        assert "1 of 1 steps (100%) done" in text, (log, text[-2000:])
        assert os.path.basename(log) == f"{jobid}.log"

    # same results as on one machine (CPU, same seeds: bit-identical training metrics)
    loc = runs["local"][0]
    for rel in ("results/tables/cifar_final.csv", "results/claims/cifar.csv", "results/tidy/cifar_beta_finals.csv"):
        a, b = (pd.read_csv(d / rel) for d in (wd, loc))
        timing = [c for c in a.columns if "wall_time" in c]
        pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing), obj=rel)
    runs_h5 = sorted((loc / "results" / "train").rglob("*.h5"))
    assert len(runs_h5) == 6
    for f in runs_h5:
        a, b = h5_arrays(f), h5_arrays(wd / f.relative_to(loc))
        keys = {k for k in a if "wall_time" not in k}
        assert keys and keys == {k for k in b if "wall_time" not in k}
        for k in keys:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{f.name}:{k}")


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A folder with the prepared data and a config whose one SGD+M run cannot finish
    within the test by construction (LONG_EPOCHS epochs, a checkpoint after every epoch), on
    one (fake) GPU per training job. Under the constant schedule `epochs` is not part of the
    checkpoint's fingerprint (docs/training.md), so the last step asks for fewer epochs and
    the resumed run finishes. Every job the tests submitted is cancelled at the end."""
    cluster_or_skip()
    wd = tmp_path_factory.mktemp("slurm_resume")
    long_cfg = wd / "long.yaml"
    long_cfg.write_text(f"train:\n  epochs: {LONG_EPOCHS}\n  checkpoint_every: 1\n  gpus_per_job: 1\n")
    args = ["--configfile", str(TINY), str(data_config(wd)), str(long_cfg)]
    proc = smk(wd, "resources/data/cifar10.h5", *args, timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    yield wd, args
    ids = {j for f in wd.glob("snakemake-*.out") for j, _ in SUBMITTED.findall(f.read_text())}
    if ids:
        subprocess.run(["scancel", *sorted(ids)], capture_output=True)


RUN = "cifar10/small_cnn/sgdm/beta0.9_eta0.1_seed0"
# ~0.1-1 s an epoch here: 10^5 epochs are hours, the test's waits are minutes
LONG_EPOCHS = 100_000


def checkpoint_epoch(wd):
    found = [
        int(m.group(1))
        for p in (wd / "results" / "checkpoints" / RUN).rglob("ckpt_epoch*.pt")
        if (m := re.match(r"ckpt_epoch(\d+)\.pt$", p.name))
    ]
    return max(found) if found else 0


def squeue_state(jobid):
    out = subprocess.run(
        ["squeue", "-h", "--states=all", "-j", jobid, "-o", "%T"], capture_output=True, text=True
    ).stdout.strip()
    return out or None


def hold(jobid, wd):
    """Freeze a running job where it is (SLURM suspends it: SIGSTOP, resources kept), then
    read its newest checkpoint epoch, which from here on no longer moves (up to a
    checkpoint it may finish renaming in the instant a later scancel lets it run)."""
    subprocess.run(["scontrol", "suspend", jobid], check=True, capture_output=True, text=True)
    wait_for(lambda: squeue_state(jobid) == "SUSPENDED", 60, f"job {jobid} to be suspended")
    return checkpoint_epoch(wd)


class Run:
    """A Snakemake run in the background; its sbatch submissions in order."""

    def __init__(self, wd, *args):
        self.proc = smk(wd, *args, timeout=600, background=True)
        self.seen = 0

    def text(self):
        return open(self.proc.out_path).read()

    def next_job(self, what):
        def new():
            found = SUBMITTED.findall(self.text())
            return found[self.seen] if len(found) > self.seen else None

        job = wait_for(new, 120, what, self.proc)
        self.seen += 1
        return job

    def interrupt(self):
        """One SIGINT to Snakemake, as one Ctrl-C (not through `timeout`, which also signals
        its process group: two SIGINTs, the second inside Snakemake's cancel handler)."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=120)

    def kill(self):
        self.proc.kill()
        return self.proc.wait(timeout=60)


@pytest.mark.slurm
def test_cancelled_training_resumes_from_checkpoint(long_run):
    """scancel mid-run: Snakemake reports the job CANCELLED with its SLURM log and resubmits
    it (retries: 1); the new attempt resumes from the checkpoint. One Ctrl-C stops
    Snakemake and cancels that attempt. A third run is started and its head process killed:
    its job is left running (an orphan), and the next run cancels it before it submits its
    own, which resumes from the orphan's last checkpoint and finishes.

    No step waits on a job being slow: the run cannot finish by construction (LONG_EPOCHS),
    and each job is held (scontrol suspend) before its checkpoint epoch is read."""
    wd, args = long_run
    target = f"results/train/{RUN}.h5"
    train_log = wd / "logs" / "train" / "cifar10" / "sgdm" / "beta0.9_eta0.1_seed0.log"

    def resumed_from(proc):
        m = wait_for(
            lambda: (
                re.search(r"resumed from ckpt_epoch(\d+)\.pt", train_log.read_text()) if train_log.exists() else None
            ),
            120,
            "the resume line in the training log",
            proc,
        )
        return int(m.group(1))

    run = Run(wd, target, *args)
    try:
        # attempt 1: its first checkpoint, held, then cancelled by hand
        job1, log1 = run.next_job("sbatch of attempt 1")
        wait_for(lambda: checkpoint_epoch(wd) >= 1, 120, "a checkpoint of attempt 1", run.proc)
        job = subprocess.run(["scontrol", "show", "job", job1], capture_output=True, text=True).stdout
        assert re.search(r"TresPerJob=\S*gpu:1", job), job  # gpu=1 became --gpus=1
        at1 = hold(job1, wd)
        assert at1 >= 1
        subprocess.run(["scancel", job1], check=True)

        # attempt 2 (Snakemake's retry) resumes from that checkpoint
        job2, _ = run.next_job("sbatch of attempt 2")
        r2 = resumed_from(run.proc)
        assert at1 <= r2 <= at1 + 1
        wait_for(lambda: checkpoint_epoch(wd) > r2, 120, "a checkpoint of attempt 2", run.proc)
        at2 = hold(job2, wd)
    finally:
        rc = run.interrupt() if run.proc.poll() is None else run.proc.returncode
    out = run.text()
    assert rc != 0, out[-4000:]
    assert "Terminating processes on user request" in out, out[-4000:]
    assert re.search(rf"SLURM-job '{job1}' failed, SLURM status is: 'CANCELLED'", out), out[-4000:]
    assert f", {log1} (check log file(s) for error details)" in out, out[-4000:]
    # one Ctrl-C: nothing of this run is left (Snakemake's scancel, or else the onerror hook's)
    assert squeue_state(job2) == "CANCELLED", (squeue_state(job2), out[-4000:])
    assert not (wd / target).exists()

    # a third run whose head process dies: its job runs on, untracked
    train_log.unlink(missing_ok=True)
    run3 = Run(wd, target, *args)
    try:
        job3, _ = run3.next_job("sbatch of the third run")
        r3 = resumed_from(run3.proc)
        assert at2 <= r3 <= at2 + 1
        wait_for(lambda: checkpoint_epoch(wd) > r3, 120, "a checkpoint of the third run", run3.proc)
    finally:
        run3.kill()  # SIGKILL: no hook runs
    assert squeue_state(job3) == "RUNNING"
    at3 = hold(job3, wd)

    # the next run cancels the orphan first, then resumes from its checkpoint and finishes
    epochs = at3 + 3
    short = wd / "short.yaml"
    short.write_text(f"train:\n  epochs: {epochs}\n")
    train_log.unlink(missing_ok=True)
    unlock = smk(wd, target, *args, "--unlock", timeout=120)  # what a killed Snakemake asks for
    assert unlock.returncode == 0, (unlock.stdout + unlock.stderr)[-4000:]
    assert squeue_state(job3) == "SUSPENDED"  # --unlock runs no hook
    again = smk(wd, target, *args, str(short), timeout=300)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-6000:]
    assert re.search(rf"igrm: cancelling 1 SLURM job\(s\) of run \S+ \({job3}\): its Snakemake \(pid \d+", out), out[
        -4000:
    ]
    assert squeue_state(job3) == "CANCELLED"
    r4 = resumed_from(None)
    assert at3 <= r4 <= at3 + 1
    with h5py.File(wd / target) as h:
        assert h.attrs["status"] == "completed"
        assert int(h.attrs["resumed_from_epoch"]) == r4
        assert int(h.attrs["epochs_completed"]) == epochs
    assert len(SUBMITTED.findall(out)) == 1
    assert not list((wd / ".snakemake" / "igrm-slurm").glob("*.json"))  # every run forgotten


@pytest.mark.slurm
def test_failed_job_is_reported_with_its_log_paths(long_run):
    """A config value that passes validation but fails on the node (device: cuda where
    there is no CUDA): the job fails, and Snakemake names the rule log and the SLURM log of
    the job (one attempt, --retries 0: a second attempt only doubles the test's time)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: device=cuda would not fail")
    wd, args = long_run
    bad = wd / "bad.yaml"
    bad.write_text("train:\n  device: cuda\n")
    target = "results/train/cifar10/small_cnn/sgdm/beta0_eta0.1_seed0.h5"
    proc = smk(wd, target, *args, str(bad), "--retries", "0", timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    rule_log = "logs/train/cifar10/sgdm/beta0_eta0.1_seed0.log"
    assert rule_log in out, out[-6000:]
    assert "CUDA is not available" in (wd / rule_log).read_text()
    submitted = SUBMITTED.findall(out)
    assert len(submitted) == 1  # --retries 0
    for jobid, slurm_log in submitted:
        # "Error in rule train_run: message: SLURM-job '17' failed, SLURM status is: 'FAILED'
        #  ... log: logs/train/....log, <folder>/logs/slurm/rule_train_run/.../17.log"
        assert re.search(rf"SLURM-job '{jobid}' failed, SLURM status is: 'FAILED'", out), out[-6000:]
        assert f"log: {rule_log}, {slurm_log} (check log file(s) for error details)" in out, out[-6000:]
        assert "CUDA is not available" in open(slurm_log).read()
