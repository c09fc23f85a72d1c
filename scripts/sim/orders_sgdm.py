"""results/orders/sgdm/beta{beta}.h5 (rule order_sgdm): RMS global error of SGD+M against its
piecewise modified flow, with and without the h/4 terms, at one beta."""
import time

from igrm.orders import sgdm_error_orders
from igrm.snakejob import logged, now_iso, write_result

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    cfg = dict(snakemake.params.cfg)  # noqa: F821
    started, t0 = now_iso(), time.perf_counter()
    arrays, attrs = sgdm_error_orders(**cfg)
    attrs = {**attrs, "wall_time_s": time.perf_counter() - t0}
    write_result(snakemake.output[0], arrays, attrs, config=cfg, started=started, seed=cfg["seed"])  # noqa: F821
