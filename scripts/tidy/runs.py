"""results/tidy/cifar_{grid}_{epochs,finals,sharpness}.csv (rule tidy_train): one grid's training
runs as tidy tables (igrm.tidy.runs.tidy_runs)."""

from igrm.pipeline.io import read_h5
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.runs import tidy_runs

with logged(snakemake):
    tables = tidy_runs([read_h5(p) for p in snakemake.input.runs], spread_window=snakemake.params.spread_window)
    write_tidy(snakemake.output.epochs, tables["epochs"])
    write_tidy(snakemake.output.finals, tables["finals"])
    write_tidy(snakemake.output.sharpness, tables["sharpness"])
