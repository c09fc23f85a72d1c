# The claims table (every stage's claim rows; rule table_claims, its own target) and the HTML
# report. The figures' and the other tables' rules live with their stage (rules/toy.smk, ...):
# one rule per figure, fig_<name>, and per table, table_<name>; the rule is the target.


rule table_claims:
    """Every claim: theory vs measured, uncertainty, tolerance, verdict; and one line per paper claim."""
    input:
        parts=claim_files,
        code=code_inputs("table/claims.py"),
    output:
        csv=report(
            f"{R}/tables/claims.csv",
            caption="../report/claims.rst",
            category=CATEGORY["claims"],
            subcategory="1 Every row",
        ),
        md=f"{R}/tables/claims.md",
        tex=f"{R}/tables/claims.tex",
        summary_csv=report(
            f"{R}/tables/claims_summary.csv",
            caption="../report/claims_summary.rst",
            category=CATEGORY["claims"],
            subcategory="0 Summary: one line per claim of the paper",
        ),
        summary_md=f"{R}/tables/claims_summary.md",
        summary_tex=f"{R}/tables/claims_summary.tex",
    log:
        "logs/tables/claims.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/table/claims.py"


rule make_report:
    """The HTML report (zip): every figure and table of the config with its caption, by
    category. Same as `snakemake --report results/report.zip` with this run's config."""
    input:
        lambda wildcards: final_outputs(),
    output:
        f"{R}/report.zip",
    log:
        "logs/report.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        cfg=config,
        snakefile=workflow.main_snakefile,
    script:
        "../scripts/report.py"
