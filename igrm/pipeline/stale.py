"""Outputs that Snakemake's mtime rule would keep although they are stale (docs/reliability.md,
"Nothing stale"). Snakemake records, per output, the sha256 of each input up to
``max_checksum_file_size`` (.snakemake/metadata), but compares them only when an input is
newer than the output, and does not remake a missing intermediate while the files made
from it exist. Three cases slip through, found here from those records:

- an input whose bytes differ from the ones the output was made from, with an mtime no newer
  than the output (a file restored with ``cp -p``): the input is touched (mtime only), so
  Snakemake's own checksum comparison reruns the output;
- an output changed after its job wrote it (edited by hand): its bytes differ from the ones
  a later job recorded reading, and its mtime is past its own job's end. It is renamed
  ``<name>.edited`` (kept, named in the warning) and is remade, with what was made from it;
- an intermediate that is gone while an output made from it exists (a job killed while
  remaking it: Snakemake deletes a job's output before it runs). What was made from it is
  removed (derived files), down to the last output, so all are remade.

Under a dry run, the report or the linter (``act=False``) the files are only named.

Parse-time plumbing (rules/common.smk, main process only); no job imports this module.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Snakemake's default --max-checksum-file-size: larger inputs carry no checksum
MAX_CHECKSUM = 1_000_000
#: the folder of every intermediate and result (igrm.pipeline.targets.R)
RESULTS = "results/"
#: seconds an output's mtime may pass its job's recorded end (clock granularity, NFS)
SLACK_S = 2.0


@dataclass(frozen=True)
class Record:
    output: str
    inputs: dict  # path -> "sha256:<hex>"
    start: float
    end: float
    listed: tuple = ()  # every input path, with or without a checksum


def records(workdir: str | Path = ".") -> Iterator[Record]:
    """Snakemake's finished job records under ``workdir``/.snakemake/metadata, one per output."""
    meta = Path(workdir) / ".snakemake" / "metadata"
    if not meta.is_dir():
        return
    for dirpath, _, files in os.walk(meta):
        rel = Path(dirpath).relative_to(meta).parts
        prefix = "".join(p.removeprefix("@") for p in rel)
        for name in files:
            try:
                output = base64.urlsafe_b64decode(prefix + name).decode()
                rec = json.loads((Path(dirpath) / name).read_text())
            except (ValueError, OSError):
                continue
            if rec.get("incomplete") or not isinstance(rec.get("input_checksums"), dict):
                continue
            times = float(rec.get("starttime") or 0), float(rec.get("endtime") or 0)
            yield Record(
                output, rec["input_checksums"], *times, tuple({*(rec.get("input") or ()), *rec["input_checksums"]})
            )


class _Files:
    """mtime and sha256 of files under a working directory, each read once."""

    def __init__(self, workdir):
        self.root = Path(workdir)
        self.sums: dict[str, str | None] = {}

    def path(self, f: str) -> Path:
        return self.root / f

    def mtime(self, f: str) -> float | None:
        try:
            return self.path(f).stat().st_mtime
        except OSError:
            return None

    def sha256(self, f: str) -> str | None:
        if f not in self.sums:
            p = self.path(f)
            try:
                ok = p.is_file() and p.stat().st_size <= MAX_CHECKSUM
                self.sums[f] = f"sha256:{hashlib.sha256(p.read_bytes()).hexdigest()}" if ok else None
            except OSError:
                self.sums[f] = None
        return self.sums[f]


def find(workdir: str | Path = ".") -> tuple[list[tuple[str, str]], ...]:
    """([(input restored, output made from other bytes)], [(output edited, job that read it)],
    [(intermediate missing, output made from it)])."""
    files, recs = _Files(workdir), list(records(workdir))
    by_output = {r.output: r for r in recs}
    restored, edited, missing = [], [], []
    for r in recs:
        out_mtime = files.mtime(r.output)
        if out_mtime is None:
            continue
        # an intermediate gone (a job killed while remaking it: Snakemake deletes its output
        # first, and after a failure its record too): Snakemake would not remake it while this
        # output exists (the workflow has no temp()). Intermediates live under results/; a data
        # file under resources/ may be deleted to save space and is not counted.
        missing += [(f, r.output) for f in r.listed if f.startswith(RESULTS) and files.mtime(f) is None]
        for f, want in r.inputs.items():
            got, in_mtime = files.sha256(f), files.mtime(f)
            if got is None or in_mtime is None or got == want:
                continue
            own = by_output.get(f)
            if own is not None and in_mtime > own.end + SLACK_S and r.start >= own.end:
                edited.append((f, r.output))
            elif in_mtime <= out_mtime:
                restored.append((f, r.output))
    return sorted(set(restored)), sorted(set(edited)), sorted(set(missing))


def check(workdir: str | Path = ".", act: bool = True, warn=print) -> list[str]:
    """Find the three cases (module doc) and, when ``act``, make Snakemake remake them; warn
    with the files named. Returns the warnings."""
    restored, edited, missing = find(workdir)
    msgs = []
    for f in sorted({f for f, _ in edited}):
        if act:
            os.replace(Path(workdir) / f, Path(workdir) / f"{f}.edited")
        msgs.append(
            f"{f} was changed after its job wrote it (by hand?); "
            + (f"set aside as {f}.edited and remade" if act else "a real run sets it aside and remakes it")
        )
    if act and edited:  # what was made from an edited file is now made from a gone one
        missing = find(workdir)[2]
    named = {e for e, _ in edited}
    while missing:  # each pass removes what was made from a gone file, down to the last output
        for f in sorted({f for f, _ in missing}):
            outs = [o for g, o in missing if g == f]
            if act:
                for out in outs:
                    (Path(workdir) / out).unlink(missing_ok=True)  # derived: remade, with f
            if f not in named:
                msgs.append(
                    f"{f} is gone (a job killed while remaking it?) but {', '.join(outs)} made from it "
                    + (
                        "remain: removed, so that all are remade"
                        if act
                        else "remain: a real run removes and remakes them"
                    )
                )
            named |= {f, *outs}
        missing = find(workdir)[2] if act else []
    done = {f for f, _ in edited}
    for f, out in restored:
        if f in done:
            continue
        if act:
            os.utime(Path(workdir) / f)  # now newer, with other bytes than recorded: Snakemake reruns
        msgs.append(
            f"{f} holds other bytes than {out} was made from, with an older mtime (restored copy?); "
            + ("marked newer, so it is remade" if act else "a real run remakes it")
        )
        done.add(f)
    for m in msgs:
        warn(f"igrm WARNING: {m}")
    return msgs


def in_flight(workdir: str | Path = ".") -> list[str]:
    """Files another Snakemake run in ``workdir`` is writing now: marked incomplete and held
    by one of its locks (.snakemake/incomplete, .snakemake/locks/N.output.lock)."""
    sm = Path(workdir) / ".snakemake"
    held = set()
    for lock in sorted((sm / "locks").glob("*.output.lock")):
        with contextlib.suppress(OSError):
            held |= {line.strip() for line in lock.read_text().splitlines() if line.strip()}
    marked = set()
    for dirpath, _, files in os.walk(sm / "incomplete"):
        prefix = "".join(p.removeprefix("@") for p in Path(dirpath).relative_to(sm / "incomplete").parts)
        for name in files:
            with contextlib.suppress(ValueError):
                marked.add(base64.urlsafe_b64decode(prefix + name).decode())
    return sorted(marked & held)


def concurrent_note(workdir: str | Path = ".") -> str | None:
    """What to do when another run holds files of this folder (None when none does)."""
    files = in_flight(workdir)
    if not files:
        return None
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return (
        f"igrm: another Snakemake run in this folder is writing {shown} now. If Snakemake stops "
        "below (IncompleteFilesException, LockException) over these files, that run holds them: "
        "wait for it to finish, or run in another results folder (--directory). Do not use "
        "--cleanup-metadata or --rerun-incomplete on them: that would take over its half-written "
        "files. Only if no run is alive (it was killed): `snakemake --unlock`, then rerun."
    )


#: Snakemake options under which nothing runs: the stale files are only named
NO_RUN = {"--dry-run", "--dryrun", "--report", "--lint", "--touch", "--summary", "--detailed-summary", "--unlock"}
NO_RUN_PREFIXES = ("--list", "--delete-", "--cleanup-", "--dag", "--rulegraph", "--filegraph", "--d3dag", "--archive")


def runs_jobs(argv: list[str]) -> bool:
    """Whether a Snakemake command line will run jobs (no -n, --report, --lint, --touch, ...)."""
    for a in argv:
        flag = a.split("=", 1)[0]
        if flag in NO_RUN or flag.startswith(NO_RUN_PREFIXES):
            return False
        if a.startswith("-") and not a.startswith("--") and a[1:].isalpha() and set(a[1:]) & set("ntSDl"):
            return False
    return True
