"""results/figures/curves.{pdf,png} (rule fig_curves): test accuracy per epoch, one line per
beta (SGD+M at a fixed eta)."""

import pandas as pd

from igrm.figures.cifar import plot_curves
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    # the rule's params are exactly what the figure draws besides the tables
    fig = plot_curves(
        epochs=pd.read_csv(snakemake.input.epochs),
        finals=pd.read_csv(snakemake.input.finals),
        **dict(snakemake.params.items()),
    )
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "curves"))
