"""results/orders/gdm/{problem}_beta{beta}.h5 (rule order_gdm): global error of GD+M against flows
(1) and (2) over a grid of h, four starts, one problem and one beta."""

from igrm.orders import gdm_error_orders
from igrm.pipeline.snakejob import logged, simulate

with logged(snakemake):
    simulate(snakemake, gdm_error_orders)
