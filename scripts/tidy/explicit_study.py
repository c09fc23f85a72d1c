"""results/tidy/explicit_study.csv (rule tidy_explicit_study): one row per (setting, seed, run,
record) of the explicit-baseline tracking study, with the range monitor's expansion parameters."""

from igrm.pipeline.io import read_h5
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.explicit_study import tidy_explicit_study

with logged(snakemake):
    write_tidy(snakemake.output[0], tidy_explicit_study(*read_h5(snakemake.input.result)))
