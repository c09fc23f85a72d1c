"""results/figures/acc_vs_beta.{pdf,png} (rule fig_acc_vs_beta): final test accuracy vs beta
at a fixed effective learning rate (observation 3)."""

import pandas as pd

from igrm.figures.cifar import plot_acc_vs_beta
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    # the rule's params are exactly what the figure draws besides the tables
    fig = plot_acc_vs_beta(
        epochs=pd.read_csv(snakemake.input.epochs),
        finals=pd.read_csv(snakemake.input.finals),
        **dict(snakemake.params.items()),
    )
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "acc_vs_beta"))
