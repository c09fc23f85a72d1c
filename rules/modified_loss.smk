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
