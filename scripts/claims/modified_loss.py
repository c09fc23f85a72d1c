"""results/claims/modified_loss.csv (rule claims_modified_loss): the O(h^2) modified loss in
its metric, checked on the toy problems (igrm.claims.modified_loss)."""

from igrm.claims.modified_loss import modified_loss_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):
    p = snakemake.params
    rows = modified_loss_claims(
        **dict(p.cfg),
        two_factor=dict(p.two_factor),
        lstsq=dict(p.lstsq),
        slope_tol=p.slope_tol,
        ci=p.ci,
        max_epsilon=p.max_epsilon,
    )
    write_tidy(snakemake.output[0], rows)
