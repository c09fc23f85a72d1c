"""results/figures/orders_any_order_limits.{pdf,png} (rule fig_orders_any_order_limits):
limit-sharpness error of the order-R flows (R = 1..5) against GD+M vs eps (log-log), per beta,
and where the ladder of orders stops (docs/modified_flows.md section 8.6)."""

import pandas as pd

from igrm.figures.orders_any_order import plot_orders_any_order_limits
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_orders_any_order_limits(
        pd.read_csv(snakemake.input.errors),
        pd.read_csv(snakemake.input.slopes),
        range_tol=snakemake.params.range_tol,
    )
    save(
        fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "orders_any_order_limits")
    )
