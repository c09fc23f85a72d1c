"""Shared figure style and atomic figure output (PDF + PNG).

Every figure of the pipeline is made with :func:`figure` and written with
:func:`save`, which writes each format atomically and stores the caption in the
PDF metadata (the caption text of the report is report/<figure>.rst).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ..pipeline.io import atomic_path

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
BETA_COLORS = {
    0.0: "#1b1b1b",
    0.3: "#8c564b",
    0.5: "#1f77b4",
    0.7: "#9467bd",
    0.8: "#2ca02c",
    0.9: "#d62728",
    0.95: "#ff7f0e",
}


def beta_color(beta: float, i: int = 0) -> str:
    b = round(float(beta), 4)
    if b in BETA_COLORS:
        return BETA_COLORS[b]
    return plt.get_cmap("viridis")(min(max(b, 0.0), 0.99))


plt.rcParams.update(STYLE)


def figure(nrows: int = 1, ncols: int = 1, width: float = 3.4, height: float = 3.0, **kw):
    """A new figure of ``ncols × nrows`` panels, each ``width × height`` inches;
    ``axes`` is always a 2-D array."""
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained", **kw
    )
    return fig, axes


def save(fig, paths: Iterable[str | os.PathLike], caption: str = "") -> list[Path]:
    """Save ``fig`` to each path (format from the suffix), atomically; close it. Layout
    problems (:func:`layout_problems`) are logged as warnings naming the file."""
    import logging

    paths = list(paths)
    for problem in layout_problems(fig):
        logging.getLogger("igrm").warning("figure layout: %s: %s", Path(paths[0]).name if paths else "figure", problem)
    written = []
    for p in paths:
        p = Path(p)
        fmt = p.suffix.lstrip(".").lower()
        meta = (
            {"Title": caption[:200]}
            if fmt == "pdf" and caption
            else ({"Description": caption} if fmt == "png" and caption else None)
        )
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format=fmt, metadata=meta)
        written.append(p)
    plt.close(fig)
    return written


def legend_below(fig, axes, *, ncol: int, title: str | None = None, fontsize: float = 7.0) -> None:
    """One legend for the whole figure, below its panels (a legend inside a panel covers its
    data); labels that several panels share appear once."""
    import numpy as np

    seen = {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(
            list(seen.values()),
            list(seen),
            loc="outside lower center",
            ncol=ncol,
            fontsize=fontsize,
            title=title,
            title_fontsize=fontsize,
        )


# ---------------------------------------------------------------- layout checks
def _overlap(a, b, pad: float = 0.0) -> bool:
    return a.x0 < b.x1 - pad and b.x0 < a.x1 - pad and a.y0 < b.y1 - pad and b.y0 < a.y1 - pad


def _data_points(ax):
    """Display coordinates of what an axes draws: line vertices, scatter offsets and the
    corners and centre of bars (an (N, 2) array)."""
    import numpy as np
    from matplotlib.collections import Collection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    pts = []
    for art in ax.get_children():
        if not art.get_visible() or art.get_label() == "_nolegend_grid":
            continue
        if isinstance(art, Line2D):
            xy = art.get_xydata()
            if len(xy):
                pts.append(art.get_transform().transform(xy))
        elif isinstance(art, Collection):
            off = art.get_offsets()
            if len(off):
                pts.append(art.get_offset_transform().transform(off))
        elif isinstance(art, Rectangle) and art is not ax.patch:
            bb = art.get_window_extent()
            pts.append(np.array([[bb.x0, bb.y1], [bb.x1, bb.y1], [(bb.x0 + bb.x1) / 2, bb.y1]]))
    if not pts:
        return np.zeros((0, 2))
    pts = np.concatenate(pts)
    return pts[np.isfinite(pts).all(axis=1)]


def layout_problems(fig) -> list[str]:
    """What a reviewer would reject, found from the drawn artists' extents: a data panel
    without axis labels, a legend drawn over data points of its panel, overlapping tick labels.
    ``save`` logs each as a warning (the pipeline test requires none)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    for n, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison:
            continue
        name = f"panel {n} ({ax.get_title() or ax.get_ylabel() or 'untitled'})"
        colorbar = hasattr(ax, "_colorbar") or ax.get_label() == "<colorbar>"
        if not colorbar:
            for which, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
                if not label.strip() and any(t.get_text() for t in getattr(ax, f"get_{which}ticklabels")()):
                    problems.append(f"{name}: no {which}-axis label")
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            bb = leg.get_window_extent(renderer)
            pts = _data_points(ax)
            inside = ((pts[:, 0] > bb.x0) & (pts[:, 0] < bb.x1) & (pts[:, 1] > bb.y0) & (pts[:, 1] < bb.y1)).sum()
            if inside:
                problems.append(f"{name}: the legend covers {inside} data point(s)")
        for which in ("x", "y"):
            labels = [t for t in getattr(ax, f"get_{which}ticklabels")() if t.get_visible() and t.get_text()]
            boxes = [t.get_window_extent(renderer) for t in labels]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    if _overlap(boxes[i], boxes[j], pad=0.5):
                        problems.append(
                            f"{name}: {which} tick labels {labels[i].get_text()!r} and {labels[j].get_text()!r} overlap"
                        )
    return problems
