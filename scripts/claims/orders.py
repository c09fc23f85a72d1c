"""results/claims/orders_{kind}.csv (rule claims_orders): one claims row per fitted error order
of one family (gdm | sgdm | sgdm_real | higher | order_r) on its primary window, and the
range-of-validity finding rows of the any-order limits (docs/modified_flows.md (M27); only
where the errors table has them)."""

import pandas as pd

from igrm.claims import combine
from igrm.claims.order_r_range import range_claims
from igrm.claims.orders import order_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):
    p = snakemake.params
    rows = order_claims(
        pd.read_csv(snakemake.input.slopes),
        slope_tol=p.slope_tol,
        ci=p.ci,
        max_epsilon=p.max_epsilon,
        floor_factor=p.floor_factor,
    )
    ranges = range_claims(pd.read_csv(snakemake.input.errors), range_tol=p.range_tol)
    write_tidy(snakemake.output[0], combine([rows, ranges]))
