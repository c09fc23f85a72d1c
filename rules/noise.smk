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
    params:
        task="noise",
        cfg=noise_cfg,
    threads: config["noise"]["threads"]
    resources:
        gpu=config["train"]["gpus_per_job"],
    log:
        "logs/noise/{dataset}/{method}/beta{beta}_eta{eta}_seed{seed}_epoch{epoch}.log",
    benchmark:
        f"{R}/benchmarks/noise/{{dataset}}/{{method}}/beta{{beta}}_eta{{eta}}_seed{{seed}}_epoch{{epoch}}.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train.py"


rule tidy_noise:
    localrule: True
    input:
        noise_files,
    output:
        ratios=f"{R}/tables/noise_ratios.csv",
        regularisation=f"{R}/tables/noise_regularisation.csv",
    params:
        task="tidy_noise",
    log:
        "logs/tidy/noise.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy.py"


rule plot_noise_variance:
    localrule: True
    input:
        ratios=rules.tidy_noise.output.ratios,
    output:
        figure_outputs("noise_variance"),
    params:
        task="plot_noise_variance",
        cfg=noise_claims_cfg,
    log:
        "logs/figures/noise_variance.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/plot.py"


rule plot_noise_regularisation:
    localrule: True
    input:
        regularisation=rules.tidy_noise.output.regularisation,
    output:
        figure_outputs("noise_regularisation"),
    params:
        task="plot_noise_regularisation",
        cfg=noise_claims_cfg,
    log:
        "logs/figures/noise_regularisation.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/plot.py"


rule claims_noise:
    localrule: True
    input:
        ratios=rules.tidy_noise.output.ratios,
        regularisation=rules.tidy_noise.output.regularisation,
    output:
        f"{R}/claims/noise.csv",
    params:
        task="claims_noise",
        cfg=noise_claims_cfg,
    log:
        "logs/claims/noise.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/table.py"
