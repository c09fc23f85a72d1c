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


# ---------------------------------------------------------------- intervals in range
#: the range a quantity can take: an interval drawn past it is clipped there (and the figure says so)
ACCURACY = (0.0, 1.0)
NONNEGATIVE = (0.0, None)


def in_range(mean, half, bounds: tuple[float | None, float | None]):
    """(lower, upper, clipped) of the interval mean ± half clipped to ``bounds`` (lo, hi; None:
    unbounded): a symmetric t-interval can pass a bound the quantity cannot (accuracy above 1, an
    SD or a squared norm below 0). ``clipped``: how many intervals were cut (a figure that clips
    says so). NaN half-widths give a zero-width interval."""
    import numpy as np

    m = np.asarray(mean, dtype=float)
    h = np.nan_to_num(np.asarray(half, dtype=float))
    lo, hi = m - h, m + h
    lo_b, hi_b = bounds
    cut = np.zeros(m.shape, dtype=bool)
    if lo_b is not None:
        cut |= lo < lo_b
        lo = np.maximum(lo, lo_b)
    if hi_b is not None:
        cut |= hi > hi_b
        hi = np.minimum(hi, hi_b)
    return lo, hi, int(cut.sum())


def yerr_in_range(mean, half, bounds):
    """``errorbar``'s (2, N) yerr for mean ± half clipped to ``bounds`` (:func:`in_range`), and
    the number of intervals clipped."""
    import numpy as np

    lo, hi, n = in_range(mean, half, bounds)
    m = np.asarray(mean, dtype=float)
    return np.vstack([np.nan_to_num(m - lo), np.nan_to_num(hi - m)]), n


def clip_note(n: int, bounds) -> str:
    """'\n(k intervals clipped to [0, 1])', a title's second line; '' when none was."""
    if not n:
        return ""
    lo, hi = bounds
    rng = f"[{lo:g}, {hi:g}]" if hi is not None else f"≥ {lo:g}"
    return f"\n({n} interval{'s' if n > 1 else ''} clipped to {rng})"


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


def _edge_artists(fig):
    """(name, artist) of what must lie inside the saved image: legends, titles, axis labels,
    tick labels and free text."""
    out = [(f"figure legend {i}", leg) for i, leg in enumerate(fig.legends)]
    out += [(f"figure text {t.get_text()[:30]!r}", t) for t in fig.texts if t.get_text()]
    for sub in ("_suptitle", "_supxlabel", "_supylabel"):
        t = getattr(fig, sub, None)
        if t is not None and t.get_text():
            out.append((f"figure title {t.get_text()[:30]!r}", t))
    for n, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        name = f"panel {n}"
        if ax.get_legend() is not None:
            out.append((f"{name} legend", ax.get_legend()))
        for what, t in (("title", ax.title), ("x-label", ax.xaxis.label), ("y-label", ax.yaxis.label)):
            if t.get_text():
                out.append((f"{name} {what} {t.get_text()[:30]!r}", t))
        if ax.axison:  # the drawn tick labels (matplotlib keeps labels of ticks outside the view)
            out += [(f"{name} {which}-axis tick labels", getattr(ax, f"{which}axis")) for which in ("x", "y")]
        out += [(f"{name} text {t.get_text()[:30]!r}", t) for t in ax.texts if t.get_text() and t.get_visible()]
    return out


def clipped_at_edge(fig, tol_px: float = 1.0) -> list[str]:
    """What the saved image would cut off: each legend, title, label or text whose drawn extent
    passes an edge of the figure (the image ``save`` writes is the figure's box: no
    bbox_inches), with the edge and by how many pixels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    problems = []
    for name, art in _edge_artists(fig):
        bb = art.get_tightbbox(renderer) if hasattr(art, "get_ticklabels") else art.get_window_extent(renderer)
        if bb is None:
            continue
        past = {
            "left": box.x0 - bb.x0,
            "right": bb.x1 - box.x1,
            "bottom": box.y0 - bb.y0,
            "top": bb.y1 - box.y1,
        }
        edges = [f"{e} by {d:.0f} px" for e, d in past.items() if d > tol_px]
        if edges:
            problems.append(f"{name} is clipped at the figure's edge ({', '.join(edges)})")
    return problems


def layout_problems(fig) -> list[str]:
    """What a reviewer would reject, found from the drawn artists' extents: a data panel
    without axis labels, a legend drawn over data points of its panel, overlapping tick labels,
    anything cut off at the saved image's edge (:func:`clipped_at_edge`).
    ``save`` logs each as a warning (the pipeline test requires none)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = clipped_at_edge(fig)
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
