"""results/claims/toy.csv (rule claims_toy): the toy problems' claims rows (flatter minima
with beta, flow (2) vs flow (1) inside its range of validity and out of range, the O(eta^2)
order at beta = 0 and at fixed beta > 0)."""
import pandas as pd

from igrm.claims.toy import toy_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    rows = toy_claims(pd.read_csv(snakemake.input.sweep), pd.read_csv(snakemake.input.finals),  # noqa: F821
                      pd.read_csv(snakemake.input.convergence),  # noqa: F821
                      **snakemake.params.cfg)  # noqa: F821
    write_tidy(snakemake.output[0], rows)  # noqa: F821
