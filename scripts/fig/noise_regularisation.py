"""results/figures/noise_regularisation.{pdf,png} (rule fig_noise_regularisation):
E[IGRM_s] / E[IGR_s] vs β, measured and exact theory, with the slides' 1/(1−β) (Obs-2;
igrm.figures.noise)."""

import pandas as pd

from igrm.figures.noise import plot_reg_ratio
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_reg_ratio(pd.read_csv(snakemake.input.regularisation))
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "noise_regularisation"))
