"""results/figures/explicit_in_range.{pdf,png} (rule fig_explicit_in_range): distance of the explicit
IGR-M baseline at mu = f mu* to GD+M along the run, and the range monitor."""

import pandas as pd

from igrm.figures.explicit_study import plot_explicit_in_range
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    p = snakemake.params
    fig = plot_explicit_in_range(
        table=pd.read_csv(snakemake.input.table),
        max_epsilon=p.max_epsilon,
        max_penalty_curvature=p.max_penalty_curvature,
        ci=p.ci,
    )
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "explicit_in_range"))
