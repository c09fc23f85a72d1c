"""results/index.html and results/findings.md (rule results_page): the claims summary and its
glossary first, then each figure of the config with its caption and the summary lines of the
claims it shows (igrm.figures.results_page); self-contained, offline, relative links only. The
findings record is the same summary with the commit and time of the run."""

from pathlib import Path

import pandas as pd

from igrm.claims import VERDICTS
from igrm.figures.results_page import figure_entries, findings_markdown, page_html, summary_fragment
from igrm.pipeline.io import git_commit, write_text_atomic
from igrm.pipeline.snakejob import logged, now_iso, report_caption

smk = snakemake
with logged(smk) as log:
    out = Path(smk.output.page)
    summary = pd.read_csv(smk.input.summary)
    ids = pd.read_csv(smk.input.claims)["id"]
    names = list(smk.params.figures)
    captions = {n: report_caption(smk, n) for n in names}
    links = {
        "claims by claim (claims.md)": "tables/claims.md",
        "every row (claims.csv)": "tables/claims.csv",
        "the summary as Markdown": "tables/claims_summary.md",
        "the findings record (with its commit)": "findings.md",
    }
    if smk.params.report:
        links["the HTML report (report.zip, made at the end of `all`)"] = "report.zip"
    page = page_html(summary, figure_entries(out.parent, names, captions, ids), counts=VERDICTS, links=links)
    write_text_atomic(
        smk.output.findings, findings_markdown(summary, commit=git_commit(), when=now_iso(), config=smk.config)
    )
    write_text_atomic(smk.output.summary_html, summary_fragment(summary, counts=VERDICTS))
    write_text_atomic(out, page)
    log.info("wrote %s: %d claim lines, %d figures", out, len(summary), len(names))
