"""results/eos/study.h5 (rule eos): full-batch GD+M on a small tanh MLP at every setting, beta
and seed, with lambda_max, tr H, |grad E|^2 and the loss along each run (docs/mechanism.md)."""

import time

import h5py

from igrm.eos import eos_study
from igrm.pipeline.snakejob import logged, now_iso, write_result

with logged(snakemake):
    cfg = dict(snakemake.params.cfg)
    started, t0, c0 = now_iso(), time.perf_counter(), time.process_time()
    with h5py.File(snakemake.input.data, "r") as f:
        arrays, attrs = eos_study(
            train_images=f["train/images"], train_labels=f["train/labels"][()], threads=snakemake.params.threads, **cfg
        )
    attrs["dataset_file"] = str(snakemake.input.data)
    attrs["wall_time_s"] = time.perf_counter() - t0
    attrs["cpu_time_s"] = time.process_time() - c0
    write_result(
        snakemake.output[0], arrays, attrs, config={**cfg, "threads": snakemake.params.threads}, started=started
    )
