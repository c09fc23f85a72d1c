"""results/orders/order_r/{problem}_beta{beta}.h5 (rule order_r): global error of GD+M, started on
the slow manifold to matching order, against its order-R modified flows (R = 1..5) and their
ablations, one problem and one beta (docs/modified_flows.md section 8)."""

from igrm.order_r_study import order_r_error_orders
from igrm.pipeline.snakejob import logged, simulate

with logged(snakemake):
    simulate(
        snakemake,
        order_r_error_orders,
        two_factor=snakemake.params.two_factor,
        lstsq=snakemake.params.lstsq,
    )
