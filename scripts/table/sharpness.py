"""results/tables/sharpness.{csv,md,tex} (rule make_table_sharpness): where each run of the
two-factor figure converges, and how sharp it is there."""
import pandas as pd

from igrm.pipeline.snakejob import logged, write_table

CAPTION = ("Two-factor toy E = ½(y − w1·w2·x)² at one effective learning rate: where each run "
           "converges and the sharpness λ_max(∇²E) there. On the hyperbola of minima "
           "λ_max = x²(w1² + w2²); smaller is flatter.")

with logged(snakemake):  # noqa: F821 (injected by Snakemake)
    finals = pd.read_csv(snakemake.input.finals)  # noqa: F821
    write_table(finals, [snakemake.output.csv, snakemake.output.md, snakemake.output.tex],  # noqa: F821
                caption=CAPTION)
