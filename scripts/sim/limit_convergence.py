"""results/toy/limit_convergence.h5 (rule toy_limit_convergence): GD+M's and flow (2)'s limit
sharpness on the two-factor toy at fixed beta over an eta grid in units of eps (docs/toy.md)."""

from igrm.pipeline.snakejob import logged, simulate
from igrm.toy import limit_convergence

with logged(snakemake):
    simulate(snakemake, limit_convergence, two_factor=snakemake.params.two_factor)
