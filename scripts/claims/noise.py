"""results/claims/noise.csv (rule claims_noise): the gradient-noise stage's claims rows,
Obs-1 and Obs-2 against the exact theory and the slides' factors, gated by the simulated
coverage of their intervals (igrm.claims.noise)."""
import pandas as pd

from igrm.claims.noise import noise_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    rows = noise_claims(
        pd.read_csv(snakemake.input.ratios),  # noqa: F821
        pd.read_csv(snakemake.input.regularisation),  # noqa: F821
        pd.read_csv(snakemake.input.calibration),  # noqa: F821
        **snakemake.params.cfg,  # noqa: F821
    )
    write_tidy(snakemake.output[0], rows)  # noqa: F821
