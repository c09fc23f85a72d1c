"""results/figures/sigmoid.{pdf,png} (rule fig_sigmoid): GD/GD+M on the sigmoid toy over the
map of ||grad E||^2, with the ODE flows."""

import pandas as pd

from igrm.figures.style import save
from igrm.figures.toy import plot_sigmoid
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    p = snakemake.params
    fig = plot_sigmoid(
        pd.read_csv(snakemake.input.trajectories), pd.read_csv(snakemake.input.flows), x=p.x, y=p.y, eta=p.eta
    )
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "sigmoid"))
