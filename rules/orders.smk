# Error orders of the modified flows (docs/theory.md (T5), (T6), (T17), (T19)): GD+M vs flows (1), (2) with three
# starts; SGD+M vs its piecewise flow with historical losses G_k. One job per (problem, beta).


rule order_gdm:
    """Global error of GD+M against flows (1) and (2) over a geometric grid of h."""
    output:
        f"{R}/orders/gdm/{{problem}}_beta{{beta}}.h5",
    log:
        "logs/orders/gdm_{problem}_beta{beta}.log",
    benchmark:
        f"{R}/benchmarks/orders/gdm_{{problem}}_beta{{beta}}.tsv"
    conda:
        "../envs/science.yaml"
    params:
        task="gdm_error_orders",
        cfg=gdm_cfg,
    script:
        "../scripts/simulate.py"


rule order_sgdm:
    """RMS global error of SGD+M against its piecewise flow, with and without the h/4 terms."""
    output:
        f"{R}/orders/sgdm/beta{{beta}}.h5",
    log:
        "logs/orders/sgdm_beta{beta}.log",
    benchmark:
        f"{R}/benchmarks/orders/sgdm_beta{{beta}}.tsv"
    conda:
        "../envs/science.yaml"
    params:
        task="sgdm_error_orders",
        cfg=sgdm_cfg,
    script:
        "../scripts/simulate.py"


rule tidy_orders_gdm:
    input:
        gdm_files,
    output:
        errors=f"{R}/tables/orders_gdm.csv",
        slopes=f"{R}/tables/orders_gdm_slopes_tidy.csv",
    log:
        "logs/tidy/orders_gdm.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="tidy_orders",
    script:
        "../scripts/tidy.py"


rule tidy_orders_sgdm:
    input:
        sgdm_files,
    output:
        errors=f"{R}/tables/orders_sgdm.csv",
        slopes=f"{R}/tables/orders_sgdm_slopes_tidy.csv",
    log:
        "logs/tidy/orders_sgdm.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="tidy_orders",
    script:
        "../scripts/tidy.py"


rule plot_orders_gdm:
    input:
        errors=rules.tidy_orders_gdm.output.errors,
        slopes=rules.tidy_orders_gdm.output.slopes,
    output:
        figure_outputs("orders_gdm"),
    log:
        "logs/figures/orders_gdm.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_orders_gdm",
        cfg=cfg_at("orders"),
    script:
        "../scripts/plot.py"


rule plot_orders_sgdm:
    input:
        errors=rules.tidy_orders_sgdm.output.errors,
        slopes=rules.tidy_orders_sgdm.output.slopes,
    output:
        figure_outputs("orders_sgdm"),
    log:
        "logs/figures/orders_sgdm.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_orders_sgdm",
        cfg=cfg_at("orders"),
    script:
        "../scripts/plot.py"


rule make_table_orders:
    """Fitted error orders (slope of log error vs log h) with standard errors."""
    input:
        gdm=rules.tidy_orders_gdm.output.slopes,
        sgdm=rules.tidy_orders_sgdm.output.slopes,
    output:
        table_outputs("orders_gdm_slopes") + table_outputs("orders_sgdm_slopes"),
    log:
        "logs/tables/orders.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="table_orders",
        cfg=cfg_at("orders"),
    script:
        "../scripts/table.py"


rule claims_orders:
    input:
        slopes=f"{R}/tables/orders_{{kind}}_slopes_tidy.csv",
    output:
        f"{R}/claims/orders_{{kind}}.csv",
    log:
        "logs/claims/orders_{kind}.log",
    wildcard_constraints:
        kind="gdm|sgdm",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="claims_orders",
        cfg=cfg_at("orders"),
    script:
        "../scripts/table.py"
