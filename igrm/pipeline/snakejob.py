"""What every script under scripts/ needs around the science it calls.

A script reads ``snakemake.input``, ``.params``, ``.output`` and calls igrm functions by
name; this module only gives it

- :func:`logged`: the job's stdout, stderr and Python logging go to the rule's log file,
  with the rule, its wildcards and the time taken (a failure is logged with its traceback);
  earlier attempts' logs are kept as ``<log>.1`` ... (:func:`rotate_log`);
- :func:`write_result`: one HDF5 result, atomically, with provenance (igrm.pipeline.io);
  :func:`write_run`: a training run's (rules train_run, train_ensemble_*);
- :func:`write_tidy`: one tidy CSV, atomically;
- :func:`write_table`: a paper table as CSV, Markdown and LaTeX (igrm.pipeline.io);
- :class:`RunProgress`: a training job's live progress (per-epoch CSV beside its log, a
  console line at 25/50/75/100 %);
- the console: one line when a job finishes (:func:`done_line`), with the run's time against
  the plan's estimate (:func:`run_clock`), and a heartbeat at least once a minute from a job
  that has said nothing on the console for that long (:class:`Heartbeat`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
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


#: seconds of silence on the console after which a running job says it is still running
HEARTBEAT_S = float(os.environ.get("IGRM_HEARTBEAT_S", "60"))
#: set by the Snakefile's onstart in the main process; the jobs (its subprocesses) inherit them
RUN_START_ENV, RUN_ETA_ENV = "IGRM_RUN_START", "IGRM_RUN_ETA_S"
_last_console = [time.monotonic()]  # when this process last printed a line on the console


def console(line: str, stream=None) -> None:
    """One line on the run's console (the process's own stderr, which :func:`logged` does not
    redirect); remembered, so the heartbeat stays quiet while a job speaks."""
    print(line, file=stream if stream is not None else sys.__stderr__, flush=True)
    _last_console[0] = time.monotonic()


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def run_clock(env=None, now: float | None = None) -> str:
    """'run 3:12 of ~8:00 planned' from the run's start and the plan's estimate (the
    environment the Snakefile's onstart sets); '' outside a run that set them."""
    env = os.environ if env is None else env
    try:
        start = float(env[RUN_START_ENV])
    except (KeyError, ValueError):
        return ""
    elapsed = (time.time() if now is None else now) - start
    eta = env.get(RUN_ETA_ENV)
    return f"run {_clock(elapsed)}" + (f" of ~{_clock(float(eta))} planned" if eta else "")


def job_label(smk) -> str:
    return " ".join([smk.rule, *(f"{k}={v}" for k, v in dict(smk.wildcards.items()).items())])


def done_line(smk, seconds: float) -> str:
    """The one console line of a finished job: what, how long, the run's clock, its log."""
    clock = run_clock()
    return f"igrm: done {job_label(smk)} in {_clock(seconds)}" + (f" ({clock})" if clock else "")


class Heartbeat:
    """While a job runs, a console line whenever it has been silent for ``every`` seconds
    (noise estimates and the coverage simulation run for many minutes without a line)."""

    def __init__(self, smk, every: float = HEARTBEAT_S, stream=None):
        self.label, self.log, self.every, self.stream = job_label(smk), smk.log[0], every, stream
        self.t0, self._stop = time.monotonic(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(min(self.every, 5.0)):
            now = time.monotonic()
            if now - _last_console[0] >= self.every:
                clock = run_clock()
                console(
                    f"igrm: … {self.label} still running, {_clock(now - self.t0)}"
                    + (f" ({clock})" if clock else "")
                    + f"; detail: {self.log}",
                    self.stream,
                )

    def __enter__(self):
        _last_console[0] = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


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


def _brief_on_console(err: BaseException, path: Path, label: str = "") -> None:
    """When ``err`` ends the job's process uncaught, print on stderr (the console) which job
    failed and the error's message (its ways out), not the traceback: the log has that.
    The console of profiles/default shows no job blocks, so this is where the reader learns it."""
    message = str(err).strip()
    previous = sys.excepthook

    def hook(tp, value, tb):
        if value is not err:
            return previous(tp, value, tb)
        head = f"igrm: FAILED {label}\n" if label else ""
        print(f"{head}{tp.__name__}: {message}\n(the whole message and the traceback: {path})", file=sys.stderr)

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
            with Heartbeat(smk):
                yield log
            log.info("done in %.2f s", time.perf_counter() - t0)
            console(done_line(smk, time.perf_counter() - t0))
        except BaseException as err:
            log.exception("job failed")
            _brief_on_console(err, path, job_label(smk))
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


def write_run(
    path, arrays: Mapping[str, Any], attrs: Mapping[str, Any], cfg: Mapping[str, Any], dataset: str, started: str
):
    """Write one training run's result (igrm.train.train's arrays and attrs, run ``cfg``) with
    the dataset it trained on, whether its job trained it alone or in an ensemble."""
    write_result(
        path,
        arrays,
        {**attrs, "dataset": dataset},
        config={**cfg, "dataset": dataset},
        started=started,
        seed=cfg["seed"],
        device=str(attrs.get("device", "cpu")),
    )


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
    Four lines per job keep a 70-job run readable; the CSV has every epoch (a strict CSV, for
    tools; `tail` the job's log for the same values with their names, one line per epoch
    from igrm.train). ``run_log``: one run of an ensemble job (several runs, one log): its
    CSV goes beside the log its own train_run job would write (``run_log``), and its console
    lines and messages name the run."""

    def __init__(self, smk, logger: logging.Logger = log, console=None, run_log: str | None = None):
        self.log = logger
        self.path = progress_path(run_log or smk.log[0])
        self.console = console if console is not None else sys.__stderr__
        self.run = "/".join(Path(run_log).with_suffix("").parts[-3:]) if run_log else ""
        self.label = f"{job_label(smk)} {self.run}".strip()
        write_text_atomic(self.path, ",".join(PROGRESS_COLUMNS) + "\n")  # a new attempt starts afresh

    def info(self, msg: str) -> None:
        self.log.info(self._named(msg))

    def warning(self, msg: str) -> None:
        self.log.warning(self._named(msg))

    def _named(self, msg: str) -> str:
        return f"{self.run}: {msg}" if self.run else msg

    def epoch(self, epoch: int, epochs: int, row: Mapping[str, Any], status: str) -> None:
        values = {**row, "epoch": epoch, "epochs": epochs, "status": status, "time": now_iso()}
        line = ",".join("" if values.get(k) is None else str(values.get(k)) for k in PROGRESS_COLUMNS) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        if self.console is not None and (epoch in console_epochs(epochs) or status == "diverged"):
            clock = run_clock()
            console(
                f"{self.label}: epoch {epoch}/{epochs} {status}, test_acc {row['test_acc']:.4f}, "
                f"train_loss {row['train_loss']:.4f}, {row['wall_time']:.0f} s/epoch"
                + (f" ({clock})" if clock else ""),
                self.console,
            )


# ---------------------------------------------------------------- the run's first and last lines
def start_run_clock(
    plan: Mapping[str, Any],
    cores: int | None,
    passes_per_core_s: float,
    to_run: Mapping[str, int] | None = None,
) -> str:
    """At the start of a run (the Snakefile's onstart, main process): the plan's rough
    duration on ``cores`` (training and noise passes at ``passes_per_core_s`` per core; toys
    and error orders take seconds to minutes more), put in the environment the jobs inherit
    (:func:`run_clock`); returns the line for the console. ``to_run``: how many training and
    noise jobs this run will run (``train_run``, ``noise_point``; the plan's mean cost each),
    when fewer than the plan's (a single target, a rerun)."""
    cores = max(1, int(cores or 1))
    train, noise = float(plan.get("training_passes", 0)), float(plan.get("noise_passes", 0))
    if to_run is not None:
        train *= to_run.get("train_run", 0) / max(1, int(plan.get("training_runs", 1)))
        noise *= to_run.get("noise_point", 0) / max(1, int(plan.get("noise_jobs", 1)))
    eta = (train + noise) / passes_per_core_s / cores
    os.environ[RUN_START_ENV] = str(time.time())
    if eta < 30:
        os.environ.pop(RUN_ETA_ENV, None)
        return (
            "igrm: no training or noise estimate to run (toys, error orders, tables: seconds to minutes); "
            "one line per finished job below, every detail in logs/"
        )
    os.environ[RUN_ETA_ENV] = f"{eta:.0f}"
    return (
        f"igrm: about {_clock(eta)} (h:mm:ss) of training and noise estimates on {cores} core(s) by the plan's "
        f"rough cost, plus the toys and error orders; one line per finished job below, every detail in logs/"
    )


def last_line(root: str, *, ok: bool, partial: tuple | None = None, report: bool = False) -> str:
    """The run's last console line: where to look."""
    if ok:
        where = [
            (what, path)
            for what, path in (
                ("claims", f"{root}/tables/claims_summary.md"),
                ("results page (open it in a browser)", f"{root}/index.html"),
                ("report", f"{root}/report.zip" if report else ""),
            )
            if path and Path(path).exists()
        ]
        return "igrm: finished. " + "; ".join(f"{w}: {p}" for w, p in [*where, ("detail", "logs/")])
    if partial:
        return f"igrm: the run did not finish. What it made and what it could not: {partial[0]}, {partial[1]}"
    return "igrm: the run did not finish: the failed job's log is named above; detail in logs/"


def print_last(line: str) -> None:
    """Print ``line`` when the process exits: after Snakemake's own closing lines."""
    import atexit

    atexit.register(print, line, file=sys.stderr, flush=True)
