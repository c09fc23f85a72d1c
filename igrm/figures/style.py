"""Shared figure style and atomic figure output (PDF + PNG).

Every figure of the pipeline is made with :func:`figure` and written with
:func:`save`, which writes each format atomically and stores the caption in the
PDF metadata (the caption text of the report is report/<figure>.rst).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..io import atomic_path  # noqa: E402

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.4,
}

#: one colour per momentum value, stable across figures
BETA_COLORS = {0.0: "#1b1b1b", 0.3: "#8c564b", 0.5: "#1f77b4", 0.7: "#9467bd", 0.8: "#2ca02c",
               0.9: "#d62728", 0.95: "#ff7f0e"}


def beta_color(beta: float, i: int = 0) -> str:
    b = round(float(beta), 4)
    if b in BETA_COLORS:
        return BETA_COLORS[b]
    return plt.get_cmap("viridis")(min(max(b, 0.0), 0.99))


plt.rcParams.update(STYLE)


def figure(nrows: int = 1, ncols: int = 1, width: float = 3.4, height: float = 3.0, **kw):
    """A new figure of ``ncols × nrows`` panels, each ``width × height`` inches;
    ``axes`` is always a 2-D array."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                             layout="constrained", **kw)
    return fig, axes


def save(fig, paths: Iterable[str | os.PathLike], caption: str = "") -> list[Path]:
    """Save ``fig`` to each path (format from the suffix), atomically; close it."""
    written = []
    for p in paths:
        p = Path(p)
        fmt = p.suffix.lstrip(".").lower()
        meta = {"Title": caption[:200]} if fmt == "pdf" and caption else ({"Description": caption} if fmt == "png" and caption else None)
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format=fmt, metadata=meta)
        written.append(p)
    plt.close(fig)
    return written
