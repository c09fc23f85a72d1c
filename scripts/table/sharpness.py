"""results/tables/sharpness.{csv,md,tex} (rule table_sharpness): where each run of the
two-factor figure converges, and how sharp it is there."""

import pandas as pd

from igrm.pipeline.snakejob import logged, report_caption, write_table

with logged(snakemake):
    finals = pd.read_csv(snakemake.input.finals)
    write_table(
        finals,
        [snakemake.output.csv, snakemake.output.md, snakemake.output.tex],
        caption=report_caption(snakemake, "sharpness"),
    )
