"""results/noise/<dataset>/<model>/<method>/beta<β>_eta<η>_seed<s>/epoch<e>.h5 (rule
noise_point): Monte-Carlo gradient-noise estimates (igrm.noise.estimate_noise) at the
parameters that the training run saved at epoch <e>."""

from igrm.pipeline.gpuslots import acquire_gpu
from igrm.pipeline.snakejob import logged, now_iso, write_result

with logged(snakemake):
    # the GPU slot is taken before torch initialises CUDA (it sets CUDA_VISIBLE_DEVICES)
    with acquire_gpu(
        count=int(snakemake.resources.get("gpu", 0) or 0), runs_per_gpu=int(snakemake.config["train"]["runs_per_gpu"])
    ):
        import torch

        from igrm.data import load_prepared
        from igrm.noise import estimate_noise, model_state_from_run
        from igrm.pipeline.io import read_h5

        torch.set_num_threads(max(1, int(snakemake.threads)))
        started = now_iso()
        cfg = dict(snakemake.params.cfg)
        epoch = int(snakemake.wildcards.epoch)
        run_arrays, run_attrs = read_h5(snakemake.input.run)
        state = model_state_from_run(run_arrays, run_attrs, prefix=f"snapshots/epoch{epoch:04d}/")
        arrays, attrs = estimate_noise(state, load_prepared(snakemake.input.data), **cfg)
        attrs = {**attrs, "dataset": snakemake.wildcards.dataset, "run": str(snakemake.input.run), "epoch": epoch}
        write_result(
            snakemake.output[0],
            arrays,
            attrs,
            config=cfg,
            started=started,
            seed=cfg["seed"],
            device=str(attrs["device"]),
        )
