# Error orders of the modified flows (DESIGN.md §1): GD+M vs flows (1), (2) with three
# starts; SGD+M vs its piecewise flow with historical losses G_k. One job per (problem, beta).


rule order_gdm:
    """Global error of GD+M against flows (1) and (2) over a geometric grid of h."""
    output:
        f"{R}/orders/gdm/{{problem}}_beta{{beta}}.h5",
    params:
        task="gdm_error_orders",
        cfg=gdm_cfg,
    log:
        "logs/orders/gdm_{problem}_beta{beta}.log",
    benchmark:
        f"{R}/benchmarks/orders/gdm_{{problem}}_beta{{beta}}.tsv"
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/simulate.py"


rule order_sgdm:
    """RMS global error of SGD+M against its piecewise flow, with and without the h/4 terms."""
    output:
        f"{R}/orders/sgdm/beta{{beta}}.h5",
    params:
        task="sgdm_error_orders",
        cfg=sgdm_cfg,
    log:
        "logs/orders/sgdm_beta{beta}.log",
    benchmark:
        f"{R}/benchmarks/orders/sgdm_beta{{beta}}.tsv"
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/simulate.py"


rule tidy_orders_gdm:
    localrule: True
    input:
        gdm_files,
    output:
        errors=f"{R}/tables/orders_gdm.csv",
        slopes=f"{R}/tables/orders_gdm_slopes_tidy.csv",
    params:
        task="tidy_orders",
    log:
        "logs/tidy/orders_gdm.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy.py"


rule tidy_orders_sgdm:
    localrule: True
    input:
        sgdm_files,
    output:
        errors=f"{R}/tables/orders_sgdm.csv",
        slopes=f"{R}/tables/orders_sgdm_slopes_tidy.csv",
    params:
        task="tidy_orders",
    log:
        "logs/tidy/orders_sgdm.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy.py"


rule plot_orders_gdm:
    localrule: True
    input:
        errors=rules.tidy_orders_gdm.output.errors,
        slopes=rules.tidy_orders_gdm.output.slopes,
    output:
        figure_outputs("orders_gdm"),
    params:
        task="plot_orders_gdm",
        cfg=cfg_at("orders"),
    log:
        "logs/figures/orders_gdm.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/plot.py"


rule plot_orders_sgdm:
    localrule: True
    input:
        errors=rules.tidy_orders_sgdm.output.errors,
        slopes=rules.tidy_orders_sgdm.output.slopes,
    output:
        figure_outputs("orders_sgdm"),
    params:
        task="plot_orders_sgdm",
        cfg=cfg_at("orders"),
    log:
        "logs/figures/orders_sgdm.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/plot.py"


rule make_table_orders:
    """Fitted error orders (slope of log error vs log h) with standard errors."""
    localrule: True
    input:
        gdm=rules.tidy_orders_gdm.output.slopes,
        sgdm=rules.tidy_orders_sgdm.output.slopes,
    output:
        table_outputs("orders_gdm_slopes") + table_outputs("orders_sgdm_slopes"),
    params:
        task="table_orders",
        cfg=cfg_at("orders"),
    log:
        "logs/tables/orders.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/table.py"


rule claims_orders:
    localrule: True
    input:
        slopes=f"{R}/tables/orders_{{kind}}_slopes_tidy.csv",
    output:
        f"{R}/claims/orders_{{kind}}.csv",
    params:
        task="claims_orders",
        cfg=cfg_at("orders"),
    wildcard_constraints:
        kind="gdm|sgdm",
    log:
        "logs/claims/orders_{kind}.log",
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/table.py"
