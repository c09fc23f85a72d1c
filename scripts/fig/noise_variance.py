"""results/figures/noise_variance.{pdf,png} (rule fig_noise_variance): Monte-Carlo
tr Cov((1−β)∇G_k) / tr Cov(g) vs β with the exact theory (Obs-1; igrm.figures.noise)."""

import pandas as pd

from igrm.figures.noise import plot_variance_ratio
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_variance_ratio(pd.read_csv(snakemake.input.ratios))
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "noise_variance"))
