"""results/tables/cifar_final.{csv,md,tex} (rule make_table_cifar_final): final test
accuracy per level over seeds, every training grid's runs (each once)."""
import pandas as pd

from igrm.pipeline.snakejob import logged, write_table
from igrm.tidy.runs import TABLE_CAPTION, concat_finals, table_final

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    finals = concat_finals(pd.read_csv(p) for p in snakemake.input.finals)  # noqa: F821
    table = table_final(finals=finals, **snakemake.params.cfg)  # noqa: F821
    write_table(table, [snakemake.output.csv, snakemake.output.md, snakemake.output.tex],  # noqa: F821
                caption=TABLE_CAPTION)
