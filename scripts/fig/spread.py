"""results/figures/spread.{pdf,png} (rule plot_spread): spread of test accuracy over the last
epochs vs beta (observation 2)."""
import pandas as pd

from igrm.figures.cifar import plot_spread
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_spread(epochs=pd.read_csv(snakemake.input.epochs), finals=pd.read_csv(snakemake.input.finals),  # noqa: F821
                paths=[snakemake.output.pdf, snakemake.output.png], **snakemake.params.cfg)  # noqa: F821
