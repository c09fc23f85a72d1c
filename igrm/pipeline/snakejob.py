"""What every script under scripts/ needs around the science it calls.

A script reads ``snakemake.input``, ``.params``, ``.output`` and calls igrm functions by
name; this module only gives it

- :func:`logged`: the job's stdout, stderr and Python logging go to the rule's log file,
  with the rule, its wildcards and the time taken (a failure is logged with its traceback);
  earlier attempts' logs are kept as ``<log>.1`` ... (:func:`rotate_log`);
- :func:`write_result`: one HDF5 result, atomically, with provenance (igrm.pipeline.io);
- :func:`write_tidy`: one tidy CSV, atomically;
- :func:`write_table`: a paper table as CSV, Markdown and LaTeX (igrm.pipeline.io);
- :class:`RunProgress`: a training job's live progress (per-epoch CSV beside its log, a
  console line at 25/50/75/100 %).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .io import now_iso, provenance, write_h5, write_table, write_text_atomic

__all__ = ["logged", "simulate", "write_result", "write_tidy", "write_table", "now_iso", "RunProgress"]

log = logging.getLogger("igrm")


def importable_in_jobs(repo: str) -> None:
    """Put this checkout first on PYTHONPATH for the jobs' scripts (subprocesses of
    Snakemake; SLURM jobs inherit the environment through sbatch), so that every script
    imports igrm from the workflow it belongs to, installed or not."""
    old = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), old) if p)


KEEP_LOGS = 5  # earlier attempts' logs kept beside a rule's log: <log>.1 (the last) ... <log>.5


def _live_link(path: Path) -> Path:
    return path.with_name(f".{path.name}.live")


def rotate_log(path: str | os.PathLike, keep: int = KEEP_LOGS) -> Path | None:
    """Move the log of the previous attempt to ``<log>.1`` (``.1`` -> ``.2``, ...; the oldest
    beyond ``keep`` is dropped) before a new attempt writes ``<log>``; return where it went.

    Snakemake deletes a job's log before it reruns the job, so :func:`logged` keeps a hard
    link ``.<log name>.live`` to the log it writes: the previous attempt's log survives that
    deletion (and a killed attempt, which never gets to clean up) under this second name."""
    path = Path(path)
    live = _live_link(path)
    previous = [p for p in (live, path) if p.exists()]
    if len(previous) == 2 and os.path.samefile(live, path):
        live.unlink()
        previous = [path]
    if not previous:
        return None
    for p in previous:  # the live link is older when both exist and differ
        for k in range(keep - 1, 0, -1):
            older = path.with_name(f"{path.name}.{k}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{k + 1}"))
        os.replace(p, path.with_name(f"{path.name}.1"))
    return path.with_name(f"{path.name}.1")


def _brief_on_console(err: BaseException, path: Path) -> None:
    """When ``err`` ends the job's process uncaught, print one line on stderr (the console)
    instead of the traceback a second time: the log has the traceback and the whole message,
    and Snakemake prints the log of a failed job (show-failed-logs, profiles/default)."""
    first = (str(err).strip().splitlines() or [""])[0]
    previous = sys.excepthook

    def hook(tp, value, tb):
        if value is not err:
            return previous(tp, value, tb)
        print(f"{tp.__name__}: {first}\n(the whole message and the traceback: {path})", file=sys.stderr)

    sys.excepthook = hook


@contextlib.contextmanager
def logged(smk):
    """Run the ``with`` block with its output in the rule's log (``log:``, first file).
    The logs of earlier attempts (a killed one included) are kept as ``<log>.1``, ``<log>.2``
    ... (:func:`rotate_log`)."""
    path = Path(smk.log[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    rotated = rotate_log(path)
    with open(path, "w", buffering=1) as fh:
        try:
            os.link(path, _live_link(path))
        except OSError:  # a file system without hard links: only Snakemake's deletion loses it
            pass
        if rotated is not None:
            print(f"(the previous attempt's log is {rotated})", file=fh)
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
        except BaseException as err:
            log.exception("job failed")
            _brief_on_console(err, path)
            raise
        finally:
            root.removeHandler(handler)
            sys.stdout, sys.stderr = old_out, old_err


def write_result(
    path,
    arrays: Mapping[str, Any],
    attrs: Mapping[str, Any],
    *,
    config: Mapping[str, Any],
    started: str,
    seed: int | None = None,
    device: str = "cpu",
) -> None:
    """Write one result file: ``attrs['status']`` (default completed) becomes the file's
    status; the provenance records ``config`` (what the science function was called with)."""
    attrs = dict(attrs)
    status = attrs.pop("status", "completed")
    prov = provenance(config=dict(config), seed=seed, device=device, started=started)
    write_h5(path, arrays, attrs, prov, status=status)
    log.info("wrote %s (status %s)", path, status)


def simulate(smk, fn, seed: int | None = None, **more) -> None:
    """A simulation job: ``fn(**params.cfg, **more)`` -> (arrays, attrs), timed (attrs
    wall_time_s), written to the rule's one output with provenance (``seed`` recorded when
    given). ``more``: a second config section passed whole, or a key of another section."""
    cfg = dict(smk.params.cfg)
    started, t0 = now_iso(), time.perf_counter()
    arrays, attrs = fn(**cfg, **more)
    attrs = {**attrs, "wall_time_s": time.perf_counter() - t0}
    write_result(smk.output[0], arrays, attrs, config={**cfg, **more}, started=started, seed=seed)


def report_caption(smk, name: str) -> str:
    """The caption of figure or table ``name``: report/<name>.rst, the one caption source,
    rendered as the Snakemake report renders it (Jinja2 with ``snakemake``: config, params,
    wildcards), so the interval level and other settings come from the run's config. The
    figure scripts store it in the PDF/PNG metadata."""
    import jinja2

    text = (Path(__file__).resolve().parents[2] / "report" / f"{name}.rst").read_text()
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render(snakemake=smk).strip()


def write_tidy(path, df) -> None:
    write_text_atomic(path, df.to_csv(index=False))
    log.info("wrote %s (%d rows)", path, len(df))


PROGRESS_COLUMNS = (
    "epoch",
    "epochs",
    "status",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "grad_norm_sq",
    "lr",
    "steps",
    "wall_time",
    "time",
)


def progress_path(log_path: str | os.PathLike) -> Path:
    """Where a training job's per-epoch metrics go while it runs: beside its log,
    ``<log without .log>.progress.csv`` (not a declared output; the result file is the record)."""
    p = Path(log_path)
    return p.with_name(p.name.removesuffix(".log") + ".progress.csv")


def console_epochs(epochs: int, parts: int = 4) -> set[int]:
    """The epochs after which a training job prints a line on the console: 25, 50, 75 and
    100 % of ``epochs`` (rounded up), so at most ``parts`` lines per job whatever its length."""
    return {-(-k * int(epochs) // parts) for k in range(1, parts + 1)}


class RunProgress:
    """The ``progress`` of a training job (igrm.train.train): ``info`` / ``warning`` go to the
    job's log; :meth:`epoch` appends the epoch's metrics as one row to the per-run CSV
    (:func:`progress_path`; one ``write`` per row, so ``tail -f`` shows whole rows as they come)
    and, at 25/50/75/100 % of the epochs or when the run ends early (diverged), prints one
    line on the console (the process's own stderr, which :func:`logged` does not redirect).
    Four lines per job keep a 70-job run readable; the CSV has every epoch."""

    def __init__(self, smk, logger: logging.Logger = log, console=None):
        self.log = logger
        self.path = progress_path(smk.log[0])
        self.console = console if console is not None else sys.__stderr__
        self.label = " ".join([smk.rule, *(f"{k}={v}" for k, v in dict(smk.wildcards.items()).items())])
        write_text_atomic(self.path, ",".join(PROGRESS_COLUMNS) + "\n")  # a new attempt starts afresh

    def info(self, msg: str) -> None:
        self.log.info(msg)

    def warning(self, msg: str) -> None:
        self.log.warning(msg)

    def epoch(self, epoch: int, epochs: int, row: Mapping[str, Any], status: str) -> None:
        values = {**row, "epoch": epoch, "epochs": epochs, "status": status, "time": now_iso()}
        line = ",".join("" if values.get(k) is None else str(values.get(k)) for k in PROGRESS_COLUMNS) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        if self.console is not None and (epoch in console_epochs(epochs) or status == "diverged"):
            print(
                f"{self.label}: epoch {epoch}/{epochs} {status}, test_acc {row['test_acc']:.4f}, "
                f"train_loss {row['train_loss']:.4f}, {row['wall_time']:.0f} s",
                file=self.console,
                flush=True,
            )
