"""results/figures/two_factor.{pdf,png} (rule plot_two_factor): GD vs GD+M on the two-factor
toy over the hyperbola of minima, and the end points' sharpness vs beta."""
import pandas as pd

from igrm.figures.toy import plot_two_factor
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_two_factor(pd.read_csv(snakemake.input.trajectories), pd.read_csv(snakemake.input.finals),  # noqa: F821
                    paths=[snakemake.output.pdf, snakemake.output.png], **snakemake.params.cfg)  # noqa: F821
