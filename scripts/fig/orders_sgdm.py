"""results/figures/orders_sgdm.{pdf,png} (rule plot_orders_sgdm): RMS global error of SGD+M against its
piecewise flow vs h (log-log), one panel per beta."""
import pandas as pd

from igrm.figures.orders import plot_orders_sgdm
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_orders_sgdm(pd.read_csv(snakemake.input.errors), pd.read_csv(snakemake.input.slopes),  # noqa: F821
                    paths=[snakemake.output.pdf, snakemake.output.png])  # noqa: F821
