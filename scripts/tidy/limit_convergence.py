"""results/tidy/limit_convergence.csv (rule tidy_limit_convergence): GD+M vs flow (2) limit
sharpness at fixed beta over eta, one row per (beta, eta), with eps."""

from igrm.pipeline.io import read_h5
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.toy import limit_convergence_table

with logged(snakemake):
    table = limit_convergence_table([read_h5(p) for p in snakemake.input.results])
    write_tidy(snakemake.output.convergence, table)
