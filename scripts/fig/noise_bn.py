"""results/figures/noise_bn.{pdf,png} (rule plot_noise_bn): the variance ratio without
replacement under BatchNorm against the exact and the corrected theory (docs/noise.md §8;
igrm.figures.noise.plot_bn_ratio)."""
import pandas as pd

from igrm.figures.noise import plot_bn_ratio
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_bn_ratio(
        pd.read_csv(snakemake.input.ratios),  # noqa: F821
        paths=[snakemake.output.pdf, snakemake.output.png],  # noqa: F821
        **snakemake.params.cfg,  # noqa: F821
    )
