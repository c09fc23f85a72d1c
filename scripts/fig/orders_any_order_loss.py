"""results/figures/orders_any_order_loss.{pdf,png} (rule fig_orders_any_order_loss): distance
between heavy ball and gradient descent on its order-R modified loss (R = 1..5) vs h (log-log),
per problem and beta (docs/modified_flows.md section 8.5)."""

import pandas as pd

from igrm.figures.orders_any_order import plot_orders_any_order_loss
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_orders_any_order_loss(pd.read_csv(snakemake.input.errors), pd.read_csv(snakemake.input.slopes))
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "orders_any_order_loss"))
