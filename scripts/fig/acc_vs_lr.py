"""results/figures/acc_vs_lr.{pdf,png} (rule fig_acc_vs_lr): plain SGD: final test accuracy
vs the learning rate h (observation 1)."""

import pandas as pd

from igrm.figures.cifar import plot_acc_vs_lr
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    p = snakemake.params
    fig = plot_acc_vs_lr(
        epochs=pd.read_csv(snakemake.input.epochs),
        finals=pd.read_csv(snakemake.input.finals),
        spread_window=p.spread_window,
        dataset=p.dataset,
        model=p.model,
        ci=p.ci,
    )
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "acc_vs_lr"))
