"""results/claims/sharpness_runs.csv (rule claims_sharpness_runs): the claim rows of flatness vs
beta on the trained networks (igrm.claims.sharpness_runs.sharpness_claims), each run once."""

import pandas as pd

from igrm.claims.sharpness_runs import sharpness_claims
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.runs import concat_finals, concat_points

with logged(snakemake):
    p = snakemake.params
    finals = concat_finals(pd.read_csv(f) for f in snakemake.input.finals)
    points = concat_points(pd.read_csv(f) for f in snakemake.input.points)
    rows = sharpness_claims(
        finals=finals,
        points=points,
        eta=p.eta,
        dataset=p.dataset,
        model=p.model,
        ci=p.ci,
        min_seeds=p.min_seeds,
        max_epsilon=p.max_epsilon,
        ratio_margin=p.ratio_margin,
        # the matched-loss and converged-final rules (docs/mechanism.md (S6)-(S8))
        n_levels=p.flatness["n_levels"],
        max_bracket_ratio=p.flatness["max_bracket_ratio"],
        converged_fraction=p.flatness["converged_fraction"],
    )
    write_tidy(snakemake.output[0], rows)
