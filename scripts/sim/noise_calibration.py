"""results/noise/calibration.h5 (rule noise_calibration): coverage of the gradient-noise
intervals simulated at the noise section's own settings on a synthetic population with known
answers (igrm.noise_calibration.simulate_coverage, docs/noise.md §4.4)."""

import torch

from igrm.noise_calibration import simulate_coverage
from igrm.pipeline.snakejob import logged, simulate

with logged(snakemake):
    torch.set_num_threads(1)
    simulate(snakemake, simulate_coverage, seed=snakemake.params.cfg["calibration"]["seed"])
