"""results/orders/sgdm/beta{beta}.h5 (rule order_sgdm): RMS global error of SGD+M against its
piecewise modified flow, with and without the h/4 terms, at one beta."""

from igrm.orders import sgdm_error_orders
from igrm.pipeline.snakejob import logged, simulate

with logged(snakemake):
    simulate(snakemake, sgdm_error_orders, seed=snakemake.params.cfg["seed"])
