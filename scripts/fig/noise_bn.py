"""results/figures/noise_bn.{pdf,png} (rule fig_noise_bn): the variance ratio without
replacement under BatchNorm against the exact and the corrected theory (docs/noise.md §8;
igrm.figures.noise.plot_bn_ratio)."""

import pandas as pd

from igrm.figures.noise import plot_bn_ratio
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_bn_ratio(pd.read_csv(snakemake.input.ratios), margin=snakemake.params.margin)
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "noise_bn"))
