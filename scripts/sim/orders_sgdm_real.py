"""results/orders/sgdm_real/{dataset}_beta{beta}.h5 (rule order_sgdm_real): RMS global error of
SGD+M on a logistic regression over real PCA features against its piecewise modified flow,
with and without the h/4 terms, at one beta (igrm/sgdm_real.py)."""

import time

from igrm.data import load_prepared
from igrm.pipeline.snakejob import logged, now_iso, write_result
from igrm.sgdm_real import sgdm_real_error_orders

with logged(snakemake):
    cfg = dict(snakemake.params.cfg)
    started, t0 = now_iso(), time.perf_counter()
    data = load_prepared(snakemake.input.data)
    arrays, attrs = sgdm_real_error_orders(images=data["train/images"], labels=data["train/labels"], **cfg)
    attrs = {**attrs, "wall_time_s": time.perf_counter() - t0, "data": str(snakemake.input.data)}
    write_result(snakemake.output[0], arrays, attrs, config=cfg, started=started, seed=cfg["seed"])
