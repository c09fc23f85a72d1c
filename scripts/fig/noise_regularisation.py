"""results/figures/noise_regularisation.{pdf,png} (rule plot_noise_regularisation):
E[IGRM_s] / E[IGR_s] vs β, measured and exact theory, with the slides' 1/(1−β) (Obs-2;
igrm.figures.noise)."""
import pandas as pd

from igrm.figures.noise import plot_reg_ratio
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_reg_ratio(
        pd.read_csv(snakemake.input.regularisation),  # noqa: F821
        paths=[snakemake.output.pdf, snakemake.output.png],  # noqa: F821
        **snakemake.params.cfg,  # noqa: F821
    )
