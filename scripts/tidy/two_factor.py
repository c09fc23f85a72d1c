"""results/tidy/two_factor_{trajectories,finals}.csv (rule tidy_two_factor): the two-factor
trajectories (thinned) and one row per run's end point."""
from igrm.pipeline.io import read_h5
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.toy import two_factor_tables

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    trajectories, finals = two_factor_tables([read_h5(p) for p in snakemake.input.results])  # noqa: F821
    write_tidy(snakemake.output.trajectories, trajectories)  # noqa: F821
    write_tidy(snakemake.output.finals, finals)  # noqa: F821
