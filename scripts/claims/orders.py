"""results/claims/orders_{kind}.csv (rule claims_orders): one claims row per fitted error order
of one family (gdm | sgdm) on its primary window."""
import pandas as pd

from igrm.claims.orders import order_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    rows = order_claims(pd.read_csv(snakemake.input.slopes), **snakemake.params.cfg)  # noqa: F821
    write_tidy(snakemake.output[0], rows)  # noqa: F821
