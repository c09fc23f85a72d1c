"""results/figures/eos.{pdf,png} (rule fig_eos): lambda_max over training per beta with the
stability limits 2(1+beta)/h (docs/mechanism.md)."""

import pandas as pd

from igrm.figures.eos import plot_eos
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_eos(table=pd.read_csv(snakemake.input.table), edge_margin=snakemake.params.edge_margin)
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "eos"))
