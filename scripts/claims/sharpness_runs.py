"""results/claims/sharpness_runs.csv (rule claims_sharpness_runs): the claim rows of flatness vs
beta on the trained networks (igrm.claims.sharpness_runs.sharpness_claims), each run once."""
import pandas as pd

from igrm.claims.sharpness_runs import sharpness_claims
from igrm.snakejob import logged, write_tidy
from igrm.tidy.runs import concat_finals

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    finals = concat_finals(pd.read_csv(p) for p in snakemake.input.finals)  # noqa: F821
    points = pd.concat([pd.read_csv(p) for p in snakemake.input.points], ignore_index=True)  # noqa: F821
    points = points.drop_duplicates(subset=["run_id", "epoch"]).reset_index(drop=True)
    rows = sharpness_claims(finals=finals, points=points, **snakemake.params.cfg)  # noqa: F821
    write_tidy(snakemake.output[0], rows)  # noqa: F821
