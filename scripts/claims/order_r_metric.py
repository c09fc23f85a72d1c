"""results/claims/order_r_metric.csv (rule claims_order_r_metric): is the order-R flow a gradient
flow in a Hessian-power metric, and which f_n are Euclidean gradients (docs/modified_flows.md
§8.4; exact, igrm.claims.order_r_metric)."""

from igrm.claims.order_r_metric import metric_claims
from igrm.pipeline.snakejob import logged, write_tidy

with logged(snakemake):
    write_tidy(snakemake.output[0], metric_claims(orders=snakemake.params.orders))
