"""results/figures/sharpness_runs.{pdf,png} (rule fig_sharpness_runs): sharpness of the SGD+M
runs vs epoch per beta and at their ends vs beta."""

import pandas as pd

from igrm.figures.sharpness_runs import plot_sharpness_runs
from igrm.figures.style import save
from igrm.pipeline.snakejob import logged, report_caption

with logged(snakemake):
    p = snakemake.params
    fig = plot_sharpness_runs(
        finals=pd.read_csv(snakemake.input.finals),
        points=pd.read_csv(snakemake.input.points),
        eta=p.eta,
        dataset=p.dataset,
        model=p.model,
        ci=p.ci,
    )
    save(fig, [snakemake.output.pdf, snakemake.output.png], caption=report_caption(snakemake, "sharpness_runs"))
