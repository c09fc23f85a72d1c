"""results/figures/spread.{pdf,png} (rule fig_spread): spread of test accuracy over the last
epochs vs beta (observation 2)."""

import pandas as pd

from igrm.figures.cifar import plot_spread
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    # the rule's params are exactly what the figure draws besides the tables
    fig = plot_spread(
        epochs=pd.read_csv(snakemake.input.epochs),
        finals=pd.read_csv(snakemake.input.finals),
        **dict(snakemake.params.items()),
    )
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "spread"))
