# igrm: one command rebuilds every figure, table and claim of
# "Implicit regularization in Heavy-ball momentum accelerated SGD" (Ghosh et al., ICLR 2023).
#   snakemake --cores all                 # everything in config.yaml (laptop scale, CPU)
#   snakemake --cores all fig_sigmoid     # one figure and only what it needs
#   snakemake --lt                        # list the named targets
import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/toy.smk"
include: "rules/orders.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/explicit_study.smk"
include: "rules/sharpness_runs.smk"
include: "rules/eos.smk"
include: "rules/modified_loss.smk"
include: "rules/noise.smk"
include: "rules/report.smk"
include: "rules/results_page.smk"


rule all:
    """Every figure and table listed in the config (`figures`, `tables`), and the report."""
    default_target: True
    input:
        final_outputs(),
        rules.make_report.output if config["report"] else [],
    localrule: True


# No SLURM job outlives its run (igrm/pipeline/slurm.py): a second Ctrl-C or a killed head process
# would leave jobs running that Snakemake no longer tracks.
onstart:
    from igrm.pipeline.config import CPU_PASSES_PER_CORE_S
    from igrm.pipeline.slurm import on_start
    from igrm.pipeline.snakejob import start_run_clock

    on_start(log)
    # the jobs this run will run, not the whole plan (a single target, a rerun)
    to_run = {}
    for job in workflow.dag.needrun_jobs():
        name, runs = job.rule.name, 1
        # an ensemble job trains K runs: K train_run jobs' worth of the estimate
        if name.startswith("train_ensemble_"):
            name, runs = "train_run", len(job.output)
        to_run[name] = to_run.get(name, 0) + runs
    print(
        start_run_clock(
            plan(config), run_cores(workflow), CPU_PASSES_PER_CORE_S, to_run
        ),
        file=sys.stderr,
    )


onsuccess:
    from igrm.pipeline.slurm import on_end
    from igrm.pipeline.snakejob import last_line, print_last

    on_end(log, failed=False)
    print_last(last_line(R, ok=True, report=config["report"]))


onerror:
    from igrm.pipeline.slurm import on_end
    from igrm.pipeline.snakejob import last_line, print_last
    from igrm.figures.results_page import write_partial

    on_end(log, failed=True)
    # what did finish (profiles/default keeps going past a failed job: an offline run still
    # makes the toys, error orders and their claims), and what did not with how to get it
    partial = write_partial(
        R, config=config, claim_parts=claim_files(), data_dir=DATA
    )
    print_last(last_line(R, ok=False, partial=partial))
