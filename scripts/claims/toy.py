"""results/claims/toy.csv (rule claims_toy): the toy problems' claims rows (flatter minima
with beta, flow (2) vs flow (1) inside its range of validity and out of range, the O(eta^2)
order at beta = 0 and at fixed beta > 0)."""

import pandas as pd

from igrm.claims.toy import toy_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):
    rows = toy_claims(
        pd.read_csv(snakemake.input.sweep),
        pd.read_csv(snakemake.input.finals),
        pd.read_csv(snakemake.input.convergence),
        **snakemake.params.cfg,
    )
    write_tidy(snakemake.output[0], rows)
