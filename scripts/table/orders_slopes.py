"""results/tables/orders_{gdm,sgdm}_slopes.{csv,md,tex} (rule table_orders): fitted error
orders (slope of log error vs log h) with standard errors, one table per family."""

import pandas as pd

from igrm.pipeline.snakejob import logged, report_caption, write_table

with logged(snakemake):
    out = snakemake.output
    for family in ("gdm", "sgdm"):
        slopes = pd.read_csv(snakemake.input[family])
        write_table(
            slopes,
            [out[f"{family}_csv"], out[f"{family}_md"], out[f"{family}_tex"]],
            caption=report_caption(snakemake, f"orders_{family}_slopes"),
        )
