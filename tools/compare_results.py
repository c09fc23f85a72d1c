"""Compare two results/ folders exactly: every HDF5 dataset and attribute, every tidy or
claims CSV, cell by cell. Used to show that a refactor changed no number (issue: the house
redesign); provenance (commit, host, times, versions) and wall-clock columns are left out.

    python tools/compare_results.py BEFORE/results AFTER/results

Exit status 0 when nothing differs, 1 otherwise; one line per difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

#: attributes every result carries that say where and when, not what
PROVENANCE = {
    "git_commit",
    "host",
    "platform",
    "versions",
    "started",
    "finished",
    "wall_time_s",
    "device",
    "status",
    "code_sha256",
    "created",
    "torch_threads",
    "python",
    "config",
}  # the job's own config: its form may change with the contract, not its numbers
#: wall-clock quantities (names containing these) differ run to run
CLOCK = ("wall_time", "wall_s", "time_s", "seconds", "runtime")


def _clock(name: str) -> bool:
    return any(c in name for c in CLOCK)


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def compare_h5(x: Path, y: Path) -> list[str]:
    out = []
    with h5py.File(x, "r") as fx, h5py.File(y, "r") as fy:
        items = {}
        for f, side in ((fx, 0), (fy, 1)):
            f.visititems(lambda n, o, side=side: items.setdefault(n, [None, None]).__setitem__(side, o))
        for name, (ox, oy) in sorted(items.items()):
            if ox is None or oy is None:
                out.append(f"{name}: only in {'after' if ox is None else 'before'}")
            elif isinstance(ox, h5py.Dataset) and not _clock(name) and not _same(ox[()], oy[()]):
                out.append(f"{name}: values differ")
        for obj_x, obj_y, where in [(fx, fy, "/")] + [
            (fx[n], fy[n], n) for n, (a, b) in items.items() if a is not None and b is not None
        ]:
            keys = (set(obj_x.attrs) | set(obj_y.attrs)) - PROVENANCE
            for k in sorted(keys):
                if _clock(k):
                    continue
                if k not in obj_x.attrs or k not in obj_y.attrs:
                    out.append(f"{where} attr {k}: only on one side")
                elif not _same(obj_x.attrs[k], obj_y.attrs[k]):
                    out.append(f"{where} attr {k}: differs")
    return out


def compare_csv(x: Path, y: Path) -> list[str]:
    a, b = pd.read_csv(x), pd.read_csv(y)
    keep = [c for c in a.columns if not _clock(c)]
    if list(a.columns) != list(b.columns):
        return [f"columns differ: {sorted(set(a.columns) ^ set(b.columns))}"]
    if len(a) != len(b):
        return [f"{len(a)} rows before, {len(b)} after"]
    a, b = a[keep], b[keep]
    diff = ~((a == b) | (a.isna() & b.isna()))
    return [f"row {i} column {c}: {a.at[i, c]!r} -> {b.at[i, c]!r}" for c in diff.columns for i in diff.index[diff[c]]][
        :20
    ]


def compare(
    before: Path, after: Path, parts=("tidy", "claims", "tables", "toy", "orders", "train", "noise", "explicit_study")
) -> list[str]:
    report = []
    for part in parts:
        files = {p.relative_to(before) for p in (before / part).rglob("*") if p.suffix in (".h5", ".csv")}
        files |= {p.relative_to(after) for p in (after / part).rglob("*") if p.suffix in (".h5", ".csv")}
        for rel in sorted(files):
            x, y = before / rel, after / rel
            if not x.exists() or not y.exists():
                report.append(f"{rel}: only {'after' if not x.exists() else 'before'}")
                continue
            diffs = compare_h5(x, y) if rel.suffix == ".h5" else compare_csv(x, y)
            report += [f"{rel}: {d}" for d in diffs]
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    args = ap.parse_args(argv)
    report = compare(args.before, args.after)
    n = sum(
        1
        for part in ("tidy", "claims", "tables", "toy", "orders", "train", "noise", "explicit_study")
        for p in (args.before / part).rglob("*")
        if p.suffix in (".h5", ".csv")
    )
    print(
        "\n".join(report)
        if report
        else f"identical: {n} files (HDF5 arrays and attributes, CSV cells; provenance and wall-clock times left out)"
    )
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main())
