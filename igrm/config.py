"""Configuration: validation with messages that name the key, canonical numbers, run ids.

The schema (schemas/config.schema.yaml) is the single description of the config
and carries the defaults; Snakemake's ``validate`` fills them in. Before that,
:func:`check_config` validates with the same schema and turns every error into a
message that names the dotted config key and says how to fix it, so that a bad
value stops the workflow before any job runs.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

FLOAT_LIKE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and the fix."""


def _key(path: Iterable[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _hint(err) -> str:
    inst = err.instance
    if err.validator == "type" and isinstance(inst, str) and FLOAT_LIKE.match(inst.strip()):
        fixed = inst.strip()
        mant, _, exp = fixed.lower().partition("e")
        if "." not in mant:
            mant += ".0"
        suggestion = f"{mant}e{exp}" if exp else mant
        return (f" YAML reads {inst!r} as a string (a float needs a decimal point before the exponent):"
                f" write {suggestion}.")
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(inst) - set(allowed))
        return _did_you_mean(extra[0] if extra else "", allowed) + f" Known keys here: {', '.join(allowed)}."
    if err.validator == "enum":
        return _did_you_mean(str(inst), [str(v) for v in err.validator_value])
    return ""


def _did_you_mean(word: str, options) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def format_error(err) -> str:
    key = _key(err.absolute_path)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        where = key if err.absolute_path else "the top level"
        return f"config key {'.'.join([key, extra[0]]) if err.absolute_path else extra[0]}: unknown key at {where}." + _hint(err)
    desc = err.schema.get("description") if isinstance(err.schema, dict) else None
    msg = f"config key {key}: {err.message}."
    msg += _hint(err)
    if desc:
        msg += f" ({key}: {desc})"
    return msg


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any] | str | Path) -> None:
    """Raise :class:`ConfigError` listing every invalid key (dotted path) with a fix."""
    import jsonschema
    import yaml

    if not isinstance(schema, Mapping):
        schema = yaml.safe_load(Path(schema).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [format_error(e) for e in errors]
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(lines)
                          + "\nFix the value in config.yaml (or the file given with --configfile).")


def num(x: float) -> str:
    """Canonical text of a number for file names and run ids.

    0.9, 0.90 and 9e-1 all give "0.9"; 1e-2 gives "0.01"; 1e-5 gives "1e-05".
    """
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"cannot name a run with non-finite value {x}")
    s = format(x, ".12g")
    return s


def canonical(text: str, key: str = "value") -> float:
    """Parse a wildcard value and insist it is written canonically, so that
    `beta0.9` and `beta0.90` can never both exist."""
    try:
        x = float(text)
    except ValueError as exc:
        raise ValueError(f"{key}={text!r} is not a number") from exc
    if num(x) != text:
        raise ValueError(f"{key}={text!r} is not in canonical form; use {num(x)!r}")
    return x


def run_id(**params: Any) -> str:
    """Run id from parameters, in one place: `beta0.9_eta0.01_seed0` (sorted keys
    unless the caller's order is meaningful — keyword order is kept)."""
    parts = []
    for k, v in params.items():
        if isinstance(v, (float, int, np.floating, np.integer)) and not isinstance(v, bool):
            v = num(v)
        parts.append(f"{k}{v}")
    return "_".join(parts)


def geometric_grid(spec: Mapping[str, Any]) -> np.ndarray:
    """{min, max, num} -> geometric grid (ascending)."""
    return np.geomspace(float(spec["min"]), float(spec["max"]), int(spec["num"]))


SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


def schema_defaults(path: str = "", schema: str | Path = SCHEMA_PATH) -> dict:
    """The config section at ``path`` ('toy/two_factor', '' = all) as the schema's defaults
    fill it in: the one place defaults live (tests and benchmarks start from these)."""
    import copy

    from snakemake.utils import validate

    cfg: dict = {}
    validate(cfg, str(schema), set_default=True)
    node: Any = cfg
    for part in [p for p in path.split("/") if p]:
        node = node[part]
    return copy.deepcopy(node)
