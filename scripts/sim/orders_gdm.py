"""results/orders/gdm/{problem}_beta{beta}.h5 (rule order_gdm): global error of GD+M against flows
(1) and (2) over a grid of h, four starts, one problem and one beta."""
import time

from igrm.orders import gdm_error_orders
from igrm.snakejob import logged, now_iso, write_result

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    cfg = dict(snakemake.params.cfg)  # noqa: F821
    started, t0 = now_iso(), time.perf_counter()
    arrays, attrs = gdm_error_orders(**cfg)
    attrs = {**attrs, "wall_time_s": time.perf_counter() - t0}
    write_result(snakemake.output[0], arrays, attrs, config=cfg, started=started)  # noqa: F821
