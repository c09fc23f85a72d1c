"""results/orders/limits/two_factor.h5 (rule order_limits): limit sharpness of GD+M from rest
against the limits of flow (2) and of the O(h^3) flow, over (beta, eps), on the two-factor toy."""

from igrm.higher_limits import limit_sharpness_orders
from igrm.pipeline.snakejob import logged, simulate

with logged(snakemake):
    simulate(snakemake, limit_sharpness_orders, two_factor=snakemake.params.two_factor)
