"""results/tidy/sharpness_sweep.csv (rule tidy_sharpness_sweep): limit sharpness of GD+M,
flow (2) and flow (1), one row per (eta, beta), from every eta's result file."""

from igrm.pipeline.io import read_h5
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.toy import sharpness_sweep_table

with logged(snakemake):
    sweep = sharpness_sweep_table([read_h5(p) for p in snakemake.input.results])
    write_tidy(snakemake.output.sweep, sweep)
