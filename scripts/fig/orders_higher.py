"""results/figures/orders_higher.{pdf,png} (rule plot_orders_higher): global error of GD+M against
its O(h^3) flow, flow (2) and the ablation, and against the order-R linear series, vs h (log-log)."""
import pandas as pd

from igrm.figures.orders import plot_orders_higher
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_orders_higher(pd.read_csv(snakemake.input.errors), pd.read_csv(snakemake.input.slopes),  # noqa: F821
                       paths=[snakemake.output.pdf, snakemake.output.png])  # noqa: F821
