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
