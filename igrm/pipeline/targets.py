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

from .config import num

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
# Result files of the toy and error-order simulations: one file per grid point, so that a new
# point adds a job without rerunning the others.


def sweep_files(config: Mapping[str, Any]) -> list[str]:
    """The sharpness sweep's result files, one per η of toy.sharpness_sweep.etas."""
    return [f"{R}/toy/sharpness_sweep/eta{num(e)}.h5" for e in config["toy"]["sharpness_sweep"]["etas"]]


def gdm_files(config: Mapping[str, Any]) -> list[str]:
    """GD+M error-order files, one per (problem, β) of orders.gdm."""
    g = config["orders"]["gdm"]
    return [f"{R}/orders/gdm/{p}_beta{num(b)}.h5" for p in g["problems"] for b in g["betas"]]


def sgdm_files(config: Mapping[str, Any]) -> list[str]:
    """SGD+M error-order files, one per β of orders.sgdm."""
    return [f"{R}/orders/sgdm/beta{num(b)}.h5" for b in config["orders"]["sgdm"]["betas"]]


def sgdm_real_files(config: Mapping[str, Any]) -> list[str]:
    """Real-data SGD+M files, one per β of orders.sgdm_real (none unless it is enabled)."""
    s = config["orders"]["sgdm_real"]
    if not s["enabled"]:
        return []
    return [f"{R}/orders/sgdm_real/{s['dataset']}_beta{num(b)}.h5" for b in s["betas"]]


def sgdm_real_data(config: Mapping[str, Any]) -> str:
    """The prepared dataset the real-data SGD+M study reads (rules/data.smk makes it)."""
    return f"{DATA}/{config['orders']['sgdm_real']['dataset']}.h5"


def sgdm_real_job(config: Mapping[str, Any]) -> Callable:
    """The params of one real-data SGD+M job: orders.sgdm_real with ``beta`` in place of its
    grid ``betas``, less ``enabled`` (it says whether the jobs exist at all, :func:`sgdm_real_files`)."""
    one_beta = section(config, "orders/sgdm_real", betas=("beta", float))

    def params(wildcards=None) -> dict:
        sec = one_beta(wildcards)
        sec.pop("enabled")
        return sec

    return params


def higher_files(config: Mapping[str, Any]) -> list[str]:
    """The O(h³) study's files: one per (problem, β) of orders.higher, and the limit study's
    (when orders.higher.limits.betas is not empty)."""
    hi = config["orders"]["higher"]
    out = [f"{R}/orders/gdm3/{p}_beta{num(b)}.h5" for p in hi["problems"] for b in hi["betas"]]
    if hi["limits"]["betas"]:
        out.append(f"{R}/orders/limits/two_factor.h5")
    return out


#: the result files of each error-order family (the {family} of rule tidy_orders)
ORDER_FAMILIES = {"gdm": gdm_files, "sgdm": sgdm_files, "sgdm_real": sgdm_real_files, "higher": higher_files}


def orders_files(config: Mapping[str, Any], family: str) -> list[str]:
    """The result files of one error-order family (gdm | sgdm | sgdm_real | higher)."""
    return ORDER_FAMILIES[family](config)




# ------------------------------------------------------------------------------ training


# ------------------------------------------------------------------------------ noise
