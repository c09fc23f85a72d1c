"""results/figures/orders_any_order.{pdf,png} (rule fig_orders_any_order): global error of GD+M
against its order-R modified flows (R = 1..5) and their ablations vs h (log-log), per problem and
beta, with the reference floor (docs/modified_flows.md section 8)."""

import pandas as pd

from igrm.figures.orders_any_order import plot_orders_any_order
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_orders_any_order(pd.read_csv(snakemake.input.errors), pd.read_csv(snakemake.input.slopes))
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "orders_any_order"))
