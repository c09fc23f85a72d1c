"""results/tidy/sigmoid_{trajectories,flows}.csv (rule tidy_sigmoid): the sigmoid toy's
trajectories and its two ODE flows."""

from igrm.pipeline.io import read_h5
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.toy import sigmoid_tables

with logged(snakemake):
    trajectories, flows = sigmoid_tables([read_h5(p) for p in snakemake.input.results])
    write_tidy(snakemake.output.trajectories, trajectories)
    write_tidy(snakemake.output.flows, flows)
