"""results/tables/cifar_final.{csv,md,tex} (rule table_cifar_final): final test
accuracy per level over seeds, every training grid's runs (each once)."""

import pandas as pd

from igrm.pipeline.snakejob import logged, report_caption, write_table
from igrm.tidy.runs import concat_finals, table_final

with logged(snakemake):
    finals = concat_finals(pd.read_csv(p) for p in snakemake.input.finals)
    table = table_final(finals=finals, dataset=snakemake.params.dataset, model=snakemake.params.model)
    write_table(
        table,
        [snakemake.output.csv, snakemake.output.md, snakemake.output.tex],
        caption=report_caption(snakemake, "cifar_final"),
    )
