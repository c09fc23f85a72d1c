"""results/tables/claims.{csv,md,tex} and claims_summary.{csv,md,tex} (rule make_table_claims):
every stage's claim rows (results/claims/<part>.csv) in one table, grouped by claim of the
paper, and the one line per claim that opens the report (igrm.claims.summary)."""

import pandas as pd

from igrm.claims import combine
from igrm.claims.summary import assign, detail_markdown, summarise, summary_markdown
from igrm.pipeline.snakejob import logged, write_table

CAPTION = (
    "Every claim of the paper checked by the pipeline: the theory value, the measured value "
    "with its uncertainty, the tolerance (fixed in the config before measuring) and the verdict."
)
SUMMARY_CAPTION = (
    "One line per claim of the paper: the verdict of its in-range decided rows (mixed: some "
    "reproduce, some do not; reproduces where decided: none fails, some are inconclusive), the rows by verdict, and the headline: the claim's "
    "deciding row, named with its quantity and unit, its value ± the half-width of the interval whose level it states, "
    "what was expected and the margin or direction it was judged against. Out-of-range rows are findings about where "
    "the theory applies, not evidence for or against it. Symbols: the glossary under the table (claims_summary.md). "
    "Detail rows: claims.md."
)

smk = snakemake
out = smk.output
with logged(smk):
    table = combine(pd.read_csv(p) for p in smk.input.parts)
    table.insert(1, "paper_claim", assign(table["id"]))
    write_table(table, [out.csv, out.md], caption=CAPTION, markdown=detail_markdown(table.drop(columns="paper_claim")))
    # LaTeX: a longtable that fits a portrait page; the long detail cells stay in the .md/.csv
    write_table(
        table[["id", "claim", "expected", "measured", "uncertainty", "tolerance", "verdict"]],
        [out.tex],
        caption=CAPTION + " Details of each row: claims.md / claims.csv.",
        longtable=True,
        colspec="p{3cm}p{4.2cm}p{1.8cm}rrp{2cm}p{1.5cm}",
    )
    summary = summarise(table.drop(columns="paper_claim"))
    write_table(summary, [out.summary_csv, out.summary_md], caption=SUMMARY_CAPTION, markdown=summary_markdown(summary))
    short = {"reproduces": "rep.", "does not reproduce": "not", "inconclusive": "inc.", "out of range": "o.o.r."}
    write_table(
        summary[["claim", "verdict", *short, "headline"]].rename(columns=short),
        [out.summary_tex],
        caption=SUMMARY_CAPTION + " Columns: rows that reproduce (rep.), do not (not), are inconclusive "
        "(inc.), are out of the theory's range (o.o.r.).",
        colspec="p{5.4cm}p{1.8cm}rrrrp{4.2cm}",
    )
