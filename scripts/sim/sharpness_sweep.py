"""results/toy/sharpness_sweep/eta{eta}.h5 (rule toy_sharpness_sweep): limit-point sharpness
of GD+M, flow (2) and flow (1) on the two-factor toy over beta, at one eta."""

from igrm.pipeline.snakejob import logged, simulate
from igrm.toy import sharpness_sweep

with logged(snakemake):
    simulate(snakemake, sharpness_sweep, two_factor=snakemake.params.two_factor)
