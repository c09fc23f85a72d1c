"""results/figures/sharpness_runs.{pdf,png} (rule plot_sharpness_runs): sharpness of the SGD+M
runs vs epoch per beta and at their ends vs beta (igrm.figures.sharpness_runs)."""
import pandas as pd

from igrm.figures.sharpness_runs import plot_sharpness_runs
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_sharpness_runs(finals=pd.read_csv(snakemake.input.finals), points=pd.read_csv(snakemake.input.points),  # noqa: F821
                        paths=[snakemake.output.pdf, snakemake.output.png], **snakemake.params.cfg)  # noqa: F821
