"""results/tables/orders_{gdm,sgdm}_slopes.{csv,md,tex} (rule make_table_orders): fitted error
orders (slope of log error vs log h) with standard errors, one table per family."""
import pandas as pd

from igrm.pipeline.snakejob import logged, write_table

CAPTION = ("Fitted error orders: slope of log global error max_kh≤T ‖x_k − x(kh)‖ against log h, "
           "with its standard error, for each comparison of the iterates with a modified flow "
           "(docs/modified_flows.md).")
FAMILY = {"gdm": " GD+M vs flows (1), (2).", "sgdm": " SGD+M vs its piecewise flow (RMS over streams)."}

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    out = snakemake.output  # noqa: F821
    for family, text in FAMILY.items():
        slopes = pd.read_csv(snakemake.input[family])  # noqa: F821
        write_table(slopes, [out[f"{family}_csv"], out[f"{family}_md"], out[f"{family}_tex"]], caption=CAPTION + text)
