"""results/figures/curves.{pdf,png} (rule fig_curves): test accuracy per epoch, one line per
beta (SGD+M at a fixed eta)."""

import pandas as pd

from igrm.figures.cifar import plot_curves
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    p = snakemake.params
    fig = plot_curves(
        epochs=pd.read_csv(snakemake.input.epochs),
        finals=pd.read_csv(snakemake.input.finals),
        spread_window=p.spread_window,
        eta=p.eta,
        dataset=p.dataset,
        model=p.model,
        ci=p.ci,
    )
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "curves"))
