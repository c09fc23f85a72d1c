"""results/tidy/orders_{family}.csv and orders_{family}_slopes.csv (rule tidy_orders): the
global errors of one family (gdm | sgdm) and their fitted orders."""

from igrm.pipeline.io import read_h5
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.orders import orders_tables

with logged(snakemake):
    errors, slopes = orders_tables([read_h5(p) for p in snakemake.input.results])
    write_tidy(snakemake.output.errors, errors)
    write_tidy(snakemake.output.slopes, slopes)
