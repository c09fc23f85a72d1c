"""results/figures/orders_higher_limits.{pdf,png} (rule fig_orders_higher_limits): limit-sharpness
error of flow (2) and the O(h^3) flow against GD+M vs beta, per eps."""

import pandas as pd

from igrm.figures.orders import plot_orders_higher_limits
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_orders_higher_limits(pd.read_csv(snakemake.input.errors), pd.read_csv(snakemake.input.slopes))
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "orders_higher_limits"))
