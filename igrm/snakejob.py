"""What every script under scripts/ needs around the science it calls.

A script reads ``snakemake.input``, ``.params``, ``.output`` and calls igrm functions by
name; this module only gives it

- :func:`logged`: the job's stdout, stderr and Python logging go to the rule's log file,
  with the rule, its wildcards and the time taken (a failure is logged with its traceback);
- :func:`write_result`: one HDF5 result, atomically, with provenance (igrm.io);
- :func:`write_tidy`: one tidy CSV, atomically;
- :func:`write_table`: a paper table as CSV, Markdown and LaTeX (igrm.io).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from .io import now_iso, provenance, write_h5, write_table, write_text_atomic

__all__ = ["logged", "simulate", "write_result", "write_tidy", "write_table", "now_iso"]

log = logging.getLogger("igrm")


def importable_in_jobs(repo: str) -> None:
    """Put this checkout first on PYTHONPATH for the jobs' scripts (subprocesses of
    Snakemake; SLURM jobs inherit the environment through sbatch), so that every script
    imports igrm from the workflow it belongs to, installed or not."""
    old = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), old) if p)


@contextlib.contextmanager
def logged(smk):
    """Run the ``with`` block with its output in the rule's log (``log:``, first file)."""
    path = Path(smk.log[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = fh
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        log.info("rule %s, wildcards %s", smk.rule, dict(smk.wildcards.items()))
        t0 = time.perf_counter()
        try:
            yield log
            log.info("done in %.2f s", time.perf_counter() - t0)
        except BaseException:
            log.exception("job failed")
            raise
        finally:
            root.removeHandler(handler)
            sys.stdout, sys.stderr = old_out, old_err


def write_result(path, arrays: Mapping[str, Any], attrs: Mapping[str, Any], *, config: Mapping[str, Any],
                 started: str, seed: int | None = None, device: str = "cpu") -> None:
    """Write one result file: ``attrs['status']`` (default completed) becomes the file's
    status; the provenance records ``config`` (what the science function was called with)."""
    attrs = dict(attrs)
    status = attrs.pop("status", "completed")
    prov = provenance(config=dict(config), seed=seed, device=device, started=started)
    write_h5(path, arrays, attrs, prov, status=status)
    log.info("wrote %s (status %s)", path, status)


def simulate(smk, fn, seed: int | None = None) -> None:
    """A simulation job: ``fn(**params.cfg)`` -> (arrays, attrs), timed (attrs wall_time_s),
    written to the rule's one output with provenance (``seed`` recorded when given)."""
    cfg = dict(smk.params.cfg)
    started, t0 = now_iso(), time.perf_counter()
    arrays, attrs = fn(**cfg)
    attrs = {**attrs, "wall_time_s": time.perf_counter() - t0}
    write_result(smk.output[0], arrays, attrs, config=cfg, started=started, seed=seed)


def write_tidy(path, df) -> None:
    write_text_atomic(path, df.to_csv(index=False))
    log.info("wrote %s (%d rows)", path, len(df))
