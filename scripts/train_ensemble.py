"""The result files of several SGD runs trained together in one process (rules
train_ensemble_<name>, train.ensemble > 1; igrm.ensemble.train_runs): each member's file is
the one rule train_run writes when it trains the run alone, with attrs ``ensemble_size``.
Each member resumes from its own checkpoints (params.checkpoint_dirs) and logs its
progress beside its own run log (params.logs)."""

from pathlib import Path

from igrm.pipeline.gpuslots import acquire_gpu
from igrm.pipeline.snakejob import RunProgress, logged, now_iso, write_run

with logged(snakemake) as log:
    # one GPU per job, as rule train_run takes it (the members share it)
    with acquire_gpu(
        count=int(snakemake.resources.get("gpu", 0) or 0), runs_per_gpu=int(snakemake.config["train"]["runs_per_gpu"])
    ):
        import torch

        from igrm.data import load_prepared
        from igrm.ensemble import train_runs

        torch.set_num_threads(max(1, int(snakemake.threads)))
        cfgs = [dict(c) for c in snakemake.params.cfgs]
        dataset = snakemake.params.dataset
        started = now_iso()
        results = train_runs(
            cfgs,
            load_prepared(snakemake.input.data),
            [Path(d) for d in snakemake.params.checkpoint_dirs],
            [RunProgress(snakemake, log, run_log=r) for r in snakemake.params.logs],
            ensemble=int(snakemake.params.ensemble),
        )
        for path, cfg, (arrays, attrs) in zip(snakemake.output, cfgs, results):
            write_run(path, arrays, attrs, cfg, dataset, started)
