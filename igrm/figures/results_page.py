"""results/index.html: the page a reader opens first. The claims summary (one line per claim of
the paper, igrm.claims.summary) and its glossary, then each figure with its caption and the
summary lines of the claims it shows; what did not run is listed with how to get it.

Self-contained and offline: the style is inline, images and links are relative to the page
(results/), nothing is fetched from elsewhere.
"""

from __future__ import annotations

import fnmatch
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..claims.summary import assign, glossary, summary_text

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 74em; padding: 0 1em; color: #1b1b1b; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.45em; vertical-align: top; text-align: left; }
th { background: #f1f1f1; }
td.n { text-align: right; }
td:first-child { min-width: 16em; }
.v-reproduces { background: #e3f4e3; } .v-does-not-reproduce { background: #fbe3e3; }
.v-mixed { background: #fbefdc; } .v-inconclusive, .v-reproduces-where-decided { background: #eef1f8; }
.v-out-of-range { background: #f4f4f4; }
figure { margin: 1.5em 0; border-top: 1px solid #ddd; padding-top: 1em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { margin: 0.4em 0; }
.notrun { color: #8a1c1c; }
dl.glossary dt { font-weight: 600; float: left; clear: left; margin-right: 0.5em; }
dl.glossary dd { margin: 0 0 0.2em 0; }
"""

# on load, each image says whether it loaded (a broken relative path is visible in the DOM)
SCRIPT = (
    "addEventListener('load', () => { for (const i of document.images) "
    "{ i.dataset.loaded = String(i.complete && i.naturalWidth > 0); } "
    "document.body.dataset.ready = 'true'; });"
)


@dataclass
class FigureEntry:
    name: str
    caption: str
    image: str | None  # path relative to the page; None: not made in this run
    pdf: str | None = None
    claims: list[str] = field(default_factory=list)  # keys of the paper claims it shows


def claim_key(rows_link: str) -> str:
    """A summary line's claim key from its ``rows`` link ('claims.md#<key>')."""
    return str(rows_link).rsplit("#", 1)[-1]


def caption_claims(caption: str, ids: Iterable[str]) -> list[str]:
    """Keys of the paper claims whose row ids the caption names (``pattern`` in double
    backquotes, glob syntax, e.g. ``cifar/obs2_spread_falls_with_beta/*``), in first-seen order."""
    ids = [str(i) for i in ids]
    pats = [p for p in re.findall(r"``([^`]+)``", caption) if "/" in p and not p.startswith("results/")]
    hits = [i for i in ids if any(fnmatch.fnmatchcase(i, p) or i == p for p in pats)]
    if not hits:
        return []
    return list(dict.fromkeys(assign(pd.Series(hits))))


def _e(x) -> str:
    return html.escape(str(x))


def _verdict_class(v: str) -> str:
    return "v-" + re.sub(r"[^a-z]+", "-", str(v).lower()).strip("-")


def summary_table(summary: pd.DataFrame, counts: Sequence[str], table_id: str = "claims-summary") -> str:
    head = ["claim", "verdict", *counts, "headline", "source"]
    out = [f'<table id="{table_id}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for _, r in summary.iterrows():
        key = claim_key(r["rows"])
        cells = [
            f'<td><a href="tables/claims.md#{_e(key)}" id="claim-{_e(key)}">{_e(r["claim"])}</a></td>',
            f'<td class="{_verdict_class(r["verdict"])}">{_e(r["verdict"])}</td>',
            *(f'<td class="n">{_e(r[c])}</td>' for c in counts),
            f"<td>{_e(r['headline'])}</td>",
            f"<td>{_e(r['source'])}</td>",
        ]
        out.append(f'<tr data-claim="{_e(key)}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def glossary_html(summary: pd.DataFrame) -> str:
    terms = glossary(summary_text(summary))
    items = "".join(f"<dt>{_e(t)}</dt><dd>{_e(d)}</dd>" for t, d in terms)
    return f'<h3>Glossary</h3><dl class="glossary" id="glossary">{items}</dl>'


def _figure_html(f: FigureEntry, summary: pd.DataFrame, counts: Sequence[str]) -> str:
    parts = [f'<figure id="fig-{_e(f.name)}"><h3>{_e(f.name)}</h3>']
    if f.image:
        parts.append(f'<a href="{_e(f.pdf or f.image)}"><img src="{_e(f.image)}" alt="figure {_e(f.name)}"></a>')
    else:
        parts.append('<p class="notrun">not made in this run (see "Not run" above)</p>')
    parts.append(f"<figcaption>{_e(f.caption)}</figcaption>")
    lines = summary[[claim_key(r) in f.claims for r in summary["rows"]]] if len(summary) else summary
    if len(lines):
        parts.append(summary_table(lines, counts, table_id=f"claims-{f.name}"))
    parts.append("</figure>")
    return "\n".join(parts)


def page_html(
    summary: pd.DataFrame,
    figures: Sequence[FigureEntry],
    *,
    counts: Sequence[str],
    not_run: Sequence[tuple[str, str]] = (),
    links: Mapping[str, str] | None = None,
    title: str = "igrm: results of this run",
) -> str:
    """The whole page: summary and glossary first, then what did not run, then the figures."""
    links = links or {}
    body = [
        f"<h1>{_e(title)}</h1>",
        "<p>One line per claim of the paper: its verdict, its rows by verdict and its headline "
        "(the claim's deciding row). Every row: "
        + ", ".join(f'<a href="{_e(href)}">{_e(text)}</a>' for text, href in links.items())
        + ".</p>",
        '<h2 id="summary">Claims summary</h2>',
        summary_table(summary, counts) if len(summary) else '<p class="notrun">no claim rows in this run</p>',
        glossary_html(summary),
    ]
    if not_run:
        body += [
            '<h2 id="not-run">Not run</h2><ul id="not-run-list">',
            *(f"<li><b>{_e(what)}</b>: {_e(how)}</li>" for what, how in not_run),
            "</ul>",
        ]
    body += ['<h2 id="figures">Figures</h2>', *(_figure_html(f, summary, counts) for f in figures)]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def summary_fragment(summary: pd.DataFrame, *, counts: Sequence[str]) -> str:
    """The claims summary and its glossary as an HTML fragment (style inline): the first thing
    the Snakemake report shows (report/workflow.rst inserts it) and one of its items."""
    return (
        f'<style>{STYLE.replace("body {", ".igrm-summary {")}</style>\n<div class="igrm-summary">'
        "<h2>The claims summary</h2>"
        "<p>One line per claim of the paper: its verdict, its rows by verdict, its headline (the claim's "
        "deciding row). Every row: category 0 Claims; the same with every figure: results/index.html.</p>\n"
        + summary_table(summary, counts, table_id="claims-summary")
        + "\n"
        + glossary_html(summary)
        + "</div>\n"
    )


def figure_entries(
    root: str | Path, names: Sequence[str], captions: Mapping[str, str], ids: Iterable[str]
) -> list[FigureEntry]:
    """One entry per figure of the config: its PNG (and PDF) under ``root``/figures when this
    run made it, its caption and the claims its caption names."""
    root, ids = Path(root), list(ids)
    out = []
    for name in names:
        png, pdf = root / "figures" / f"{name}.png", root / "figures" / f"{name}.pdf"
        out.append(
            FigureEntry(
                name=name,
                caption=captions.get(name, ""),
                image=f"figures/{name}.png" if png.exists() else None,
                pdf=f"figures/{name}.pdf" if pdf.exists() else None,
                claims=caption_claims(captions.get(name, ""), ids),
            )
        )
    return out


# ---------------------------------------------------------------- a run that did not finish
OFFLINE_HINT = (
    "offline, train on the real Fashion-MNIST instead: apt-get install dataset-fashion-mnist, then "
    "snakemake --cores all --configfile presets/fashion_mnist.yaml; or stage the archive where "
    "logs/{log} says (config key data.{ds}.local)"
)


def not_run(
    root: str | Path, *, figures: Sequence[str], claim_parts: Sequence[str], datasets: Sequence[str], data_dir: str
) -> list[tuple[str, str]]:
    """(what, how to get it) for each figure and claims part of the config this run did not
    make; where a dataset was not obtained, the reason names it and the offline preset."""
    root = Path(root)
    missing_data = [ds for ds in datasets if not (Path(data_dir) / f"{ds}.h5").exists()]
    if missing_data:
        why = "; ".join(
            f"needs the dataset {ds}, which this run could not obtain: "
            + OFFLINE_HINT.format(log=f"data/download_{ds}.log", ds=ds)
            for ds in missing_data
        )
    else:
        why = "a job failed or was not reached: see logs/ (the failed job's log is named on the console), then rerun"
    out = [(f"figure {n}", why) for n in figures if not (root / "figures" / f"{n}.png").exists()]
    out += [(f"claims {Path(p).stem}", why) for p in claim_parts if not Path(p).exists()]
    return out


def write_partial(
    root: str | Path,
    *,
    config: Mapping,
    claim_parts: Sequence[str],
    data_dir: str,
) -> tuple[Path, Path] | None:
    """After a run that stopped early: the claims summary of the parts that were made
    (results/tables/claims_summary.partial.md) and the results page (results/index.partial.html),
    each listing what was not run and how to get it. Partial files have their own names: the
    complete ones are only ever written by their rules. None when nothing was made."""
    from types import SimpleNamespace

    from ..claims import VERDICTS, combine
    from ..claims.summary import summarise, summary_markdown
    from ..pipeline.io import write_text_atomic
    from ..pipeline.snakejob import report_caption
    from ..pipeline.targets import built_figures

    root = Path(root)
    made = [p for p in claim_parts if Path(p).exists()]
    figures = built_figures(config)
    missing = not_run(
        root, figures=figures, claim_parts=claim_parts, datasets=config["train"]["datasets"], data_dir=data_dir
    )
    if not made and len(missing) == len(figures) + len(claim_parts):
        return None
    claims = combine(pd.read_csv(p) for p in made)
    summary = summarise(claims) if len(claims) else pd.DataFrame(columns=["claim", "verdict", "headline", "rows"])
    notes = "\n".join(f"- **{what}**: {how}" for what, how in missing)
    md = root / "tables" / "claims_summary.partial.md"
    write_text_atomic(
        md,
        "# Claims summary of a run that did not finish\n\n"
        + (summary_markdown(summary) if len(summary) else "No claim rows were made.\n")
        + f"\n\n## Not run\n\n{notes}\n",
    )
    smk = SimpleNamespace(config=config)
    captions = {n: report_caption(smk, n) for n in figures}
    entries = figure_entries(root, figures, captions, claims["id"] if len(claims) else [])
    page = root / "index.partial.html"
    write_text_atomic(
        page,
        page_html(
            summary,
            entries,
            counts=VERDICTS,
            not_run=missing,
            links={"the partial summary (Markdown)": "tables/claims_summary.partial.md"},
            title="igrm: results of a run that did not finish",
        ),
    )
    return md, page


def findings_markdown(summary: pd.DataFrame, *, commit: str, when: str, config: Mapping) -> str:
    """results/findings.md: the record of what this run found, generated from its own claims
    summary, with what a later reader needs to place it: the commit, the time, the data and the
    preset. A record copied elsewhere keeps this header, so it can never pass for a newer run."""
    from ..claims.summary import summary_markdown

    preset = (config.get("preset") or {}).get("name", "none")
    head = [
        "# Findings of this run (generated)",
        "",
        f"Generated by the pipeline from this run's claims table: commit `{commit}`, {when}; "
        f"datasets {', '.join(config['train']['datasets'])}; preset {preset}. "
        "Rerun `snakemake --cores all` to regenerate; the rows behind each line are in tables/claims.md.",
        "",
    ]
    return "\n".join(head) + summary_markdown(summary)
