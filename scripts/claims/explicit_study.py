"""results/claims/explicit_in_range.csv (rule claims_explicit_study): the tracking study's claim
rows (explicit baseline vs plain GD as trackers of GD+M; paired t-intervals over seeds)."""

import pandas as pd

from igrm.claims.explicit_study import explicit_study_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):
    p = snakemake.params
    rows = explicit_study_claims(
        table=pd.read_csv(snakemake.input.table),
        mu_fractions=p.mu_fractions,
        n_test=p.n_test,
        ci=p.ci,
        min_seeds=p.min_seeds,
        max_epsilon=p.max_epsilon,
        max_penalty_curvature=p.max_penalty_curvature,
        sharpness_tol=p.sharpness_tol,
    )
    write_tidy(snakemake.output[0], rows)
