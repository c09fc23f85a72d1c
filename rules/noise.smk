# Monte-Carlo gradient-noise estimates (docs/noise.md): Cov of the historical gradient vs
# Cov of one mini-batch gradient (Obs-1) and E[IGRM] vs E[IGR] (Obs-2), at saved parameter
# points (snapshots) of selected training runs. One job and one HDF5 file per (run, point).


rule noise_point:
    """Streaming estimates of every (beta, k) at one parameter point of one run."""
    input:
        run=f"{R}/train/{{dataset}}/{config['train']['model']}/{{method}}/beta{{beta}}_eta{{eta}}_seed{{seed}}.h5",
        data=f"{DATA}/{{dataset}}.h5",
    output:
        f"{R}/noise/{{dataset}}/{config['train']['model']}/{{method}}/beta{{beta}}_eta{{eta}}_seed{{seed}}/epoch{{epoch}}.h5",
    log:
        "logs/noise/{dataset}/{method}/beta{beta}_eta{eta}_seed{seed}_epoch{epoch}.log",
    benchmark:
        f"{R}/benchmarks/noise/{{dataset}}/{{method}}/beta{{beta}}_eta{{eta}}_seed{{seed}}_epoch{{epoch}}.tsv"
    conda:
        "../envs/train.yaml"
    threads: config["noise"]["threads"]
    resources:
        gpu=config["train"]["gpus_per_job"],
    params:
        task="noise",
        cfg=noise_cfg,
    script:
        "../scripts/train.py"


rule tidy_noise:
    input:
        noise_files,
    output:
        ratios=f"{R}/tables/noise_ratios.csv",
        regularisation=f"{R}/tables/noise_regularisation.csv",
    log:
        "logs/tidy/noise.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="tidy_noise",
    script:
        "../scripts/tidy.py"


rule plot_noise_variance:
    input:
        ratios=rules.tidy_noise.output.ratios,
    output:
        figure_outputs("noise_variance"),
    log:
        "logs/figures/noise_variance.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_noise_variance",
        cfg=noise_claims_cfg,
    script:
        "../scripts/plot.py"


rule plot_noise_regularisation:
    input:
        regularisation=rules.tidy_noise.output.regularisation,
    output:
        figure_outputs("noise_regularisation"),
    log:
        "logs/figures/noise_regularisation.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_noise_regularisation",
        cfg=noise_claims_cfg,
    script:
        "../scripts/plot.py"


rule claims_noise:
    input:
        ratios=rules.tidy_noise.output.ratios,
        regularisation=rules.tidy_noise.output.regularisation,
    output:
        f"{R}/claims/noise.csv",
    log:
        "logs/claims/noise.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="claims_noise",
        cfg=noise_claims_cfg,
    script:
        "../scripts/table.py"
