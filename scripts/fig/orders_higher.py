"""results/figures/orders_higher.{pdf,png} (rule fig_orders_higher): global error of GD+M against
its O(h^3) flow, flow (2) and the ablation, and against the order-R linear series, vs h (log-log)."""

import pandas as pd

from igrm.figures.orders import plot_orders_higher
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_orders_higher(pd.read_csv(snakemake.input.errors), pd.read_csv(snakemake.input.slopes))
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "orders_higher"))
