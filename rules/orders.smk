# Error orders of the modified flows (docs/theory.md (T5), (T6), (T17), (T19)): GD+M vs flows (1), (2) with three
# starts; SGD+M vs its piecewise flow with historical losses G_k. One job per (problem, beta).
# Each rule runs its own script (scripts/<kind>/<what it makes>.py), which calls igrm by name.


rule order_gdm:
    """Global error of GD+M against flows (1) and (2) over a geometric grid of h."""
    input:
        code=code_inputs("sim/orders_gdm.py"),
    output:
        f"{R}/orders/gdm/{{problem}}_beta{{beta}}.h5",
    log:
        "logs/orders/gdm_{problem}_beta{beta}.log",
    benchmark:
        f"{R}/benchmarks/orders/gdm_{{problem}}_beta{{beta}}.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=section(
            config, "orders/gdm", problems=("problem", str), betas=("beta", float)
        ),
    script:
        "../scripts/sim/orders_gdm.py"


rule order_sgdm:
    """RMS global error of SGD+M against its piecewise flow, with and without the h/4 terms."""
    input:
        code=code_inputs("sim/orders_sgdm.py"),
    output:
        f"{R}/orders/sgdm/beta{{beta}}.h5",
    log:
        "logs/orders/sgdm_beta{beta}.log",
    benchmark:
        f"{R}/benchmarks/orders/sgdm_beta{{beta}}.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=section(config, "orders/sgdm", betas=("beta", float)),
    script:
        "../scripts/sim/orders_sgdm.py"


rule order_sgdm_real:
    """RMS global error of SGD+M on a real-data logistic regression against its piecewise flow, with and without the h/4 terms."""
    input:
        data=targets.sgdm_real_data(config),
        code=code_inputs("sim/orders_sgdm_real.py"),
    output:
        f"{R}/orders/sgdm_real/{{dataset}}_beta{{beta}}.h5",
    log:
        "logs/orders/sgdm_real_{dataset}_beta{beta}.log",
    benchmark:
        f"{R}/benchmarks/orders/sgdm_real_{{dataset}}_beta{{beta}}.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=targets.sgdm_real_job(config),
    script:
        "../scripts/sim/orders_sgdm_real.py"


rule sgdm_real:
    """The real-data SGD+M study: its error table, fitted orders and claims (named target; orders.sgdm_real.enabled)."""
    input:
        f"{TIDY}/orders_sgdm_real_slopes.csv" if targets.sgdm_real_files(config) else [],
        f"{R}/claims/orders_sgdm_real.csv" if targets.sgdm_real_files(config) else [],
    localrule: True


rule tidy_orders:
    """Tidy tables of one family (gdm | sgdm | sgdm_real | higher): the global errors, and their fitted orders."""
    input:
        results=orders_files,
        code=code_inputs("tidy/orders.py"),
    output:
        errors=f"{TIDY}/orders_{{family}}.csv",
        slopes=f"{TIDY}/orders_{{family}}_slopes.csv",
    log:
        "logs/tidy/orders_{family}.log",
    wildcard_constraints:
        family="gdm|sgdm|sgdm_real|higher|order_r",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy/orders.py"


rule fig_orders_gdm:
    """Figure: global error of GD+M vs flows (1), (2) against h (log-log), three starts."""
    input:
        errors=f"{TIDY}/orders_gdm.csv",
        slopes=f"{TIDY}/orders_gdm_slopes.csv",
        code=code_inputs("fig/orders_gdm.py"),
    output:
        pdf=f"{R}/figures/orders_gdm.pdf",
        png=report(
            f"{R}/figures/orders_gdm.png",
            caption="../report/orders_gdm.rst",
            category=CATEGORY["orders"],
        ),
    log:
        "logs/figures/orders_gdm.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/fig/orders_gdm.py"


rule fig_orders_sgdm:
    """Figure: RMS global error of SGD+M vs its piecewise modified flow against h."""
    input:
        errors=f"{TIDY}/orders_sgdm.csv",
        slopes=f"{TIDY}/orders_sgdm_slopes.csv",
        code=code_inputs("fig/orders_sgdm.py"),
    output:
        pdf=f"{R}/figures/orders_sgdm.pdf",
        png=report(
            f"{R}/figures/orders_sgdm.png",
            caption="../report/orders_sgdm.rst",
            category=CATEGORY["orders"],
        ),
    log:
        "logs/figures/orders_sgdm.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/fig/orders_sgdm.py"


rule table_orders:
    """Tables: fitted error orders (slope of log error vs log h) with standard errors."""
    input:
        gdm=f"{TIDY}/orders_gdm_slopes.csv",
        sgdm=f"{TIDY}/orders_sgdm_slopes.csv",
        code=code_inputs("table/orders_slopes.py"),
    output:
        gdm_csv=report(
            f"{R}/tables/orders_gdm_slopes.csv",
            caption="../report/orders_gdm_slopes.rst",
            category=CATEGORY["orders"],
        ),
        gdm_md=f"{R}/tables/orders_gdm_slopes.md",
        gdm_tex=f"{R}/tables/orders_gdm_slopes.tex",
        sgdm_csv=report(
            f"{R}/tables/orders_sgdm_slopes.csv",
            caption="../report/orders_sgdm_slopes.rst",
            category=CATEGORY["orders"],
        ),
        sgdm_md=f"{R}/tables/orders_sgdm_slopes.md",
        sgdm_tex=f"{R}/tables/orders_sgdm_slopes.tex",
    log:
        "logs/tables/orders.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/table/orders_slopes.py"


rule claims_orders:
    """Claims rows of one family's fitted orders (results/claims/orders_{kind}.csv)."""
    input:
        slopes=f"{TIDY}/orders_{{kind}}_slopes.csv",
        errors=f"{TIDY}/orders_{{kind}}.csv",
        code=code_inputs("claims/orders.py"),
    output:
        f"{R}/claims/orders_{{kind}}.csv",
    log:
        "logs/claims/orders_{kind}.log",
    wildcard_constraints:
        kind="gdm|sgdm|sgdm_real|higher|order_r",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        slope_tol=lookup(dpath="orders/slope_tol", within=config),
        ci=lookup(dpath="orders/ci", within=config),
        max_epsilon=lookup(dpath="orders/max_epsilon", within=config),
        floor_factor=lookup(dpath="orders/higher/any_order/floor_factor", within=config),
        range_tol=lookup(
            dpath="orders/higher/any_order_limits/range_tol", within=config
        ),
    script:
        "../scripts/claims/orders.py"


# Beyond the paper (docs/modified_flows.md §7): the O(h^3) modified flow of GD+M and the
# exact linear series to order R; problem settings, grid and tolerances of orders.gdm.


rule order_gdm3:
    """Global error of GD+M (slow start to O(h^3)) against flow (2), the O(h^3) flow and its ablation (lstsq: and the linear series)."""
    input:
        code=code_inputs("sim/orders_gdm3.py"),
    output:
        f"{R}/orders/gdm3/{{problem}}_beta{{beta}}.h5",
    log:
        "logs/orders/gdm3_{problem}_beta{beta}.log",
    benchmark:
        f"{R}/benchmarks/orders/gdm3_{{problem}}_beta{{beta}}.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=section(
            config, "orders/gdm", problems=("problem", str), betas=("beta", float)
        ),
        series_orders=lookup(dpath="orders/higher/series_orders", within=config),
    script:
        "../scripts/sim/orders_gdm3.py"


rule fig_orders_higher:
    """Figure: global error of GD+M against its O(h^3) flow and the order-R linear series vs h (log-log)."""
    input:
        errors=f"{TIDY}/orders_higher.csv",
        slopes=f"{TIDY}/orders_higher_slopes.csv",
        code=code_inputs("fig/orders_higher.py"),
    output:
        pdf=f"{R}/figures/orders_higher.pdf",
        png=report(
            f"{R}/figures/orders_higher.png",
            caption="../report/orders_higher.rst",
            category=CATEGORY["orders"],
        ),
    log:
        "logs/figures/orders_higher.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/fig/orders_higher.py"


rule order_limits:
    """Limit sharpness of GD+M from rest against the limits of flow (2) and of the O(h^3) flow, over (beta, eps)."""
    input:
        code=code_inputs("sim/orders_limits.py"),
    output:
        f"{R}/orders/limits/two_factor.h5",
    log:
        "logs/orders/limits_two_factor.log",
    benchmark:
        f"{R}/benchmarks/orders/limits_two_factor.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=lookup(dpath="orders/higher/limits", within=config),
        two_factor=lookup(dpath="toy/two_factor", within=config),
    script:
        "../scripts/sim/orders_limits.py"


rule fig_orders_higher_limits:
    """Figure: limit-sharpness error of flow (2) and the O(h^3) flow against GD+M vs beta, per eps."""
    input:
        errors=f"{TIDY}/orders_higher.csv",
        slopes=f"{TIDY}/orders_higher_slopes.csv",
        code=code_inputs("fig/orders_higher_limits.py"),
    output:
        pdf=f"{R}/figures/orders_higher_limits.pdf",
        png=report(
            f"{R}/figures/orders_higher_limits.png",
            caption="../report/orders_higher_limits.rst",
            category=CATEGORY["orders"],
        ),
    log:
        "logs/figures/orders_higher_limits.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/fig/orders_higher_limits.py"


# Beyond the paper (docs/modified_flows.md section 8): GD+M against its order-R modified flows,
# R = 1..5 (orders.higher.any_order; off in the default run, on in presets/higher_order.yaml).


rule order_r:
    """Global error of GD+M (slow start to matching order) against its order-R flows and their ablations."""
    input:
        code=code_inputs("sim/orders_order_r.py"),
    output:
        f"{R}/orders/order_r/{{problem}}_beta{{beta}}.h5",
    log:
        "logs/orders/order_r_{problem}_beta{beta}.log",
    benchmark:
        f"{R}/benchmarks/orders/order_r_{{problem}}_beta{{beta}}.tsv"
    wildcard_constraints:
        problem="two_factor|sigmoid|lstsq",
    conda:
        "../envs/science.yaml"
    params:
        cfg=section(
            config,
            "orders/higher/any_order",
            problems=("problem", str),
            betas=("beta", float),
        ),
        two_factor=lookup(dpath="orders/gdm/two_factor", within=config),
        lstsq=lookup(dpath="orders/gdm/lstsq", within=config),
    script:
        "../scripts/sim/orders_order_r.py"


rule order_r_limits:
    """Limit sharpness of GD+M (slow start to matching order) against the limits of its order-R flows, over (beta, eps)."""
    input:
        code=code_inputs("sim/orders_order_r_limits.py"),
    output:
        f"{R}/orders/order_r_limits/two_factor.h5",
    log:
        "logs/orders/order_r_limits_two_factor.log",
    benchmark:
        f"{R}/benchmarks/orders/order_r_limits_two_factor.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=lookup(dpath="orders/higher/any_order_limits", within=config),
        two_factor=lookup(dpath="toy/two_factor", within=config),
    script:
        "../scripts/sim/orders_order_r_limits.py"


rule fig_orders_any_order:
    """Figure: global error of GD+M against its order-R flows and their ablations vs h (log-log), with the reference floor (built when orders.higher.any_order.orders is not empty)."""
    input:
        errors=f"{TIDY}/orders_order_r.csv",
        slopes=f"{TIDY}/orders_order_r_slopes.csv",
        code=code_inputs("fig/orders_any_order.py"),
    output:
        pdf=f"{R}/figures/orders_any_order.pdf",
        png=report(
            f"{R}/figures/orders_any_order.png",
            caption="../report/orders_any_order.rst",
            category=CATEGORY["orders"],
        ),
    log:
        "logs/figures/orders_any_order.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/fig/orders_any_order.py"


rule fig_orders_any_order_loss:
    """Figure: distance between heavy ball and GD on its order-R modified loss vs h (log-log) (built when orders.higher.any_order.orders is not empty)."""
    input:
        errors=f"{TIDY}/orders_order_r.csv",
        slopes=f"{TIDY}/orders_order_r_slopes.csv",
        code=code_inputs("fig/orders_any_order_loss.py"),
    output:
        pdf=f"{R}/figures/orders_any_order_loss.pdf",
        png=report(
            f"{R}/figures/orders_any_order_loss.png",
            caption="../report/orders_any_order_loss.rst",
            category=CATEGORY["orders"],
        ),
    log:
        "logs/figures/orders_any_order_loss.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/fig/orders_any_order_loss.py"


rule fig_orders_any_order_limits:
    """Figure: limit-sharpness error of the order-R flows against GD+M vs eps (log-log), per beta (built when orders.higher.any_order_limits.orders is not empty)."""
    input:
        errors=f"{TIDY}/orders_order_r.csv",
        slopes=f"{TIDY}/orders_order_r_slopes.csv",
        code=code_inputs("fig/orders_any_order_limits.py"),
    output:
        pdf=f"{R}/figures/orders_any_order_limits.pdf",
        png=report(
            f"{R}/figures/orders_any_order_limits.png",
            caption="../report/orders_any_order_limits.rst",
            category=CATEGORY["orders"],
        ),
    log:
        "logs/figures/orders_any_order_limits.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        range_tol=lookup(
            dpath="orders/higher/any_order_limits/range_tol", within=config
        ),
    script:
        "../scripts/fig/orders_any_order_limits.py"
