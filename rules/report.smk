# The claims table and one named target per figure and table (`snakemake --lt`).


rule make_table_claims:
    """Every claim: theory vs measured, uncertainty, tolerance, verdict."""
    input:
        claim_files,
    output:
        table_outputs("claims"),
    log:
        "logs/tables/claims.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="table_claims",
    script:
        "../scripts/table.py"


rule make_report:
    """The HTML report (zip): every figure and table of the config with its caption, by
    category. Same as `snakemake --report results/report.zip` with this run's config."""
    input:
        final_outputs(),
    output:
        f"{R}/report.zip",
    log:
        "logs/report.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="report",
        cfg=config,
        snakefile=workflow.main_snakefile,
    script:
        "../scripts/report.py"


rule fig_two_factor:
    """Figure: GD vs GD+M on the two-factor toy, over the hyperbola of minima (paper's figure)."""
    input:
        FIGURE_FILES["two_factor"],
    localrule: True


rule fig_sharpness_sweep:
    """Figure: sharpness of the limit point vs beta at fixed eta, GD+M vs flow (2)."""
    input:
        FIGURE_FILES["sharpness_sweep"],
    localrule: True


rule fig_sigmoid:
    """Figure: GD/GD+M on the sigmoid toy over the map of ||grad E||^2, with the ODE flows."""
    input:
        FIGURE_FILES["sigmoid"],
    localrule: True


rule fig_orders_gdm:
    """Figure: global error of GD+M vs flows (1), (2) against h (log-log), three starts."""
    input:
        FIGURE_FILES["orders_gdm"],
    localrule: True


rule fig_orders_sgdm:
    """Figure: RMS global error of SGD+M vs its piecewise modified flow against h."""
    input:
        FIGURE_FILES["orders_sgdm"],
    localrule: True


rule table_sharpness:
    """Table: limit point and sharpness of each two-factor run."""
    input:
        TABLE_FILES["sharpness"],
    localrule: True


rule table_orders:
    """Table: fitted error orders of the modified flows."""
    input:
        TABLE_FILES["orders"],
    localrule: True


rule table_claims:
    """Table: every claim, theory vs measured, with verdict."""
    input:
        TABLE_FILES["claims"],
    localrule: True


rule fig_acc_vs_beta:
    """Figure: final test accuracy vs beta at fixed effective learning rate (observation 3)."""
    input:
        FIGURE_FILES["acc_vs_beta"],
    localrule: True


rule fig_acc_vs_lr:
    """Figure: final test accuracy vs learning rate h for plain SGD (observation 1)."""
    input:
        FIGURE_FILES["acc_vs_lr"],
    localrule: True


rule fig_curves:
    """Figure: test accuracy per epoch, one curve per beta."""
    input:
        FIGURE_FILES["curves"],
    localrule: True


rule fig_spread:
    """Figure: spread of test accuracy over the last epochs vs beta (observation 2)."""
    input:
        FIGURE_FILES["spread"],
    localrule: True


rule fig_explicit:
    """Figure: explicit IGR-M baseline vs full-batch GD+M vs plain GD at the same eta."""
    input:
        FIGURE_FILES["explicit"],
    localrule: True


rule table_cifar_final:
    """Table: final test accuracies per (dataset, model, method, beta, h)."""
    input:
        TABLE_FILES["cifar_final"],
    localrule: True


rule fig_noise_variance:
    """Figure: tr Cov of the normalised historical gradient / tr Cov of a mini-batch gradient vs beta (Obs-1)."""
    input:
        FIGURE_FILES["noise_variance"],
    localrule: True


rule fig_noise_regularisation:
    """Figure: E[IGRM_s] / E[IGR_s] vs beta, measured and exact theory, with the slides' 1/(1-beta) (Obs-2)."""
    input:
        FIGURE_FILES["noise_regularisation"],
    localrule: True
