"""results/claims/eos.csv (rule claims_eos): the edge-of-stability rows, flow (2)'s range and
sharpness vs beta at matched loss (igrm.claims.eos)."""

import pandas as pd

from igrm.claims.eos import eos_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):
    p = snakemake.params
    rows = eos_claims(
        table=pd.read_csv(snakemake.input.table),
        ci=p.ci,
        min_seeds=p.min_seeds,
        max_epsilon=p.max_epsilon,
        **dict(p.flatness),
    )
    write_tidy(snakemake.output[0], rows)
