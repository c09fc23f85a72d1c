"""results/figures/acc_vs_beta.{pdf,png} (rule plot_acc_vs_beta): final test accuracy vs beta
at a fixed effective learning rate (observation 3)."""
import pandas as pd

from igrm.figures.cifar import plot_acc_vs_beta
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_acc_vs_beta(epochs=pd.read_csv(snakemake.input.epochs), finals=pd.read_csv(snakemake.input.finals),  # noqa: F821
                     paths=[snakemake.output.pdf, snakemake.output.png], **snakemake.params.cfg)  # noqa: F821
