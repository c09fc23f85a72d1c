# Deep-network training grids (docs/training.md, docs/cifar.md): one job and one HDF5
# file per run; resume checkpoints live under results/checkpoints/, outside the declared
# outputs, so a retried or restarted job continues where it stopped. Then per grid the
# tidy tables (results/tidy/), the figures, the final-accuracy table and the claims.


rule train_run:
    """One training run (SGD+M, full-batch GD+M, or the explicit IGR-M baseline)."""
    input:
        data=f"{DATA}/{{dataset}}.h5",
        code=code_inputs("train_run.py"),
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
        cfg=lambda w: targets.train_job_cfg(config, *targets.job_run(w)),
        checkpoint_dir=lambda w: targets.checkpoint_dir(config, *targets.job_run(w)),
    script:
        "../scripts/train_run.py"


# train.ensemble: K > 1: the SGD runs of the beta and lr grids, K at a time, one job (one
# process, one vectorised step; igrm/ensemble.py) per group of igrm.pipeline.targets.
# ensemble_groups. Each member writes the file, checkpoints and progress CSV that rule
# train_run gives it alone; Snakemake prefers these rules (no wildcards) over train_run for
# those files, and train_run trains the rest (full batch, runs outside the grids).
for group in targets.ensemble_groups(config):

    rule:
        name:
            f"train_ensemble_{group['name']}"
        input:
            data=f"{DATA}/{group['dataset']}.h5",
            code=code_inputs("train_ensemble.py"),
        output:
            group["outputs"],
        log:
            f"logs/train/ensemble/{group['name']}.log",
        benchmark:
            f"{R}/benchmarks/train/ensemble/{group['name']}.tsv"
        conda:
            "../envs/train.yaml"
        threads: config["train"]["threads"]
        resources:
            gpu=config["train"]["gpus_per_job"],
        params:
            dataset=group["dataset"],
            cfgs=group["cfgs"],
            checkpoint_dirs=group["checkpoint_dirs"],
            logs=group["logs"],
            ensemble=lookup(dpath="train/ensemble", within=config),
        script:
            "../scripts/train_ensemble.py"


rule tidy_train:
    """Per-epoch and final metrics of one grid's runs (tidy CSV)."""
    input:
        runs=lambda w: targets.grid_files(config, w.grid),
        code=code_inputs("tidy/runs.py"),
    output:
        epochs=f"{TIDY}/cifar_{{grid}}_epochs.csv",
        finals=f"{TIDY}/cifar_{{grid}}_finals.csv",
        sharpness=f"{TIDY}/cifar_{{grid}}_sharpness.csv",
    log:
        "logs/tidy/cifar_{grid}.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        spread_window=lookup(dpath="train/analysis/spread_window", within=config),
    script:
        "../scripts/tidy/runs.py"


rule fig_acc_vs_beta:
    """Figure: final test accuracy vs beta at fixed effective learning rate (observation 3)."""
    input:
        epochs=f"{TIDY}/cifar_beta_epochs.csv",
        finals=f"{TIDY}/cifar_beta_finals.csv",
        code=code_inputs("fig/acc_vs_beta.py"),
    output:
        pdf=f"{R}/figures/acc_vs_beta.pdf",
        png=report(
            f"{R}/figures/acc_vs_beta.png",
            caption="../report/acc_vs_beta.rst",
            category=CATEGORY["cifar"],
        ),
    log:
        "logs/figures/acc_vs_beta.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        spread_window=lookup(dpath="train/analysis/spread_window", within=config),
        eta=targets.analysis_eta(config),
        dataset=lookup(dpath="train/analysis/dataset", within=config),
        model=lookup(dpath="train/model", within=config),
        ci=lookup(dpath="train/analysis/ci", within=config),
    script:
        "../scripts/fig/acc_vs_beta.py"


rule fig_acc_vs_lr:
    """Figure: plain SGD, final test accuracy vs the learning rate h (observation 1)."""
    input:
        epochs=f"{TIDY}/cifar_lr_epochs.csv",
        finals=f"{TIDY}/cifar_lr_finals.csv",
        code=code_inputs("fig/acc_vs_lr.py"),
    output:
        pdf=f"{R}/figures/acc_vs_lr.pdf",
        png=report(
            f"{R}/figures/acc_vs_lr.png",
            caption="../report/acc_vs_lr.rst",
            category=CATEGORY["cifar"],
        ),
    log:
        "logs/figures/acc_vs_lr.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        spread_window=lookup(dpath="train/analysis/spread_window", within=config),
        dataset=lookup(dpath="train/analysis/dataset", within=config),
        model=lookup(dpath="train/model", within=config),
        ci=lookup(dpath="train/analysis/ci", within=config),
    script:
        "../scripts/fig/acc_vs_lr.py"


rule fig_curves:
    """Figure: test accuracy per epoch, one line per beta (SGD+M at a fixed eta)."""
    input:
        epochs=f"{TIDY}/cifar_beta_epochs.csv",
        finals=f"{TIDY}/cifar_beta_finals.csv",
        code=code_inputs("fig/curves.py"),
    output:
        pdf=f"{R}/figures/curves.pdf",
        png=report(
            f"{R}/figures/curves.png",
            caption="../report/curves.rst",
            category=CATEGORY["cifar"],
        ),
    log:
        "logs/figures/curves.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        spread_window=lookup(dpath="train/analysis/spread_window", within=config),
        eta=targets.analysis_eta(config),
        dataset=lookup(dpath="train/analysis/dataset", within=config),
        model=lookup(dpath="train/model", within=config),
        ci=lookup(dpath="train/analysis/ci", within=config),
    script:
        "../scripts/fig/curves.py"


rule fig_spread:
    """Figure: spread of test accuracy over the last epochs vs beta (observation 2)."""
    input:
        epochs=f"{TIDY}/cifar_beta_epochs.csv",
        finals=f"{TIDY}/cifar_beta_finals.csv",
        code=code_inputs("fig/spread.py"),
    output:
        pdf=f"{R}/figures/spread.pdf",
        png=report(
            f"{R}/figures/spread.png",
            caption="../report/spread.rst",
            category=CATEGORY["cifar"],
        ),
    log:
        "logs/figures/spread.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        spread_window=lookup(dpath="train/analysis/spread_window", within=config),
        eta=targets.analysis_eta(config),
        dataset=lookup(dpath="train/analysis/dataset", within=config),
        model=lookup(dpath="train/model", within=config),
        ci=lookup(dpath="train/analysis/ci", within=config),
        plateau_max_rise=lookup(dpath="train/analysis/plateau_max_rise", within=config),
    script:
        "../scripts/fig/spread.py"


rule fig_explicit:
    """Figure: explicit IGR-M baseline vs GD+M and plain GD at the same eta."""
    input:
        epochs=f"{TIDY}/cifar_explicit_epochs.csv",
        finals=f"{TIDY}/cifar_explicit_finals.csv",
        code=code_inputs("fig/explicit.py"),
    output:
        pdf=f"{R}/figures/explicit.pdf",
        png=report(
            f"{R}/figures/explicit.png",
            caption="../report/explicit.rst",
            category=CATEGORY["cifar"],
        ),
    log:
        "logs/figures/explicit.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        spread_window=lookup(dpath="train/analysis/spread_window", within=config),
        eta=targets.analysis_eta(config),
        dataset=lookup(dpath="train/analysis/dataset", within=config),
        model=lookup(dpath="train/model", within=config),
        explicit_against=lookup(dpath="train/analysis/explicit_against", within=config),
        ci=lookup(dpath="train/analysis/ci", within=config),
    script:
        "../scripts/fig/explicit.py"


rule table_cifar_final:
    """Final test accuracy per (dataset, model, method, beta, h), mean +- std over seeds."""
    input:
        finals=[
            f"{TIDY}/cifar_{grid}_finals.csv" for grid in ("beta", "lr", "explicit")
        ],
        code=code_inputs("table/cifar_final.py"),
    output:
        csv=report(
            f"{R}/tables/cifar_final.csv",
            caption="../report/cifar_final.rst",
            category=CATEGORY["cifar"],
        ),
        md=f"{R}/tables/cifar_final.md",
        tex=f"{R}/tables/cifar_final.tex",
    log:
        "logs/tables/cifar_final.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        dataset=lookup(dpath="train/analysis/dataset", within=config),
        model=lookup(dpath="train/model", within=config),
    script:
        "../scripts/table/cifar_final.py"


rule claims_cifar:
    """Claim rows of the CIFAR stage: observations 1-3 and the explicit baseline (t-intervals)."""
    input:
        beta_epochs=f"{TIDY}/cifar_beta_epochs.csv",
        finals=[
            f"{TIDY}/cifar_{grid}_finals.csv" for grid in ("beta", "lr", "explicit")
        ],
        code=code_inputs("claims/cifar.py"),
    output:
        f"{R}/claims/cifar.csv",
    log:
        "logs/claims/cifar.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        analysis=lookup(dpath="train/analysis", within=config),
        eta=targets.analysis_eta(config),
        model=lookup(dpath="train/model", within=config),
    script:
        "../scripts/claims/cifar.py"
