# The rival explanation of momentum's flatness: the edge of stability (docs/mechanism.md
# (S1)-(S8); Cohen et al. 2021): one job, full-batch GD+M on a small tanh MLP, float64.


rule eos:
    """Full-batch GD+M from rest, every setting x beta x seed; lambda_max, tr H, |grad E|^2, loss."""
    input:
        data=targets.eos_data(config),
        code=code_inputs("sim/eos.py"),
    output:
        f"{R}/eos/study.h5",
    log:
        "logs/eos/study.log",
    benchmark:
        f"{R}/benchmarks/eos/study.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=lookup(dpath="train/eos", within=config),
        threads=lookup(dpath="train/threads", within=config),
    script:
        "../scripts/sim/eos.py"


rule tidy_eos:
    """Tidy table of the EoS study: one row per (setting, beta, seed, record)."""
    input:
        result=rules.eos.output[0],
        code=code_inputs("tidy/eos.py"),
    output:
        f"{TIDY}/eos.csv",
    log:
        "logs/tidy/eos.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy/eos.py"


rule fig_eos:
    """Figure: lambda_max over training per beta with the stability limits 2(1+beta)/h."""
    input:
        table=rules.tidy_eos.output[0],
        code=code_inputs("fig/eos.py"),
    output:
        pdf=f"{R}/figures/eos.pdf",
        png=report(
            f"{R}/figures/eos.png",
            caption="../report/eos.rst",
            category=CATEGORY["cifar"],
        ),
    log:
        "logs/figures/eos.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        edge_margin=lookup(dpath="train/flatness/edge_margin", within=config),
    script:
        "../scripts/fig/eos.py"


rule claims_eos:
    """Claim rows: at the edge (Cohen et al.), flow (2)'s range, sharpness vs beta at matched loss."""
    input:
        table=rules.tidy_eos.output[0],
        code=code_inputs("claims/eos.py"),
    output:
        f"{R}/claims/eos.csv",
    log:
        "logs/claims/eos.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        flatness=lookup(dpath="train/flatness", within=config),
        ci=lookup(dpath="train/analysis/ci", within=config),
        min_seeds=lookup(dpath="train/analysis/min_seeds", within=config),
        max_epsilon=lookup(dpath="train/analysis/max_epsilon", within=config),
    script:
        "../scripts/claims/eos.py"
