"""results/toy/two_factor.h5 (rule toy_two_factor): GD and GD+M on the two-factor toy at one
effective learning rate, one run per beta."""

from igrm.pipeline.snakejob import logged, simulate
from igrm.toy import simulate_two_factor

with logged(snakemake):
    simulate(snakemake, simulate_two_factor)
