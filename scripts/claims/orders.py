"""results/claims/orders_{kind}.csv (rule claims_orders): one claims row per fitted error order
of one family (gdm | sgdm | sgdm_real | higher) on its primary window."""

import pandas as pd

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
    write_tidy(snakemake.output[0], rows)
