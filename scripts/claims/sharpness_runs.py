"""results/claims/sharpness_runs.csv (rule claims_sharpness_runs): the claim rows of flatness vs
beta on the trained networks (igrm.claims.sharpness_runs.sharpness_claims), each run once."""
import pandas as pd

from igrm.claims.sharpness_runs import sharpness_claims
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.runs import concat_finals, concat_points

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    finals = concat_finals(pd.read_csv(p) for p in snakemake.input.finals)  # noqa: F821
    points = concat_points(pd.read_csv(p) for p in snakemake.input.points)  # noqa: F821
    rows = sharpness_claims(finals=finals, points=points, **snakemake.params.cfg)  # noqa: F821
    write_tidy(snakemake.output[0], rows)  # noqa: F821
