"""Configuration: validation with messages that name the key, canonical numbers, run ids.

The schema (schemas/config.schema.yaml) is the single description of the config
and the one place defaults live; :func:`with_defaults` is the one function that fills
them in (the workflow, igrm.data, the tests and the benchmarks all use it).
:func:`check_config` validates with the same schema and turns every error into a
message that names the dotted config key and says how to fix it, so that a bad
value stops the workflow before any job runs; it returns the config filled in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

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
        return (
            f" YAML reads {inst!r} as a string (a float needs a decimal point before the exponent): write {suggestion}."
        )
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
        return (
            f"config key {'.'.join([key, extra[0]]) if err.absolute_path else extra[0]}: unknown key at {where}."
            + _hint(err)
        )
    desc = err.schema.get("description") if isinstance(err.schema, dict) else None
    msg = f"config key {key}: {err.message}."
    msg += _hint(err)
    if desc:
        msg += f" ({key}: {desc})"
    return msg


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any] | str | Path | None = None) -> dict:
    """The config with the schema's defaults filled in (:func:`with_defaults`), once it is valid;
    else raise :class:`ConfigError` listing every invalid key (dotted path) with a fix.

    Beyond the schema: every number must be finite (YAML .nan / .inf pass a `type: number`),
    no two entries of a grid list may name the same run once written by :func:`num`, and a
    config that plans more than ``max_jobs_without_confirm`` jobs needs
    ``confirm_large_grid: true``. These run on the config with the defaults filled in."""
    import jsonschema

    from .configfile import check_size

    check_size(config)  # an alias bomb is refused before anything below walks it
    schema = load_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    lines = _nonfinite(config)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    lines += [format_error(e) for e in errors]
    filled = None
    if not lines:
        filled = with_defaults(config, schema)
        lines = _collisions(filled) or _too_large(filled)
    if lines:
        raise ConfigError(
            "invalid configuration:\n  - "
            + "\n  - ".join(lines)
            + "\nFix the value in config.yaml (or the file given with --configfile)."
        )
    return filled


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


SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def load_schema(schema: Mapping[str, Any] | str | Path | None = None) -> Mapping[str, Any]:
    """The schema as a mapping: ``schema`` itself, the YAML file at that path, or (None) the
    repository's schemas/config.schema.yaml."""
    import yaml

    if isinstance(schema, Mapping):
        return schema
    return yaml.safe_load(Path(schema or SCHEMA_PATH).read_text())


def with_defaults(
    config: Mapping[str, Any], schema: Mapping[str, Any] | str | Path | None = None, path: str = ""
) -> dict:
    """A deep copy of ``config`` with the schema's defaults filled in: the one filler.

    Wherever the schema gives a property a ``default`` and the config lacks the key, the
    default is set, then the filler descends into it (so ``toy: {}`` gets every default of
    toy.two_factor, ...). Every mapping comes out in the schema's property order (keys the
    schema does not name, e.g. data.<name>.md5's file names, after them in their own order),
    so the merged config and every section a rule passes are the same whatever order the
    config files wrote. ``path`` ('toy/two_factor') fills one section given alone and
    returns it. It validates nothing: :func:`check_config` does, first."""
    import copy

    import jsonschema

    schema = load_schema(schema)
    parts = [p for p in path.split("/") if p]
    out: Any = copy.deepcopy(dict(config))
    for part in reversed(parts):
        out = {part: out}
    base = jsonschema.Draft202012Validator
    props = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, Mapping) and "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
            order = [k for k in properties if k in instance] + [k for k in instance if k not in properties]
            reordered = [(k, instance.pop(k)) for k in order]
            instance.update(reordered)
        yield from props(validator, properties, instance, subschema)

    filler = jsonschema.validators.extend(base, {"properties": set_defaults})
    for _ in filler(schema).iter_errors(out):
        pass
    for part in parts:
        out = out[part]
    return out


def schema_defaults(path: str = "", schema: Mapping[str, Any] | str | Path | None = None) -> dict:
    """The config section at ``path`` ('toy/two_factor', '' = all) as the schema's defaults
    fill it in (tests and benchmarks start from these): :func:`with_defaults` of nothing."""
    return with_defaults({}, schema, path)


# ------------------------------------------------------------ checks beyond the schema
# JSON Schema cannot say "finite", nor "distinct once written as a file name", nor "not
# too many jobs": these run in check_config, after the schema, on the config with the
# schema's defaults filled in, so every one of them stops the workflow before any job.

FULLBATCH = ("gdm", "igrm_explicit")

# every list whose entries become wildcards, file names or run ids (igrm.pipeline.config.num):
# two entries that num() writes the same are one run, read as many times as listed
GRID_LISTS = (
    "toy.two_factor.betas",
    "toy.sigmoid.betas",
    "toy.sharpness_sweep.etas",
    "toy.sharpness_sweep.betas",
    "toy.limit_convergence.betas",
    "toy.limit_convergence.eps",
    "orders.gdm.betas",
    "orders.sgdm.betas",
    "orders.sgdm_real.betas",
    "orders.higher.betas",
    "train.beta_grid.betas",
    "train.beta_grid.lrs",
    "train.lr_grid.lrs",
    "noise.betas",
)
# integer lists (seeds, history lengths, epochs) are written as integers, exactly: the
# schema's uniqueItems already rejects their duplicates (0 and 0.0 included)


def _nonfinite(node: Any, path: tuple = ()) -> list[str]:
    """Messages for every non-finite number (YAML .nan, .inf, -.inf) anywhere in the tree."""
    out: list[str] = []
    if isinstance(node, Mapping):
        for k, v in node.items():
            out += _nonfinite(v, (*path, k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            out += _nonfinite(v, (*path, i))
    elif isinstance(node, (float, np.floating)) and not math.isfinite(node):
        out.append(
            f"config key {_key(path)}: {node!r} is not a finite number (YAML reads .nan,"
            f" .inf and -.inf as floats); every number in the config must be finite:"
            f" write a finite value."
        )
    return out


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def effective_lr(lr: float, beta: float, lr_mode: str) -> float:
    """eta of a beta-grid entry: lr itself (effective), or h / (1 - beta) (raw h); run files
    are named by eta, so the same run asked for twice is one job."""
    return float(num(lr if lr_mode == "effective" else lr / (1.0 - beta)))


def _collisions(cfg: Mapping[str, Any]) -> list[str]:
    """Entries that name the same run / file as an earlier one once written by num()."""
    out = []
    for dotted in GRID_LISTS:
        seen: dict[str, int] = {}
        for i, v in enumerate(_get(cfg, dotted)):
            c = num(v)
            if c in seen:
                j = seen[c]
                out.append(
                    f"config key {dotted}[{i}]: {v!r} is the same value as {dotted}[{j}] ="
                    f" {_get(cfg, dotted)[j]!r} once written in file names and run ids ({c!r};"
                    f" igrm.pipeline.config.num keeps 12 significant digits), so both would be one run"
                    f" counted twice: remove one, or make them differ within 12 significant digits."
                )
            else:
                seen[c] = i
    g = cfg["train"]["beta_grid"]
    pairs: dict[tuple, tuple] = {}
    for j, lr in enumerate(g["lrs"]):
        for i, b in enumerate(g["betas"]):
            key = (num(b), num(effective_lr(lr, b, g["lr_mode"])))
            if key not in pairs:
                pairs[key] = (i, j)
                continue
            i0, j0 = pairs[key]
            if num(g["betas"][i0]) == num(b) and num(g["lrs"][j0]) != num(lr):
                # distinct learning rates that still give one eta (raw: eta = lr / (1 - beta))
                out.append(
                    f"config key train.beta_grid.lrs[{j}]: with lr_mode {g['lr_mode']!r},"
                    f" (betas[{i}], lrs[{j}]) = ({b!r}, {lr!r}) and (betas[{i0}], lrs[{j0}]) ="
                    f" ({g['betas'][i0]!r}, {g['lrs'][j0]!r}) are the same run"
                    f" beta{key[0]}_eta{key[1]}: remove one of the learning rates or make them"
                    f" differ within 12 significant digits."
                )
    e = cfg["train"]["explicit"]
    if num(e["beta"]) == "0":
        out.append(
            f"config key train.explicit.beta: {e['beta']!r} makes the explicit grid's GD+M run"
            f" the plain-GD run (both gdm/beta0_eta{num(e['eta'])}: one run read twice) and the"
            f" IGR-M penalty zero: set a beta in (0, 1), e.g. 0.9."
        )
    runs: dict[tuple, int] = {}
    for i, r in enumerate(cfg["noise"]["runs"]):
        key = (r["method"], num(r["beta"]), num(r["eta"]), int(r["seed"]))
        if key in runs:
            out.append(
                f"config key noise.runs[{i}]: the same run as noise.runs[{runs[key]}]"
                f" ({key[0]} beta{key[1]}_eta{key[2]}_seed{key[3]}): remove one."
            )
        else:
            runs.setdefault(key, i)
    t = cfg["train"]
    for i, r in enumerate(cfg["noise"]["runs"]):
        last = t["explicit"]["steps"] if r["method"] in FULLBATCH else t["epochs"]
        lastkey = "train.explicit.steps" if r["method"] in FULLBATCH else "train.epochs"
        seen = {}
        for k, p in enumerate(cfg["noise"]["points"]):
            e = min(int(p), last)
            if e in seen:
                out.append(
                    f"config key noise.points[{k}]: {p} and noise.points[{seen[e]}] ="
                    f" {cfg['noise']['points'][seen[e]]} are both epoch {e} of noise.runs[{i}]"
                    f" (points past the end are its last epoch, {lastkey} = {last}): remove one,"
                    f" or raise {lastkey}."
                )
            else:
                seen[e] = k
    return out


def training_runs(cfg: Mapping[str, Any], grid: str) -> list[tuple]:
    """(dataset, method, beta, eta, seed) of every run of one training grid of a filled-in
    config: 'beta' (SGD+M over beta), 'lr' (plain SGD over h = eta), 'explicit' (full batch:
    GD+M, GD and the explicit IGR-M baseline at one eta)."""
    t = cfg["train"]
    out = []
    for d in t["datasets"]:
        for s in t["seeds"]:
            if grid == "beta":
                g = t["beta_grid"]
                out += [(d, "sgdm", b, effective_lr(lr, b, g["lr_mode"]), s) for lr in g["lrs"] for b in g["betas"]]
            elif grid == "lr":
                out += [(d, "sgdm", 0.0, h, s) for h in t["lr_grid"]["lrs"]]
            elif grid == "explicit":
                e = t["explicit"]
                out += [
                    (d, "gdm", e["beta"], e["eta"], s),
                    (d, "gdm", 0.0, e["eta"], s),
                    (d, "igrm_explicit", e["beta"], e["eta"], s),
                ]
            else:
                raise ValueError(f"unknown training grid {grid!r}")
    return out


# training-set sizes when train_subset is null (the full training split)
TRAIN_SIZE = {"cifar10": 50000, "cifar100": 50000, "mnist": 60000, "fashion_mnist": 60000}


def plan(cfg: Mapping[str, Any]) -> dict:
    """Job counts and a rough cost of a filled-in config: the distinct training runs of the
    three grids (an upper bound: figures and tables that need fewer build fewer), the noise
    jobs, and the toy / error-order jobs; costs in examples passed forward and backward."""
    t, n = cfg["train"], cfg["noise"]
    runs = {
        (d, m, num(b), num(e), int(s)) for g in ("beta", "lr", "explicit") for d, m, b, e, s in training_runs(cfg, g)
    }
    passes = 0
    for d, m, _b, _e, _s in runs:
        size = t["train_subset"] or TRAIN_SIZE[d]
        if m in FULLBATCH:
            passes += t["explicit"]["steps"] * min(t["explicit"]["fullbatch_subset"], size)
        else:
            passes += t["epochs"] * size
    noise_keys = {(r["method"], num(r["beta"]), num(r["eta"]), int(r["seed"])) for r in n["runs"]}
    noise_jobs = 0
    for m, *_ in noise_keys:
        last = t["explicit"]["steps"] if m in FULLBATCH else t["epochs"]
        noise_jobs += len(t["datasets"]) * len({min(int(p), last) for p in n["points"]})
    k_max = max(n["ks"])
    samplers = 2 if n["sampler"] == "both" else 1
    grads = (samplers + bool(n["eval_control"])) * n["n_blocks"] * (n["block_len"] or k_max + 1)
    tr = n["trajectory"]  # runs along SGD+M (docs/noise.md §10)
    grads += len(tr["betas"]) * tr["runs"] * (max(tr["ks"]) + 1)
    other = (
        len(cfg["toy"]["sharpness_sweep"]["etas"])
        + len(cfg["orders"]["gdm"]["problems"]) * len(cfg["orders"]["gdm"]["betas"])
        + len(cfg["orders"]["sgdm"]["betas"])
        + (len(cfg["orders"]["sgdm_real"]["betas"]) if cfg["orders"]["sgdm_real"]["enabled"] else 0)
        + len(cfg["orders"]["higher"]["problems"]) * len(cfg["orders"]["higher"]["betas"])
        + (1 if cfg["orders"]["higher"]["limits"]["betas"] else 0)
        + len(t["explicit_study"]["settings"])
    )  # one job per in-range tracking setting
    return {
        "training_runs": len(runs),
        "training_passes": passes,
        "noise_jobs": noise_jobs,
        "noise_passes": noise_jobs * grads * n["batch_size"],
        "other_jobs": other,
        "jobs": len(runs) + noise_jobs + other,
    }


# rough throughput for the cost estimate, measured (docs/performance.md, "The default run,
# end to end"): ResNet-18 at width 0.125 on one CPU core, ~540 example passes per second for
# SGD training (evaluation included) and for the noise gradients alike; the default run's
# 0.66 M passes took 26.8 CPU-minutes (the double-backprop baseline is ~2x dearer). A GPU is
# orders of magnitude faster.
CPU_PASSES_PER_CORE_S = 500.0


def plan_text(p: Mapping[str, int]) -> str:
    core_h = (p["training_passes"] + p["noise_passes"]) / CPU_PASSES_PER_CORE_S / 3600
    return (
        f"igrm plan: {p['training_runs']} training runs (~{p['training_passes']:.3g} example"
        f" forward-backward passes), {p['noise_jobs']} noise jobs (~{p['noise_passes']:.3g}"
        f" passes), {p['other_jobs']} toy/error-order jobs: {p['jobs']} jobs at most;"
        f" rough cost ~{core_h:.2g} CPU core-hours at {CPU_PASSES_PER_CORE_S:g} passes/s per core"
        f" (ResNet-18 x0.125, measured, docs/performance.md; far less on a GPU)."
    )


def _too_large(cfg: Mapping[str, Any]) -> list[str]:
    p = plan(cfg)
    limit = cfg["max_jobs_without_confirm"]
    if p["jobs"] > limit and not cfg["confirm_large_grid"]:
        return [
            f"config key confirm_large_grid: this config plans {p['jobs']} jobs"
            f" ({p['training_runs']} training runs, {p['noise_jobs']} noise jobs), more than"
            f" max_jobs_without_confirm = {limit}. If that is intended, set"
            f" confirm_large_grid: true (or raise max_jobs_without_confirm); otherwise"
            f" shrink the grids (train.seeds, train.beta_grid, train.lr_grid, noise.runs)."
            f" {plan_text(p)}"
        ]
    return []


# ------------------------------------------------------------ presets and the merged config
def leaf_keys(node: Any, path: tuple = ()) -> dict[str, Any]:
    """{dotted key: value} of every leaf of a config tree (a list is one leaf)."""
    if isinstance(node, Mapping) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(leaf_keys(v, (*path, k)))
        return out
    return {_key(path): node} if path else {}


def preset_overrides(layers: list[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Warnings for every key a preset sets that a later layer changes.

    ``layers`` is [(name, config dict)] in merge order (config.yaml, each --configfile,
    --config). A layer with a top-level ``preset`` key is a preset: every key it sets is
    part of its intent, so a later layer that changes one of them gives a run that is no
    longer that preset (e.g. presets/paper.yaml with train.model small_cnn)."""
    out = []
    for i, (name, layer) in enumerate(layers):
        if not isinstance(layer, Mapping) or "preset" not in layer:
            continue
        p = layer["preset"] or {}
        label = p.get("name", name) if isinstance(p, Mapping) else name
        mine = {k: v for k, v in leaf_keys(layer).items() if not k.startswith("preset")}
        for later, other in layers[i + 1 :]:
            for k, v in leaf_keys(other).items():
                if k in mine and v != mine[k]:
                    out.append(
                        f"preset {label!r} ({name}) sets {k} = {mine[k]!r}; {later}"
                        f" changes it to {v!r}: the merged run is not that preset"
                        f" (its intent: {p.get('intent', '?') if isinstance(p, Mapping) else '?'})"
                    )
    return out


def write_merged(config: Mapping[str, Any], path: str | Path, header: list[str]) -> Path:
    """Write the merged config (after defaults) to ``path`` atomically, with the mode a plain
    ``open`` gives (igrm.pipeline.io.write_text_atomic), so a reader never sees half a file."""
    import yaml

    from .io import write_text_atomic

    text = "".join(f"# {line}\n" for line in header)
    text += yaml.safe_dump(_plain(config), sort_keys=False, default_flow_style=None, width=100)
    return write_text_atomic(path, text)


def _plain(node: Any) -> Any:
    """Plain dicts / lists / scalars (Snakemake's config may hold its own mapping types)."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if isinstance(node, np.generic):
        return node.item()
    return node
