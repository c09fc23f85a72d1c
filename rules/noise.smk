# Monte-Carlo gradient-noise estimates (docs/noise.md): Cov of the historical gradient vs
# Cov of one mini-batch gradient (Obs-1) and E[IGRM] vs E[IGR] (Obs-2), at saved parameter
# points (snapshots) of selected training runs. One job and one HDF5 file per (run, point).


rule noise_point:
    """Streaming estimates of every (beta, k) at one parameter point of one run."""
    input:
        run=f"{R}/train/{{dataset}}/{config['train']['model']}/{{method}}/beta{{beta}}_eta{{eta}}_seed{{seed}}.h5",
        data=f"{DATA}/{{dataset}}.h5",
        code=code_inputs("noise_point.py"),
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
        cfg=lambda w: targets.noise_point_params(config, w),
    script:
        "../scripts/noise_point.py"


rule noise_calibration:
    """Coverage of the noise intervals, simulated at the noise section's own settings (synthetic population, known answers)."""
    input:
        code=code_inputs("sim/noise_calibration.py"),
    output:
        f"{R}/noise/calibration.h5",
    log:
        "logs/noise/calibration.log",
    benchmark:
        f"{R}/benchmarks/noise/calibration.tsv"
    conda:
        "../envs/train.yaml"
    params:
        cfg=targets.noise_coverage_params(config),
    script:
        "../scripts/sim/noise_calibration.py"


rule tidy_noise:
    """Tidy tables: one row per (point, sampler, beta, k) of the variance ratio and of the regulariser ratio."""
    input:
        points=targets.noise_files(config),
        calibration=rules.noise_calibration.output[0],
        code=code_inputs("tidy/noise.py"),
    output:
        ratios=f"{TIDY}/noise_ratios.csv",
        regularisation=f"{TIDY}/noise_regularisation.csv",
        calibration=f"{TIDY}/noise_calibration.csv",
    log:
        "logs/tidy/noise.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy/noise.py"


rule fig_noise_variance:
    """Figure: Monte-Carlo tr Cov((1-beta) grad G_k) / tr Cov(g) vs beta (Obs-1)."""
    input:
        ratios=rules.tidy_noise.output.ratios,
        code=code_inputs("fig/noise_variance.py"),
    output:
        pdf=f"{R}/figures/noise_variance.pdf",
        png=report(
            f"{R}/figures/noise_variance.png",
            caption="../report/noise_variance.rst",
            category=CATEGORY["noise"],
        ),
    log:
        "logs/figures/noise_variance.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/fig/noise_variance.py"


rule fig_noise_regularisation:
    """Figure: E[IGRM_s] / E[IGR_s] vs beta, measured and exact theory, with the slides' 1/(1-beta) (Obs-2)."""
    input:
        regularisation=rules.tidy_noise.output.regularisation,
        code=code_inputs("fig/noise_regularisation.py"),
    output:
        pdf=f"{R}/figures/noise_regularisation.pdf",
        png=report(
            f"{R}/figures/noise_regularisation.png",
            caption="../report/noise_regularisation.rst",
            category=CATEGORY["noise"],
        ),
    log:
        "logs/figures/noise_regularisation.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/fig/noise_regularisation.py"


rule fig_noise_bn:
    """Figure: measured/theory - 1 of the variance ratio under BatchNorm, exact vs corrected theory (docs/noise.md section 8)."""
    input:
        ratios=rules.tidy_noise.output.ratios,
        code=code_inputs("fig/noise_bn.py"),
    output:
        pdf=f"{R}/figures/noise_bn.pdf",
        png=report(
            f"{R}/figures/noise_bn.png",
            caption="../report/noise_bn.rst",
            category=CATEGORY["noise"],
        ),
    log:
        "logs/figures/noise_bn.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        margin=lookup(dpath="noise/theory_margin", within=config),
    script:
        "../scripts/fig/noise_bn.py"


rule claims_noise:
    """Claims rows: Obs-1 and Obs-2 against the exact theory and the slides' factors."""
    input:
        ratios=rules.tidy_noise.output.ratios,
        regularisation=rules.tidy_noise.output.regularisation,
        calibration=rules.tidy_noise.output.calibration,
        code=code_inputs("claims/noise.py"),
    output:
        f"{R}/claims/noise.csv",
    log:
        "logs/claims/noise.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        theory_margin=lookup(dpath="noise/theory_margin", within=config),
        slides_margin=lookup(dpath="noise/slides_margin", within=config),
        min_groups=lookup(dpath="noise/min_groups", within=config),
        n_blocks=lookup(dpath="noise/n_blocks", within=config),
        n_groups=lookup(dpath="noise/n_groups", within=config),
        min_coverage=lookup(dpath="noise/calibration/min_coverage", within=config),
    script:
        "../scripts/claims/noise.py"
