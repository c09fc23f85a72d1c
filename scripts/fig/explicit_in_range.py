"""results/figures/explicit_in_range.{pdf,png} (rule plot_explicit_in_range): distance of the explicit
IGR-M baseline at mu = f mu* to GD+M along the run, and the range monitor."""
import pandas as pd

from igrm.figures.explicit_study import plot_explicit_in_range
from igrm.pipeline.snakejob import logged

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    plot_explicit_in_range(table=pd.read_csv(snakemake.input.table),  # noqa: F821
                           paths=[snakemake.output.pdf, snakemake.output.png], **snakemake.params.cfg)  # noqa: F821
