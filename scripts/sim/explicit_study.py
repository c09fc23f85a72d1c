"""results/explicit_study/study.h5 (rule explicit_study): GD+M (slow-manifold start) and the
explicit IGR-M baseline at mu = f mu* on a small tanh MLP, full batch, every setting and seed."""

import time

from igrm.explicit_study import explicit_study
from igrm.pipeline.snakejob import logged, now_iso, write_result
from igrm.pipeline.validate import check_prepared, open_checked

with logged(snakemake):
    cfg = dict(snakemake.params.cfg)
    started, t0 = now_iso(), time.perf_counter()
    with open_checked(snakemake.input.data) as f:  # read lazily: checked here, not by read_h5
        check_prepared(snakemake.input.data, f, dict(f.attrs))
        arrays, attrs = explicit_study(
            train_images=f["train/images"],
            train_labels=f["train/labels"][()],
            test_images=f["test/images"],
            test_labels=f["test/labels"][()],
            threads=snakemake.params.threads,
            **cfg,
        )
    attrs["dataset_file"] = str(snakemake.input.data)
    attrs["wall_time_s"] = time.perf_counter() - t0
    write_result(
        snakemake.output[0], arrays, attrs, config={**cfg, "threads": snakemake.params.threads}, started=started
    )
