"""results/figures/noise_variance.{pdf,png} (rule plot_noise_variance): Monte-Carlo
tr Cov((1−β)∇G_k) / tr Cov(g) vs β with the exact theory (Obs-1; igrm.figures.noise)."""
import pandas as pd

from igrm.figures.noise import plot_variance_ratio
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_variance_ratio(
        pd.read_csv(snakemake.input.ratios),  # noqa: F821
        paths=[snakemake.output.pdf, snakemake.output.png],  # noqa: F821
        **snakemake.params.cfg,  # noqa: F821
    )
