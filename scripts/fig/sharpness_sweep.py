"""results/figures/sharpness_sweep.{pdf,png} (rule plot_sharpness_sweep): limit sharpness vs
beta at fixed eta, GD+M against flows (2) and (1)."""
import pandas as pd

from igrm.figures.toy import plot_sharpness_sweep
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_sharpness_sweep(pd.read_csv(snakemake.input.sweep),  # noqa: F821
                         paths=[snakemake.output.pdf, snakemake.output.png])  # noqa: F821
