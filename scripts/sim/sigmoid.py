"""results/toy/sigmoid.h5 (rule toy_sigmoid): GD/GD+M on the sigmoid toy, and the ODE flows of E and
of the implicit regulariser ||grad E||^2."""

from igrm.pipeline.snakejob import logged, simulate
from igrm.toy import simulate_sigmoid

with logged(snakemake):
    simulate(snakemake, simulate_sigmoid)
