# Deep-network training grids (docs/training.md, docs/cifar.md): one job and one HDF5
# file per run; resume checkpoints live under results/checkpoints/, outside the declared
# outputs, so a retried or restarted job continues where it stopped.


rule train_run:
    """One training run (SGD+M, full-batch GD+M, or the explicit IGR-M baseline)."""
    input:
        data=f"{DATA}/{{dataset}}.h5",
    output:
        f"{R}/train/{{dataset}}/{config['train']['model']}/{{method}}/beta{{beta}}_eta{{eta}}_seed{{seed}}.h5",
    params:
        task="train",
        cfg=train_cfg,
        checkpoint_dir=checkpoint_dir,
    threads: config["train"]["threads"]
    resources:
        gpu=config["train"]["gpus_per_job"],
    log:
        "logs/train/{dataset}/{method}/beta{beta}_eta{eta}_seed{seed}.log",
    benchmark:
        f"{R}/benchmarks/train/{{dataset}}/{{method}}/beta{{beta}}_eta{{eta}}_seed{{seed}}.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train.py"


rule tidy_train:
    """Per-epoch and final metrics of one grid's runs (tidy CSV)."""
    localrule: True
    input:
        grid_files,
    output:
        epochs=f"{R}/tables/cifar_{{grid}}_epochs.csv",
        finals=f"{R}/tables/cifar_{{grid}}_finals.csv",
    params:
        task="tidy_train",
        cfg=analysis_cfg,
    log:
        "logs/tidy/cifar_{grid}.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy.py"


rule plot_acc_vs_beta:
    localrule: True
    input:
        epochs=f"{R}/tables/cifar_beta_epochs.csv",
        finals=f"{R}/tables/cifar_beta_finals.csv",
    output:
        figure_outputs("acc_vs_beta"),
    params:
        task="plot_acc_vs_beta",
        cfg=analysis_cfg,
    log:
        "logs/figures/acc_vs_beta.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/plot.py"


rule plot_curves:
    localrule: True
    input:
        epochs=f"{R}/tables/cifar_beta_epochs.csv",
        finals=f"{R}/tables/cifar_beta_finals.csv",
    output:
        figure_outputs("curves"),
    params:
        task="plot_curves",
        cfg=analysis_cfg,
    log:
        "logs/figures/curves.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/plot.py"


rule plot_spread:
    localrule: True
    input:
        epochs=f"{R}/tables/cifar_beta_epochs.csv",
        finals=f"{R}/tables/cifar_beta_finals.csv",
    output:
        figure_outputs("spread"),
    params:
        task="plot_spread",
        cfg=analysis_cfg,
    log:
        "logs/figures/spread.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/plot.py"


rule plot_acc_vs_lr:
    localrule: True
    input:
        epochs=f"{R}/tables/cifar_lr_epochs.csv",
        finals=f"{R}/tables/cifar_lr_finals.csv",
    output:
        figure_outputs("acc_vs_lr"),
    params:
        task="plot_acc_vs_lr",
        cfg=analysis_cfg,
    log:
        "logs/figures/acc_vs_lr.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/plot.py"


rule plot_explicit:
    localrule: True
    input:
        epochs=f"{R}/tables/cifar_explicit_epochs.csv",
        finals=f"{R}/tables/cifar_explicit_finals.csv",
    output:
        figure_outputs("explicit"),
    params:
        task="plot_explicit",
        cfg=analysis_cfg,
    log:
        "logs/figures/explicit.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/plot.py"


rule make_table_cifar_final:
    """Final test accuracy per (dataset, model, method, beta, h), mean +- std over seeds."""
    localrule: True
    input:
        beta=f"{R}/tables/cifar_beta_finals.csv",
        lr=f"{R}/tables/cifar_lr_finals.csv",
        explicit=f"{R}/tables/cifar_explicit_finals.csv",
    output:
        table_outputs("cifar_final"),
    params:
        task="table_cifar_final",
        cfg=analysis_cfg,
    log:
        "logs/tables/cifar_final.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/table.py"


rule claims_cifar:
    localrule: True
    input:
        beta_epochs=f"{R}/tables/cifar_beta_epochs.csv",
        beta=f"{R}/tables/cifar_beta_finals.csv",
        lr=f"{R}/tables/cifar_lr_finals.csv",
        explicit=f"{R}/tables/cifar_explicit_finals.csv",
    output:
        f"{R}/claims/cifar.csv",
    params:
        task="claims_cifar",
        cfg=analysis_cfg,
    log:
        "logs/claims/cifar.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/table.py"
