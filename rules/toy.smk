# Toy problems (docs/theory.md §5, (T22)–(T27)): two-factor and sigmoid objectives, float64, closed form.
# simulate (one HDF5 per simulation) -> tidy tables (results/tidy/) -> figures / tables / claims.
# Each rule runs its own script (scripts/<kind>/<what it makes>.py), which calls igrm by name.


rule toy_two_factor:
    """GD and GD+M at one effective learning rate on E = 1/2 (y - w1 w2 x)^2."""
    input:
        code=code_inputs("sim/two_factor.py"),
    output:
        f"{R}/toy/two_factor.h5",
    log:
        "logs/toy/two_factor.log",
    benchmark:
        f"{R}/benchmarks/toy/two_factor.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=lookup(dpath="toy/two_factor", within=config),
    script:
        "../scripts/sim/two_factor.py"


rule toy_sharpness_sweep:
    """Sharpness of the limit point vs beta at one eta: GD+M and flow (2)."""
    input:
        code=code_inputs("sim/sharpness_sweep.py"),
    output:
        f"{R}/toy/sharpness_sweep/eta{{eta}}.h5",
    log:
        "logs/toy/sharpness_sweep_eta{eta}.log",
    benchmark:
        f"{R}/benchmarks/toy/sharpness_sweep_eta{{eta}}.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=section(config, "toy/sharpness_sweep", etas=("eta", float)),
        two_factor=lookup(dpath="toy/two_factor", within=config),
    script:
        "../scripts/sim/sharpness_sweep.py"


rule toy_limit_convergence:
    """GD+M's limit sharpness -> flow (2)'s as eta -> 0 at fixed beta (grid in eps units)."""
    input:
        code=code_inputs("sim/limit_convergence.py"),
    output:
        f"{R}/toy/limit_convergence.h5",
    log:
        "logs/toy/limit_convergence.log",
    benchmark:
        f"{R}/benchmarks/toy/limit_convergence.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=lookup(dpath="toy/limit_convergence", within=config),
        two_factor=lookup(dpath="toy/two_factor", within=config),
    script:
        "../scripts/sim/limit_convergence.py"


rule toy_sigmoid:
    """GD / GD+M on E = 1/2 (y - w1 sigmoid(w2 x))^2 and the ODE flows of E and of ||grad E||^2."""
    input:
        code=code_inputs("sim/sigmoid.py"),
    output:
        f"{R}/toy/sigmoid.h5",
    log:
        "logs/toy/sigmoid.log",
    benchmark:
        f"{R}/benchmarks/toy/sigmoid.tsv"
    conda:
        "../envs/science.yaml"
    params:
        cfg=lookup(dpath="toy/sigmoid", within=config),
    script:
        "../scripts/sim/sigmoid.py"


rule tidy_two_factor:
    """Tidy tables: the two-factor trajectories (thinned) and one row per run's end point."""
    input:
        results=rules.toy_two_factor.output,
        code=code_inputs("tidy/two_factor.py"),
    output:
        trajectories=f"{TIDY}/two_factor_trajectories.csv",
        finals=f"{TIDY}/two_factor_finals.csv",
    log:
        "logs/tidy/two_factor.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy/two_factor.py"


rule tidy_sharpness_sweep:
    """Tidy table: limit sharpness of GD+M, flow (2) and flow (1), one row per (eta, beta)."""
    input:
        results=sweep_files,
        code=code_inputs("tidy/sharpness_sweep.py"),
    output:
        sweep=f"{TIDY}/sharpness_sweep.csv",
    log:
        "logs/tidy/sharpness_sweep.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy/sharpness_sweep.py"


rule tidy_limit_convergence:
    """Tidy table: the eta-convergence study, one row per (beta, eta)."""
    input:
        results=rules.toy_limit_convergence.output,
        code=code_inputs("tidy/limit_convergence.py"),
    output:
        convergence=f"{TIDY}/limit_convergence.csv",
    log:
        "logs/tidy/limit_convergence.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy/limit_convergence.py"


rule tidy_sigmoid:
    """Tidy tables: the sigmoid trajectories and the two ODE flows."""
    input:
        results=rules.toy_sigmoid.output,
        code=code_inputs("tidy/sigmoid.py"),
    output:
        trajectories=f"{TIDY}/sigmoid_trajectories.csv",
        flows=f"{TIDY}/sigmoid_flows.csv",
    log:
        "logs/tidy/sigmoid.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/tidy/sigmoid.py"


rule fig_two_factor:
    """Figure: GD vs GD+M on the two-factor toy, over the hyperbola of minima (paper's figure)."""
    input:
        trajectories=rules.tidy_two_factor.output.trajectories,
        finals=rules.tidy_two_factor.output.finals,
        code=code_inputs("fig/two_factor.py"),
    output:
        pdf=f"{R}/figures/two_factor.pdf",
        png=report(
            f"{R}/figures/two_factor.png",
            caption="../report/two_factor.rst",
            category=CATEGORY["toy"],
        ),
    log:
        "logs/figures/two_factor.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        x=lookup(dpath="toy/two_factor/x", within=config),
        y=lookup(dpath="toy/two_factor/y", within=config),
        eta=lookup(dpath="toy/two_factor/eta", within=config),
    script:
        "../scripts/fig/two_factor.py"


rule fig_sharpness_sweep:
    """Figure: sharpness of the limit point vs beta at fixed eta, GD+M vs flow (2)."""
    input:
        sweep=rules.tidy_sharpness_sweep.output.sweep,
        code=code_inputs("fig/sharpness_sweep.py"),
    output:
        pdf=f"{R}/figures/sharpness_sweep.pdf",
        png=report(
            f"{R}/figures/sharpness_sweep.png",
            caption="../report/sharpness_sweep.rst",
            category=CATEGORY["toy"],
        ),
    log:
        "logs/figures/sharpness_sweep.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/fig/sharpness_sweep.py"


rule fig_sigmoid:
    """Figure: GD/GD+M on the sigmoid toy over the map of ||grad E||^2, with the ODE flows."""
    input:
        trajectories=rules.tidy_sigmoid.output.trajectories,
        flows=rules.tidy_sigmoid.output.flows,
        code=code_inputs("fig/sigmoid.py"),
    output:
        pdf=f"{R}/figures/sigmoid.pdf",
        png=report(
            f"{R}/figures/sigmoid.png",
            caption="../report/sigmoid.rst",
            category=CATEGORY["toy"],
        ),
    log:
        "logs/figures/sigmoid.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        x=lookup(dpath="toy/sigmoid/x", within=config),
        y=lookup(dpath="toy/sigmoid/y", within=config),
        eta=lookup(dpath="toy/sigmoid/eta", within=config),
    script:
        "../scripts/fig/sigmoid.py"


rule table_sharpness:
    """Table: where each run of the two-factor figure converges, and how sharp it is there."""
    input:
        finals=rules.tidy_two_factor.output.finals,
        code=code_inputs("table/sharpness.py"),
    output:
        csv=report(
            f"{R}/tables/sharpness.csv",
            caption="../report/sharpness.rst",
            category=CATEGORY["toy"],
        ),
        md=f"{R}/tables/sharpness.md",
        tex=f"{R}/tables/sharpness.tex",
    log:
        "logs/tables/sharpness.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    script:
        "../scripts/table/sharpness.py"


rule claims_toy:
    """Claims rows of the toy problems (results/claims/toy.csv, gathered by the claims table)."""
    input:
        sweep=rules.tidy_sharpness_sweep.output.sweep,
        finals=rules.tidy_two_factor.output.finals,
        convergence=rules.tidy_limit_convergence.output.convergence,
        code=code_inputs("claims/toy.py"),
    output:
        f"{R}/claims/toy.csv",
    log:
        "logs/claims/toy.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        cfg=lookup(dpath="toy/claims", within=config),
    script:
        "../scripts/claims/toy.py"
