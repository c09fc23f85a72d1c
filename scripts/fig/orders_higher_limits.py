"""results/figures/orders_higher_limits.{pdf,png} (rule plot_orders_higher_limits): limit-sharpness
error of flow (2) and the O(h^3) flow against GD+M vs beta, per eps."""
import pandas as pd

from igrm.figures.orders import plot_orders_higher_limits
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_orders_higher_limits(pd.read_csv(snakemake.input.errors), pd.read_csv(snakemake.input.slopes),  # noqa: F821
                              paths=[snakemake.output.pdf, snakemake.output.png])  # noqa: F821
