"""results/figures/sigmoid.{pdf,png} (rule plot_sigmoid): GD/GD+M on the sigmoid toy over the
map of ||grad E||^2, with the ODE flows."""
import pandas as pd

from igrm.figures.toy import plot_sigmoid
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_sigmoid(pd.read_csv(snakemake.input.trajectories), pd.read_csv(snakemake.input.flows),  # noqa: F821
                 paths=[snakemake.output.pdf, snakemake.output.png], **snakemake.params.cfg)  # noqa: F821
