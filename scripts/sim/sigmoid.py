"""results/toy/sigmoid.h5 (rule toy_sigmoid): GD/GD+M on the sigmoid toy, and the ODE flows of E and
of the implicit regulariser ||grad E||^2."""
import time

from igrm.toy import simulate_sigmoid
from igrm.snakejob import logged, now_iso, write_result

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    cfg = dict(snakemake.params.cfg)  # noqa: F821
    started, t0 = now_iso(), time.perf_counter()
    arrays, attrs = simulate_sigmoid(**cfg)
    attrs = {**attrs, "wall_time_s": time.perf_counter() - t0}
    write_result(snakemake.output[0], arrays, attrs, config=cfg, started=started)  # noqa: F821
