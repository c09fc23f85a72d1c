"""results/claims/explicit_in_range.csv (rule claims_explicit_study): the tracking study's claim
rows (explicit baseline vs plain GD as trackers of GD+M; paired t-intervals over seeds)."""
import pandas as pd

from igrm.claims.explicit_study import explicit_study_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    rows = explicit_study_claims(table=pd.read_csv(snakemake.input.table), **snakemake.params.cfg)  # noqa: F821
    write_tidy(snakemake.output[0], rows)  # noqa: F821
