"""results/train/{dataset}/<model>/{method}/beta{beta}_eta{eta}_seed{seed}.h5 (rule
train_run): one training run (igrm.train.train) on the prepared dataset. Resume
checkpoints live in params.checkpoint_dir, outside the declared outputs (Snakemake
deletes declared outputs before a retry)."""

from pathlib import Path

from igrm.pipeline.gpuslots import acquire_gpu
from igrm.pipeline.snakejob import RunProgress, logged, now_iso, write_run

with logged(snakemake) as log:
    # one machine, several GPUs: each concurrent GPU job takes its own device (a flock
    # slot) before CUDA initialises; under SLURM, CUDA_VISIBLE_DEVICES is already set
    with acquire_gpu(
        count=int(snakemake.resources.get("gpu", 0) or 0), runs_per_gpu=int(snakemake.config["train"]["runs_per_gpu"])
    ):
        import torch

        from igrm.data import load_prepared
        from igrm.train import train

        torch.set_num_threads(max(1, int(snakemake.threads)))
        cfg = dict(snakemake.params.cfg)
        dataset = snakemake.wildcards.dataset
        started = now_iso()
        arrays, attrs = train(
            cfg, load_prepared(snakemake.input.data), Path(snakemake.params.checkpoint_dir), RunProgress(snakemake, log)
        )  # the per-epoch CSV beside the log
        write_run(snakemake.output[0], arrays, attrs, cfg, dataset, started)
