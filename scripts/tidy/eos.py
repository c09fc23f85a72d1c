"""results/tidy/eos.csv (rule tidy_eos): one row per (setting, beta, seed, record) of the EoS study."""

from igrm.eos import eos_table
from igrm.pipeline.io import read_h5
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):
    arrays, attrs = read_h5(snakemake.input.result)
    write_tidy(snakemake.output[0], eos_table(arrays=arrays, attrs=attrs))
