"""results/figures/orders_sgdm.{pdf,png} (rule fig_orders_sgdm): RMS global error of SGD+M against its
piecewise flow vs h (log-log), one panel per beta."""

import pandas as pd

from igrm.figures.orders import plot_orders_sgdm
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_orders_sgdm(pd.read_csv(snakemake.input.errors), pd.read_csv(snakemake.input.slopes))
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "orders_sgdm"))
