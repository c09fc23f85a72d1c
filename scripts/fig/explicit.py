"""results/figures/explicit.{pdf,png} (rule fig_explicit): explicit IGR-M baseline vs GD+M
and plain GD at the same eta."""

import pandas as pd

from igrm.figures.cifar import plot_explicit
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    # the rule's params are exactly what the figure draws besides the tables
    fig = plot_explicit(
        epochs=pd.read_csv(snakemake.input.epochs),
        finals=pd.read_csv(snakemake.input.finals),
        **dict(snakemake.params.items()),
    )
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "explicit"))
