# Flatness vs beta on the trained networks (docs/cifar.md, "Flatness vs β"): the sharpness
# (lambda_max, Hutchinson trace, |grad E|^2) that every training run records at its
# sharpness points, its figure and its claim rows (igrm.claims.sharpness_runs).


rule fig_sharpness_runs:
    """Figure: sharpness of the SGD+M runs vs epoch per beta, and final sharpness vs beta."""
    input:
        finals=f"{TIDY}/cifar_beta_finals.csv",
        points=f"{TIDY}/cifar_beta_sharpness.csv",
        code=code_inputs("fig/sharpness_runs.py"),
    output:
        pdf=f"{R}/figures/sharpness_runs.pdf",
        png=report(
            f"{R}/figures/sharpness_runs.png",
            caption="../report/sharpness_runs.rst",
            category=CATEGORY["cifar"],
        ),
    log:
        "logs/figures/sharpness_runs.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        eta=targets.analysis_eta(config),
        dataset=lookup(dpath="train/analysis/dataset", within=config),
        model=lookup(dpath="train/model", within=config),
        ci=lookup(dpath="train/analysis/ci", within=config),
    script:
        "../scripts/fig/sharpness_runs.py"


rule claims_sharpness_runs:
    """Claim rows: final sharpness falls with beta; its drop ratio vs flow (2)'s prediction."""
    input:
        finals=[f"{TIDY}/cifar_{grid}_finals.csv" for grid in ("beta", "explicit")],
        points=[f"{TIDY}/cifar_{grid}_sharpness.csv" for grid in ("beta", "explicit")],
        code=code_inputs("claims/sharpness_runs.py"),
    output:
        f"{R}/claims/sharpness_runs.csv",
    log:
        "logs/claims/sharpness_runs.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        eta=targets.analysis_eta(config),
        model=lookup(dpath="train/model", within=config),
        dataset=lookup(dpath="train/analysis/dataset", within=config),
        ci=lookup(dpath="train/analysis/ci", within=config),
        min_seeds=lookup(dpath="train/analysis/min_seeds", within=config),
        max_epsilon=lookup(dpath="train/analysis/max_epsilon", within=config),
        ratio_margin=lookup(dpath="train/analysis/ratio_margin", within=config),
        flatness=lookup(dpath="train/flatness", within=config),
    script:
        "../scripts/claims/sharpness_runs.py"
