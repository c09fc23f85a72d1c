"""results/claims/cifar.csv (rule claims_cifar): the claim rows of the CIFAR stage
(igrm.claims.cifar.cifar_claims) over every training grid's runs (each once)."""

import pandas as pd

from igrm.claims.cifar import cifar_claims
from igrm.pipeline.snakejob import logged, write_tidy
from igrm.tidy.runs import concat_finals

with logged(snakemake):
    finals = concat_finals(pd.read_csv(p) for p in snakemake.input.finals)
    rows = cifar_claims(
        epochs=pd.read_csv(snakemake.input.beta_epochs),
        finals=finals,
        eta=snakemake.params.eta,
        model=snakemake.params.model,
        **snakemake.params.analysis,
    )
    write_tidy(snakemake.output[0], rows)
