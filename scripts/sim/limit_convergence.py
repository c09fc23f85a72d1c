"""results/toy/limit_convergence.h5 (rule toy_limit_convergence): GD+M's and flow (2)'s limit
sharpness on the two-factor toy at fixed beta over an eta grid in units of eps (docs/toy.md)."""
import time

from igrm.toy import limit_convergence
from igrm.snakejob import logged, now_iso, write_result

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    cfg = dict(snakemake.params.cfg)  # noqa: F821
    started, t0 = now_iso(), time.perf_counter()
    arrays, attrs = limit_convergence(**cfg)
    attrs = {**attrs, "wall_time_s": time.perf_counter() - t0}
    write_result(snakemake.output[0], arrays, attrs, config=cfg, started=started)  # noqa: F821
