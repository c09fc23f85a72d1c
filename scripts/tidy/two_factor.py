"""results/tidy/two_factor_{trajectories,finals}.csv (rule tidy_two_factor): the two-factor
trajectories (thinned) and one row per run's end point."""

from igrm.pipeline.io import read_h5
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.toy import two_factor_tables

with logged(snakemake):
    trajectories, finals = two_factor_tables([read_h5(p) for p in snakemake.input.results])
    write_tidy(snakemake.output.trajectories, trajectories)
    write_tidy(snakemake.output.finals, finals)
