"""results/figures/curves.{pdf,png} (rule plot_curves): test accuracy per epoch, one line per
beta (SGD+M at a fixed eta)."""
import pandas as pd

from igrm.figures.cifar import plot_curves
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_curves(epochs=pd.read_csv(snakemake.input.epochs), finals=pd.read_csv(snakemake.input.finals),  # noqa: F821
                paths=[snakemake.output.pdf, snakemake.output.png], **snakemake.params.cfg)  # noqa: F821
