# Toy problems (docs/theory.md §5, (T22)–(T27)): two-factor and sigmoid objectives, float64, closed form.
# simulate (one HDF5 per simulation) -> tidy tables (CSV) -> figures / tables / claims.


rule toy_two_factor:
    """GD and GD+M at one effective learning rate on E = 1/2 (y - w1 w2 x)^2."""
    output:
        f"{R}/toy/two_factor.h5",
    log:
        "logs/toy/two_factor.log",
    benchmark:
        f"{R}/benchmarks/toy/two_factor.tsv"
    conda:
        "../envs/science.yaml"
    params:
        task="simulate_two_factor",
        cfg=cfg_at("toy/two_factor"),
    script:
        "../scripts/simulate.py"


rule toy_sharpness_sweep:
    """Sharpness of the limit point vs beta at one eta: GD+M and flow (2)."""
    output:
        f"{R}/toy/sharpness_sweep/eta{{eta}}.h5",
    log:
        "logs/toy/sharpness_sweep_eta{eta}.log",
    benchmark:
        f"{R}/benchmarks/toy/sharpness_sweep_eta{{eta}}.tsv"
    conda:
        "../envs/science.yaml"
    params:
        task="sharpness_sweep",
        cfg=sweep_cfg,
    script:
        "../scripts/simulate.py"


rule toy_sigmoid:
    """GD / GD+M on E = 1/2 (y - w1 sigmoid(w2 x))^2 and the ODE flows of E and of ||grad E||^2."""
    output:
        f"{R}/toy/sigmoid.h5",
    log:
        "logs/toy/sigmoid.log",
    benchmark:
        f"{R}/benchmarks/toy/sigmoid.tsv"
    conda:
        "../envs/science.yaml"
    params:
        task="simulate_sigmoid",
        cfg=cfg_at("toy/sigmoid"),
    script:
        "../scripts/simulate.py"


rule tidy_two_factor:
    input:
        rules.toy_two_factor.output,
    output:
        trajectories=f"{R}/tables/two_factor_trajectories.csv",
        finals=f"{R}/tables/two_factor_finals.csv",
    log:
        "logs/tidy/two_factor.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="tidy_two_factor",
    script:
        "../scripts/tidy.py"


rule tidy_sharpness_sweep:
    input:
        sweep_files,
    output:
        sweep=f"{R}/tables/sharpness_sweep.csv",
    log:
        "logs/tidy/sharpness_sweep.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="tidy_sharpness_sweep",
    script:
        "../scripts/tidy.py"


rule tidy_sigmoid:
    input:
        rules.toy_sigmoid.output,
    output:
        trajectories=f"{R}/tables/sigmoid_trajectories.csv",
        flows=f"{R}/tables/sigmoid_flows.csv",
    log:
        "logs/tidy/sigmoid.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="tidy_sigmoid",
    script:
        "../scripts/tidy.py"


rule plot_two_factor:
    input:
        trajectories=rules.tidy_two_factor.output.trajectories,
        finals=rules.tidy_two_factor.output.finals,
    output:
        figure_outputs("two_factor"),
    log:
        "logs/figures/two_factor.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_two_factor",
        cfg=cfg_at("toy/two_factor"),
    script:
        "../scripts/plot.py"


rule plot_sharpness_sweep:
    input:
        sweep=rules.tidy_sharpness_sweep.output.sweep,
    output:
        figure_outputs("sharpness_sweep"),
    log:
        "logs/figures/sharpness_sweep.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_sharpness_sweep",
        cfg=cfg_at("toy/sharpness_sweep"),
    script:
        "../scripts/plot.py"


rule plot_sigmoid:
    input:
        trajectories=rules.tidy_sigmoid.output.trajectories,
        flows=rules.tidy_sigmoid.output.flows,
    output:
        figure_outputs("sigmoid"),
    log:
        "logs/figures/sigmoid.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="plot_sigmoid",
        cfg=cfg_at("toy/sigmoid"),
    script:
        "../scripts/plot.py"


rule make_table_sharpness:
    """Where each run of the two-factor figure converges, and how sharp it is there."""
    input:
        finals=rules.tidy_two_factor.output.finals,
    output:
        table_outputs("sharpness"),
    log:
        "logs/tables/sharpness.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="table_sharpness",
        cfg=cfg_at("toy/two_factor"),
    script:
        "../scripts/table.py"


rule claims_toy:
    input:
        sweep=rules.tidy_sharpness_sweep.output.sweep,
        finals=rules.tidy_two_factor.output.finals,
    output:
        f"{R}/claims/toy.csv",
    log:
        "logs/claims/toy.log",
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="claims_toy",
        cfg=cfg_at("toy/claims"),
    script:
        "../scripts/table.py"
