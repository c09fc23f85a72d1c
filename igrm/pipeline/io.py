"""Result files: one HDF5 per simulation, written atomically, with provenance.

Convention (README.md, layout): a result is written to a temporary name in the
destination folder and renamed onto the final name only once complete, so a
killed job never leaves a half-written file under the final name. Attributes
carry the provenance: the job's resolved config (JSON), package versions, git
commit, host, device, seed, start/end time and status.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

PACKAGES = ("igrm", "numpy", "scipy", "numba", "h5py", "pandas", "matplotlib", "torch", "snakemake")


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """HEAD commit of the repository holding this package ('unknown' outside git);
    '+dirty' is appended when tracked files have uncommitted changes."""
    where = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(
    config: Mapping[str, Any] | None = None, seed: int | None = None, device: str = "cpu", started: str | None = None
) -> dict[str, Any]:
    """The provenance attributes every result file carries."""
    prov: dict[str, Any] = {
        "config": json.dumps(config or {}, sort_keys=True, default=_json_default),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "device": device,
        "started": started or now_iso(),
    }
    if seed is not None:
        prov["seed"] = int(seed)
    return prov


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def current_umask() -> int:
    """The process's umask (Linux: read from /proc, without changing it; elsewhere set and
    restored at once)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success,
    delete it on any error. The final name only ever holds a complete file, with the
    mode a plain ``open(path, "w")`` gives (0666 & ~umask; mkstemp alone would give 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _attr_value(v):
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True, default=_json_default)
    if v is None:
        return "null"
    return v


def write_h5(
    path: str | os.PathLike,
    arrays: Mapping[str, Any],
    attrs: Mapping[str, Any] | None = None,
    prov: Mapping[str, Any] | None = None,
    status: str = "completed",
) -> Path:
    """Write ``arrays`` (dataset name -> array; '/' makes groups) and ``attrs``
    atomically to ``path``. ``prov`` (see :func:`provenance`) is stored as root
    attributes together with ``finished`` and ``status``."""
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, value in arrays.items():
                arr = np.asarray(value)
                if arr.dtype.kind == "U":
                    arr = arr.astype(h5py.string_dtype())
                f.create_dataset(name, data=arr, compression="gzip" if arr.size > 4096 else None)
            for k, v in (attrs or {}).items():
                f.attrs[k] = _attr_value(v)
            for k, v in (prov or {}).items():
                f.attrs[k] = _attr_value(v)
            f.attrs["finished"] = now_iso()
            f.attrs["status"] = status
    return path


def read_h5(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read every dataset (by full path, without the leading '/') and the root attributes,
    of a file that passes igrm.pipeline.validate (else its ResultFileError names the file
    and what is wrong): every reader of a result or prepared dataset comes through here."""
    import h5py

    from .validate import check_result, open_checked

    arrays: dict[str, np.ndarray] = {}
    with open_checked(path) as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                if obj.dtype.kind == "O":
                    data = np.asarray(obj.asstr()[()])
                arrays[name] = data

        f.visititems(visit)
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    check_result(path, arrays, attrs)
    return arrays, attrs


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def write_table(
    df,
    stem_or_paths,
    caption: str = "",
    float_format: str = "{:.4g}",
    *,
    colspec: str | None = None,
    longtable: bool = False,
    markdown: str | None = None,
) -> list[Path]:
    """Write a pandas DataFrame as CSV, Markdown and LaTeX, each atomically.

    ``colspec``: the LaTeX column spec (default one ``l`` a column; use ``p{..}`` columns so
    that long text wraps and the table fits a page); ``longtable``: a ``longtable`` that breaks
    across pages instead of a floating ``tabular`` (needs ``\\usepackage{longtable}``);
    ``markdown``: the Markdown text to write instead of the one-table rendering.

    ``stem_or_paths``: a path without suffix (writes .csv/.md/.tex) or an explicit
    list of paths whose suffix picks the format.
    """
    if isinstance(stem_or_paths, (str, os.PathLike)):
        stem = Path(stem_or_paths)
        paths = [stem.with_suffix(s) for s in (".csv", ".md", ".tex")]
    else:
        paths = [Path(p) for p in stem_or_paths]
    written = []
    for p in paths:
        if p.suffix == ".csv":
            text = df.to_csv(index=False)
        elif p.suffix == ".md":
            text = _markdown(df, float_format) if markdown is None else markdown
            if caption:
                text = f"{text}\n\n{caption}\n"
        elif p.suffix == ".tex":
            text = _latex(df, float_format, caption, colspec=colspec, longtable=longtable)
        else:
            raise ValueError(f"unknown table format {p.suffix!r} for {p}; use .csv, .md or .tex")
        written.append(write_text_atomic(p, text))
    return written


def _fmt(v, float_format):
    if isinstance(v, (float, np.floating)):
        if np.isnan(v):
            return "–"
        return float_format.format(v)
    return str(v)


def markdown_table(df, float_format: str = "{:.4g}") -> str:
    """One Markdown (GFM) table of a DataFrame; NaN as an en dash, ``|`` escaped."""
    return _markdown(df, float_format)


def _markdown(df, float_format) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, float_format).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


_TEX_ESCAPE = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def _tex(s: str) -> str:
    # a break point after each '/' so that long ids (order/gdm/lstsq/...) wrap in p{} columns
    return "".join(_TEX_ESCAPE.get(c, c) for c in s).replace("/", r"/\allowbreak{}")


def _latex(df, float_format, caption, *, colspec: str | None = None, longtable: bool = False) -> str:
    cols = [_tex(str(c)) for c in df.columns]
    spec = colspec or "l" * len(cols)
    header = [" & ".join(cols) + r" \\", r"\hline"]
    body = [" & ".join(_tex(_fmt(v, float_format)) for v in row) + r" \\" for row in df.itertuples(index=False)]
    cap = [r"\caption{" + _tex(caption) + "}"] if caption else []
    if longtable:
        # caption and header repeat on every page (\endfirsthead / \endhead)
        out = [
            r"\begingroup\small",
            r"\begin{longtable}{" + spec + "}",
            *[c + r" \\" for c in cap],
            r"\hline",
            *header,
            r"\endfirsthead",
            r"\hline",
            *header,
            r"\endhead",
            r"\hline",
            r"\endfoot",
            *body,
            r"\end{longtable}",
            r"\endgroup",
        ]
    else:
        out = [
            r"\begin{table}[ht]",
            r"\centering",
            r"\small",
            r"\begin{tabular}{" + spec + "}",
            r"\hline",
            *header,
            *body,
            r"\hline",
            r"\end{tabular}",
            *cap,
            r"\end{table}",
        ]
    return "\n".join(out) + "\n"
