"""results/figures/orders_gdm.{pdf,png} (rule fig_orders_gdm): global error of GD+M against flows (1), (2) vs h
(log-log), one panel per (problem, beta)."""

import pandas as pd

from igrm.figures.orders import plot_orders_gdm
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_orders_gdm(pd.read_csv(snakemake.input.errors), pd.read_csv(snakemake.input.slopes))
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "orders_gdm"))
