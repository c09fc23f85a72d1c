# The modified loss of GD+M at O(h^2) in its metric (docs/modified_flows.md section 7.2):
# the identity on both toy problems and GD+M's limit point from the metric flow of E~2.


rule claims_modified_loss:
    """Claim rows: the metric identity, its fixed points, GD+M's limit point at O(h^3)."""
    input:
        code=code_inputs("claims/modified_loss.py"),
    output:
        f"{R}/claims/modified_loss.csv",
    log:
        "logs/claims/modified_loss.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        cfg=lookup(dpath="orders/modified_loss", within=config),
        two_factor=lookup(dpath="toy/two_factor", within=config),
        lstsq=lookup(dpath="orders/gdm/lstsq", within=config),
        slope_tol=lookup(dpath="orders/slope_tol", within=config),
        ci=lookup(dpath="orders/ci", within=config),
        max_epsilon=lookup(dpath="orders/max_epsilon", within=config),
    script:
        "../scripts/claims/modified_loss.py"


# Is the order-R flow a gradient flow? (docs/modified_flows.md section 8.4, (M22)): exact
# SymPy solves, about 10 s for R = 1..5; with the any-order study (orders.higher.any_order.orders).


rule claims_order_r_metric:
    """Claim rows (our finding): the order-R flow as a gradient flow in a Hessian-power metric, and f_n as Euclidean gradients."""
    input:
        code=code_inputs("claims/order_r_metric.py"),
    output:
        f"{R}/claims/order_r_metric.csv",
    log:
        "logs/claims/order_r_metric.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        orders=lookup(dpath="orders/higher/any_order/orders", within=config),
    script:
        "../scripts/claims/order_r_metric.py"
