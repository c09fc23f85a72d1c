"""results/figures/two_factor.{pdf,png} (rule fig_two_factor): GD vs GD+M on the two-factor
toy over the hyperbola of minima, and the end points' sharpness vs beta."""

import pandas as pd

from igrm.figures.style import save
from igrm.figures.toy import plot_two_factor
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    p = snakemake.params
    fig = plot_two_factor(
        pd.read_csv(snakemake.input.trajectories), pd.read_csv(snakemake.input.finals), x=p.x, y=p.y, eta=p.eta
    )
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "two_factor"))
