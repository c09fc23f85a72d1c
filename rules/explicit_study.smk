# The explicit IGR-M baseline inside its range (docs/igrm_baseline.md, "Inside its range";
# docs/theory.md (T70)-(T75)): one job, a small BatchNorm-free MLP, full batch, float64.


rule explicit_study:
    """GD+M (slow-manifold start) and GD at eta on E + f mu* |grad E|^2, every setting and seed."""
    input:
        data=targets.explicit_study_data(config),
        code=code_inputs("sim/explicit_study.py"),
    output:
        f"{R}/explicit_study/study.h5",
    log:
        "logs/explicit_study/study.log",
    benchmark:
        f"{R}/benchmarks/explicit_study/study.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=lookup(dpath="train/explicit_study", within=config),
        threads=lookup(dpath="train/threads", within=config),
    script:
        "../scripts/sim/explicit_study.py"


rule tidy_explicit_study:
    """Tidy table of the tracking study: one row per (setting, seed, run, record)."""
    input:
        result=rules.explicit_study.output[0],
        code=code_inputs("tidy/explicit_study.py"),
    output:
        f"{TIDY}/explicit_study.csv",
    log:
        "logs/tidy/explicit_study.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy/explicit_study.py"


rule fig_explicit_in_range:
    """Figure: distance of the explicit baseline at mu = f mu* to GD+M along the run; range monitor."""
    input:
        table=rules.tidy_explicit_study.output[0],
        code=code_inputs("fig/explicit_in_range.py"),
    output:
        pdf=f"{R}/figures/explicit_in_range.pdf",
        png=report(
            f"{R}/figures/explicit_in_range.png",
            caption="../report/explicit_in_range.rst",
            category=CATEGORY["cifar"],
        ),
    log:
        "logs/figures/explicit_in_range.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        max_epsilon=lookup(dpath="train/analysis/max_epsilon", within=config),
        max_penalty_curvature=lookup(
            dpath="train/analysis/max_penalty_curvature", within=config
        ),
        ci=lookup(dpath="train/analysis/ci", within=config),
    script:
        "../scripts/fig/explicit_in_range.py"


rule claims_explicit_study:
    """Claim rows of the tracking study (paired t-intervals over seeds, in-range seeds only)."""
    input:
        table=rules.tidy_explicit_study.output[0],
        code=code_inputs("claims/explicit_study.py"),
    output:
        f"{R}/claims/explicit_in_range.csv",
    log:
        "logs/claims/explicit_in_range.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        mu_fractions=lookup(dpath="train/explicit_study/mu_fractions", within=config),
        n_test=lookup(dpath="train/explicit_study/n_test", within=config),
        ci=lookup(dpath="train/analysis/ci", within=config),
        min_seeds=lookup(dpath="train/analysis/min_seeds", within=config),
        max_epsilon=lookup(dpath="train/analysis/max_epsilon", within=config),
        max_penalty_curvature=lookup(
            dpath="train/analysis/max_penalty_curvature", within=config
        ),
        sharpness_tol=lookup(dpath="train/sharpness/tol", within=config),
    script:
        "../scripts/claims/explicit_study.py"
