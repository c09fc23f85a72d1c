"""results/figures/sharpness_sweep.{pdf,png} (rule fig_sharpness_sweep): limit sharpness vs
beta at fixed eta, GD+M against flows (2) and (1)."""

import pandas as pd

from igrm.figures.style import save
from igrm.figures.toy import plot_sharpness_sweep
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    fig = plot_sharpness_sweep(pd.read_csv(snakemake.input.sweep))
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "sharpness_sweep"))
