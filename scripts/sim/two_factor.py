"""results/toy/two_factor.h5 (rule toy_two_factor): GD and GD+M on the two-factor toy at one
effective learning rate, one run per beta."""
import time

from igrm.toy import simulate_two_factor
from igrm.snakejob import logged, now_iso, write_result

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    cfg = dict(snakemake.params.cfg)  # noqa: F821
    started, t0 = now_iso(), time.perf_counter()
    arrays, attrs = simulate_two_factor(**cfg)
    attrs = {**attrs, "wall_time_s": time.perf_counter() - t0}
    write_result(snakemake.output[0], arrays, attrs, config=cfg, started=started)  # noqa: F821
