"""results/tables/claims.{csv,md,tex} (rule make_table_claims): every stage's claim rows
(results/claims/<part>.csv) in one table."""
import pandas as pd

from igrm.claims import combine
from igrm.snakejob import logged, write_table

CAPTION = (
    "Every claim of the paper checked by the pipeline: the theory value, the measured value "
    "with its uncertainty, the tolerance (fixed in the config before measuring) and the verdict."
)

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    table = combine(pd.read_csv(p) for p in snakemake.input.parts)  # noqa: F821
    write_table(table, [snakemake.output.csv, snakemake.output.md, snakemake.output.tex], caption=CAPTION)  # noqa: F821
