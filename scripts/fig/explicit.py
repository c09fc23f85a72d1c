"""results/figures/explicit.{pdf,png} (rule plot_explicit): explicit IGR-M baseline vs GD+M
and plain GD at the same eta."""
import pandas as pd

from igrm.figures.cifar import plot_explicit
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_explicit(epochs=pd.read_csv(snakemake.input.epochs), finals=pd.read_csv(snakemake.input.finals),  # noqa: F821
                  paths=[snakemake.output.pdf, snakemake.output.png], **snakemake.params.cfg)  # noqa: F821
