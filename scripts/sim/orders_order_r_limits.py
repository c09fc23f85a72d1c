"""results/orders/order_r_limits/two_factor.h5 (rule order_r_limits): limit sharpness of GD+M,
started on its slow manifold to matching order, against the limits of its order-R flows over
(beta, eps) on the two-factor toy (docs/modified_flows.md section 8.6)."""

from igrm.order_r_limits import limit_sharpness_any_order
from igrm.pipeline.snakejob import logged, simulate

with logged(snakemake):
    simulate(snakemake, limit_sharpness_any_order, two_factor=snakemake.params.two_factor)
