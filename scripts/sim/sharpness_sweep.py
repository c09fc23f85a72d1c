"""results/toy/sharpness_sweep/eta{eta}.h5 (rule toy_sharpness_sweep): limit-point sharpness
of GD+M, flow (2) and flow (1) on the two-factor toy over beta, at one eta."""
import time

from igrm.toy import sharpness_sweep
from igrm.snakejob import logged, now_iso, write_result

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    cfg = dict(snakemake.params.cfg)  # noqa: F821
    started, t0 = now_iso(), time.perf_counter()
    arrays, attrs = sharpness_sweep(**cfg)
    attrs = {**attrs, "wall_time_s": time.perf_counter() - t0}
    write_result(snakemake.output[0], arrays, attrs, config=cfg, started=started)  # noqa: F821
