# Deep-network training grids (docs/training.md, docs/cifar.md): one job and one HDF5
# file per run; resume checkpoints live under results/checkpoints/, outside the declared
# outputs, so a retried or restarted job continues where it stopped.


rule train_run:
    """One training run (SGD+M, full-batch GD+M, or the explicit IGR-M baseline)."""
    input:
        data=f"{DATA}/{{dataset}}.h5",
    output:
        f"{R}/train/{{dataset}}/{config['train']['model']}/{{method}}/beta{{beta}}_eta{{eta}}_seed{{seed}}.h5",
    log:
        "logs/train/{dataset}/{method}/beta{beta}_eta{eta}_seed{seed}.log",
    benchmark:
        f"{R}/benchmarks/train/{{dataset}}/{{method}}/beta{{beta}}_eta{{eta}}_seed{{seed}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=config["train"]["gpus_per_job"],
    params:
        task="train",
        cfg=train_cfg,
        checkpoint_dir=checkpoint_dir,
    script:
        "../scripts/train.py"


rule tidy_train:
    """Per-epoch and final metrics of one grid's runs (tidy CSV)."""
    input:
        grid_files,
    output:
        epochs=f"{R}/tables/cifar_{{grid}}_epochs.csv",
        finals=f"{R}/tables/cifar_{{grid}}_finals.csv",
    log:
        "logs/tidy/cifar_{grid}.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="tidy_train",
        cfg=analysis_cfg,
    script:
        "../scripts/tidy.py"


rule plot_acc_vs_beta:
    input:
        epochs=f"{R}/tables/cifar_beta_epochs.csv",
        finals=f"{R}/tables/cifar_beta_finals.csv",
    output:
        figure_outputs("acc_vs_beta"),
    log:
        "logs/figures/acc_vs_beta.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_acc_vs_beta",
        cfg=analysis_cfg,
    script:
        "../scripts/plot.py"


rule plot_curves:
    input:
        epochs=f"{R}/tables/cifar_beta_epochs.csv",
        finals=f"{R}/tables/cifar_beta_finals.csv",
    output:
        figure_outputs("curves"),
    log:
        "logs/figures/curves.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_curves",
        cfg=analysis_cfg,
    script:
        "../scripts/plot.py"


rule plot_spread:
    input:
        epochs=f"{R}/tables/cifar_beta_epochs.csv",
        finals=f"{R}/tables/cifar_beta_finals.csv",
    output:
        figure_outputs("spread"),
    log:
        "logs/figures/spread.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_spread",
        cfg=analysis_cfg,
    script:
        "../scripts/plot.py"


rule plot_acc_vs_lr:
    input:
        epochs=f"{R}/tables/cifar_lr_epochs.csv",
        finals=f"{R}/tables/cifar_lr_finals.csv",
    output:
        figure_outputs("acc_vs_lr"),
    log:
        "logs/figures/acc_vs_lr.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_acc_vs_lr",
        cfg=analysis_cfg,
    script:
        "../scripts/plot.py"


rule plot_explicit:
    input:
        epochs=f"{R}/tables/cifar_explicit_epochs.csv",
        finals=f"{R}/tables/cifar_explicit_finals.csv",
    output:
        figure_outputs("explicit"),
    log:
        "logs/figures/explicit.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_explicit",
        cfg=analysis_cfg,
    script:
        "../scripts/plot.py"


rule make_table_cifar_final:
    """Final test accuracy per (dataset, model, method, beta, h), mean +- std over seeds."""
    input:
        beta=f"{R}/tables/cifar_beta_finals.csv",
        lr=f"{R}/tables/cifar_lr_finals.csv",
        explicit=f"{R}/tables/cifar_explicit_finals.csv",
    output:
        table_outputs("cifar_final"),
    log:
        "logs/tables/cifar_final.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="table_cifar_final",
        cfg=analysis_cfg,
    script:
        "../scripts/table.py"


rule claims_cifar:
    input:
        beta_epochs=f"{R}/tables/cifar_beta_epochs.csv",
        beta=f"{R}/tables/cifar_beta_finals.csv",
        lr=f"{R}/tables/cifar_lr_finals.csv",
        explicit=f"{R}/tables/cifar_explicit_finals.csv",
    output:
        f"{R}/claims/cifar.csv",
    log:
        "logs/claims/cifar.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="claims_cifar",
        cfg=analysis_cfg,
    script:
        "../scripts/table.py"
