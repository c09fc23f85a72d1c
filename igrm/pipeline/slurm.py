"""No SLURM job outlives its Snakemake run (docs/cluster.md, "Stopping a run").

Snakemake answers Ctrl-C by `scancel`-ing the jobs its executor lists as active. Three ways
that misses a job (snakemake 9.27 with snakemake-executor-plugin-slurm 2.8.0):

- a second SIGINT while the first is being handled (an impatient second Ctrl-C, or GNU
  `timeout`, which sends the signal to the child *and* to its process group) raises a
  second KeyboardInterrupt inside the cancel handler: `scancel` never runs, Snakemake exits
  with a traceback and the jobs run on;
- the executor takes the jobs off its active list while it checks their status and puts
  them back afterwards, so a Ctrl-C inside a status check cancels nothing;
- and a head process that is killed (SIGKILL, OOM, a closed login session) cancels nothing.

Every job of one Snakemake run carries that run's "SLURM run ID" (printed at the start and
kept in the run's log) as its job name. The workflow's hooks use it:

- onstart: note this run (run ID, head-node host and PID) under ``.snakemake/igrm-slurm/``,
  and cancel the jobs of earlier runs of this directory whose head process is gone on this
  host (orphans: they would write the same checkpoints as the new run's jobs);
- onerror: cancel what this run left queued or running (after an ordinary failure that
  is nothing); onsuccess/onerror: forget the run.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

RUN_ID = re.compile(r"SLURM run ID: (\S+)")
STATE_DIR = Path(".snakemake") / "igrm-slurm"
# the states in which a job still holds or will hold resources
LIVE_STATES = "PENDING,CONFIGURING,RUNNING,SUSPENDED,COMPLETING,REQUEUED,RESIZING"


def slurm_run_ids(log) -> list[str]:
    """The SLURM run IDs a Snakemake log names (none for a run without the SLURM executor).
    ``log``: a path or, as Snakemake's hooks pass it, a list of paths."""
    paths = [log] if isinstance(log, (str, Path)) else list(log or [])
    found = {i for p in paths if Path(p).is_file() for i in RUN_ID.findall(Path(p).read_text(errors="replace"))}
    return sorted(found)


def _have_slurm() -> bool:
    return shutil.which("squeue") is not None and shutil.which("scancel") is not None


def jobs_left(run_id: str) -> list[str]:
    """Job ids of this user still queued, running or suspended under the run's job name."""
    out = subprocess.run(
        ["squeue", "-h", "--name", run_id, "--user", getpass.getuser(), "--states", LIVE_STATES, "-o", "%i"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.split() if out.returncode == 0 else []


def cancel_run(run_id: str, why: str, say=print) -> list[str]:
    """scancel every job still live under ``run_id``; returns their ids."""
    left = jobs_left(run_id)
    if left:
        say(
            f"igrm: cancelling {len(left)} SLURM job(s) of run {run_id} ({', '.join(left)}): {why} "
            f"(scancel --name {run_id}; docs/cluster.md)."
        )
        subprocess.run(["scancel", "--name", run_id, "--user", getpass.getuser()], timeout=60)
    return left


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def on_start(log, state_dir: Path = STATE_DIR, say=print) -> list[str]:
    """Note this run; cancel the jobs of earlier runs whose head process is gone."""
    if not _have_slurm():
        return []
    state_dir = Path(state_dir)
    mine = slurm_run_ids(log)
    cancelled: list[str] = []
    host = socket.gethostname()
    for marker in sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []:
        if marker.stem in mine:
            continue
        try:
            run = json.loads(marker.read_text())
        except (OSError, ValueError):
            marker.unlink(missing_ok=True)
            continue
        if run.get("host") != host:
            continue  # another login node's run: its PID means nothing here
        if _alive(int(run["pid"])):
            continue  # still running (e.g. another target in another terminal)
        cancelled += cancel_run(marker.stem, f"its Snakemake (pid {run['pid']} on {host}) is gone", say)
        marker.unlink(missing_ok=True)
    if mine:
        state_dir.mkdir(parents=True, exist_ok=True)
        for run_id in mine:
            (state_dir / f"{run_id}.json").write_text(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "host": host,
                        "log": [str(p) for p in ([log] if isinstance(log, (str, Path)) else log or [])],
                    }
                )
            )
    return cancelled


def on_end(log, failed: bool, state_dir: Path = STATE_DIR, say=print) -> list[str]:
    """After the run: cancel what a failed or interrupted run left behind; forget the run."""
    if not _have_slurm():
        return []
    cancelled: list[str] = []
    for run_id in slurm_run_ids(log):
        if failed:
            cancelled += cancel_run(run_id, "the run stopped and Snakemake did not cancel them", say)
        (Path(state_dir) / f"{run_id}.json").unlink(missing_ok=True)
    return cancelled


if __name__ == "__main__":  # python -m igrm.pipeline.slurm LOG...: cancel what those runs left
    import sys

    for path in sys.argv[1:]:
        for rid in slurm_run_ids(path):
            cancel_run(rid, f"asked for ({path})")
