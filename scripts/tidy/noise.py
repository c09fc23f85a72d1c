"""results/tidy/noise_{ratios,regularisation,calibration}.csv (rule tidy_noise): one row per
(point, sampler, β, k) of every gradient-noise result, and per (sampler, β, k) of the
simulated coverage (igrm.tidy.noise)."""

from igrm.pipeline.io import read_h5
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.noise import noise_calibration, noise_ratios, noise_regularisation

with logged(snakemake):
    results = [read_h5(p) for p in snakemake.input.points]
    write_tidy(snakemake.output.ratios, noise_ratios(results))
    write_tidy(snakemake.output.regularisation, noise_regularisation(results))
    write_tidy(snakemake.output.calibration, noise_calibration(read_h5(snakemake.input.calibration)))
