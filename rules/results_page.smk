# results/index.html: the page to open first (claims summary, glossary, every figure with its
# caption and claim lines). Offline and self-contained: images and links relative to results/.


rule results_page:
    """The results page (claims summary first, then each figure with its caption and claim
    lines) and the findings record of the run (the summary with its commit)."""
    input:
        summary=rules.table_claims.output.summary_csv,
        claims=rules.table_claims.output.csv,
        figures=[
            getattr(rules, f"fig_{name}").output.png
            for name in targets.built_figures(config)
        ],
        code=code_inputs("results_page.py"),
    output:
        page=f"{R}/index.html",
        findings=f"{R}/findings.md",
        summary_html=report(
            f"{R}/tables/claims_summary.html",
            caption="../report/claims_summary_html.rst",
            category=CATEGORY["claims"],
            subcategory="0 Summary: one line per claim of the paper",
        ),
    log:
        "logs/results_page.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        figures=targets.built_figures(config),
        report=lookup(dpath="report", within=config),
    script:
        "../scripts/results_page.py"
