"""results/orders/gdm3/{problem}_beta{beta}.h5 (rule order_gdm3): global error of GD+M started on
its slow manifold to O(h^3) against flow (2), the O(h^3) flow and its ablation, one problem and one
beta; on lstsq also against the order-R truncations of the exact linear series."""

from igrm.orders import gdm3_error_orders
from igrm.pipeline.snakejob import logged, simulate

with logged(snakemake):
    simulate(snakemake, gdm3_error_orders, series_orders=snakemake.params.series_orders)
