"""results/claims/noise.csv (rule claims_noise): the gradient-noise stage's claims rows,
Obs-1 and Obs-2 against the exact theory and the slides' factors, gated by the simulated
coverage of their intervals (igrm.claims.noise)."""

import pandas as pd

from igrm.claims.noise import noise_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):
    p = snakemake.params
    rows = noise_claims(
        pd.read_csv(snakemake.input.ratios),
        pd.read_csv(snakemake.input.regularisation),
        pd.read_csv(snakemake.input.calibration),
        theory_margin=p.theory_margin,
        slides_margin=p.slides_margin,
        min_groups=p.min_groups,
        n_blocks=p.n_blocks,
        n_groups=p.n_groups,
        min_coverage=p.min_coverage,
    )
    write_tidy(snakemake.output[0], rows)
