"""results/figures/acc_vs_lr.{pdf,png} (rule plot_acc_vs_lr): plain SGD: final test accuracy
vs the learning rate h (observation 1)."""
import pandas as pd

from igrm.figures.cifar import plot_acc_vs_lr
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_acc_vs_lr(epochs=pd.read_csv(snakemake.input.epochs), finals=pd.read_csv(snakemake.input.finals),  # noqa: F821
                   paths=[snakemake.output.pdf, snakemake.output.png], **snakemake.params.cfg)  # noqa: F821
