"""results/figures/orders_gdm.{pdf,png} (rule plot_orders_gdm): global error of GD+M against flows (1), (2) vs h
(log-log), one panel per (problem, beta)."""
import pandas as pd

from igrm.figures.orders import plot_orders_gdm
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_orders_gdm(pd.read_csv(snakemake.input.errors), pd.read_csv(snakemake.input.slopes),  # noqa: F821
                    paths=[snakemake.output.pdf, snakemake.output.png])  # noqa: F821
