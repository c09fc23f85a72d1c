# The claims table and one named target per figure and table (`snakemake --lt`).


rule make_table_claims:
    """Every claim: theory vs measured, uncertainty, tolerance, verdict."""
    localrule: True
    input:
        claim_files,
    output:
        table_outputs("claims"),
    params:
        task="table_claims",
    log:
        "logs/tables/claims.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/table.py"


rule make_report:
    """The HTML report (zip): every figure and table of the config with its caption, by
    category. Same as `snakemake --report results/report.zip` with this run's config."""
    localrule: True
    input:
        final_outputs(),
    output:
        f"{R}/report.zip",
    params:
        task="report",
        cfg=config,
        snakefile=workflow.main_snakefile,
    log:
        "logs/report.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/report.py"


rule fig_two_factor:
    """Figure: GD vs GD+M on the two-factor toy, over the hyperbola of minima (paper's figure)."""
    localrule: True
    input:
        FIGURE_FILES["two_factor"],


rule fig_sharpness_sweep:
    """Figure: sharpness of the limit point vs beta at fixed eta, GD+M vs flow (2)."""
    localrule: True
    input:
        FIGURE_FILES["sharpness_sweep"],


rule fig_sigmoid:
    """Figure: GD/GD+M on the sigmoid toy over the map of ||grad E||^2, with the ODE flows."""
    localrule: True
    input:
        FIGURE_FILES["sigmoid"],


rule fig_orders_gdm:
    """Figure: global error of GD+M vs flows (1), (2) against h (log-log), three starts."""
    localrule: True
    input:
        FIGURE_FILES["orders_gdm"],


rule fig_orders_sgdm:
    """Figure: RMS global error of SGD+M vs its piecewise modified flow against h."""
    localrule: True
    input:
        FIGURE_FILES["orders_sgdm"],


rule table_sharpness:
    """Table: limit point and sharpness of each two-factor run."""
    localrule: True
    input:
        TABLE_FILES["sharpness"],


rule table_orders:
    """Table: fitted error orders of the modified flows."""
    localrule: True
    input:
        TABLE_FILES["orders"],


rule table_claims:
    """Table: every claim, theory vs measured, with verdict."""
    localrule: True
    input:
        TABLE_FILES["claims"],


rule fig_acc_vs_beta:
    """Figure: final test accuracy vs beta at fixed effective learning rate (observation 3)."""
    localrule: True
    input:
        FIGURE_FILES["acc_vs_beta"],


rule fig_acc_vs_lr:
    """Figure: final test accuracy vs learning rate h for plain SGD (observation 1)."""
    localrule: True
    input:
        FIGURE_FILES["acc_vs_lr"],


rule fig_curves:
    """Figure: test accuracy per epoch, one curve per beta."""
    localrule: True
    input:
        FIGURE_FILES["curves"],


rule fig_spread:
    """Figure: spread of test accuracy over the last epochs vs beta (observation 2)."""
    localrule: True
    input:
        FIGURE_FILES["spread"],


rule fig_explicit:
    """Figure: explicit IGR-M baseline vs full-batch GD+M vs plain GD at the same eta."""
    localrule: True
    input:
        FIGURE_FILES["explicit"],


rule table_cifar_final:
    """Table: final test accuracies per (dataset, model, method, beta, h)."""
    localrule: True
    input:
        TABLE_FILES["cifar_final"],


rule fig_noise_variance:
    """Figure: tr Cov of the normalised historical gradient / tr Cov of a mini-batch gradient vs beta (Obs-1)."""
    localrule: True
    input:
        FIGURE_FILES["noise_variance"],


rule fig_noise_regularisation:
    """Figure: E[IGRM_s] / E[IGR_s] vs beta, measured and exact theory, with the slides' 1/(1-beta) (Obs-2)."""
    localrule: True
    input:
        FIGURE_FILES["noise_regularisation"],
