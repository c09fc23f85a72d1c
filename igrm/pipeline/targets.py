"""Where the pipeline's files are and what each job is given: the one module the rules
(rules/*.smk) and the tests share for target paths, grid enumeration and the few job
inputs that are not a plain config section.

Every function takes the merged config (defaults filled from the schema) explicitly, so a
test can call it without Snakemake. A rule's ``params`` are otherwise config sections
passed unchanged (:func:`section`), and the function a script calls has exactly that
section's keys as keyword arguments (tests/test_contract.py).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

R = "results"
TIDY = f"{R}/tidy"
DATA = "resources/data"


def at(config: Mapping[str, Any], path: str) -> Any:
    """The config node at a '/'-separated path (KeyError names the path)."""
    node: Any = config
    for part in path.split("/"):
        try:
            node = node[part]
        except (KeyError, TypeError):
            raise KeyError(f"config has no section {path!r} (at {part!r})") from None
    return node


def section(config: Mapping[str, Any], path: str, **per_job: tuple[str, Callable]) -> Callable:
    """A rule's params function: the config section at ``path``, unchanged, except that each
    grid key named in ``per_job`` (``etas=("eta", float)``) is replaced by the job's own
    wildcard value under the wildcard's name: one job runs one point of the grid."""

    def params(wildcards=None) -> dict:
        sec = dict(at(config, path))
        for key, (wildcard, cast) in per_job.items():
            sec.pop(key)
            sec[wildcard] = cast(getattr(wildcards, wildcard))
        return sec

    return params


# ------------------------------------------------------------------------------ toy, orders


# ------------------------------------------------------------------------------ training


# ------------------------------------------------------------------------------ noise
#: keys of config section ``noise`` that do not change one point's estimate: which runs and
#: epochs are probed and with how many threads (runs, points, threads), the coverage
#: simulation's population (calibration) and the verdicts' settings (min_groups,
#: theory_margin, slides_margin). The noise_point job is given the rest, so a change of a
#: verdict setting reruns the claims, not hours of estimates (tests/test_contract.py checks
#: that igrm.noise.estimate_noise takes exactly the rest).
NOISE_NOT_PER_POINT = ("runs", "points", "threads", "calibration", "min_groups", "theory_margin",
                       "slides_margin")
#: keys of config section ``noise`` that the coverage simulation reads: the design of the noise
#: jobs it reproduces and its own population (calibration; igrm.noise_calibration.simulate_coverage
#: takes exactly these). A change of calibration.min_coverage (the claims' threshold) reruns it too.
NOISE_COVERAGE_DESIGN = ("betas", "ks", "n_blocks", "n_groups", "block_len", "batch_size", "sampler",
                         "train_subset", "ci_level", "trajectory", "calibration")


def noise_run_keys(config: Mapping[str, Any]) -> set[tuple[str, str, str, int]]:
    """(method, beta, eta, seed) of every probed run, numbers as canonical text (igrm.pipeline.config.num)."""
    from .config import num

    return {(r["method"], num(r["beta"]), num(r["eta"]), int(r["seed"])) for r in config["noise"]["runs"]}


def noise_points(config: Mapping[str, Any], method: str, beta, eta, seed) -> list[int]:
    """Epochs whose parameters a training run keeps: the noise points (past the end: the
    last epoch), for a probed run; none for the others."""
    from .config import FULLBATCH, num

    if (method, num(beta), num(eta), int(seed)) not in noise_run_keys(config):
        return []
    t = config["train"]
    last = t["explicit"]["steps"] if method in FULLBATCH else t["epochs"]
    return sorted({min(int(p), last) for p in config["noise"]["points"]})


def noise_files(config: Mapping[str, Any]) -> list[str]:
    """The noise_point results: one per dataset, probed run and point."""
    from .config import num

    out = []
    for d in config["train"]["datasets"]:
        for r in config["noise"]["runs"]:
            base = (f"{R}/noise/{d}/{config['train']['model']}/{r['method']}/"
                    f"beta{num(r['beta'])}_eta{num(r['eta'])}_seed{r['seed']}")
            out += [f"{base}/epoch{p}.h5" for p in noise_points(config, r["method"], r["beta"], r["eta"], r["seed"])]
    return out


def noise_point_label(wildcards) -> str:
    """The point's label in the tables: dataset/method/beta<β>_eta<η>_seed<s>/epoch<e>."""
    w = wildcards
    return f"{w.dataset}/{w.method}/beta{w.beta}_eta{w.eta}_seed{w.seed}/epoch{w.epoch}"


def noise_point_params(config: Mapping[str, Any], wildcards) -> dict[str, Any]:
    """igrm.noise.estimate_noise's keywords for one (run, point): section ``noise`` less
    :data:`NOISE_NOT_PER_POINT`, ``augmentation`` (train.pad, train.cutout_size: the batches
    are augmented as training does) and the point's label."""
    n, t = config["noise"], config["train"]
    return {**{k: v for k, v in n.items() if k not in NOISE_NOT_PER_POINT},
            "augmentation": {"pad": t["pad"], "cutout_size": t["cutout_size"]},
            "point": noise_point_label(wildcards)}


def noise_coverage_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """igrm.noise_calibration.simulate_coverage's keywords: :data:`NOISE_COVERAGE_DESIGN` of section ``noise``."""
    return {k: config["noise"][k] for k in NOISE_COVERAGE_DESIGN}
