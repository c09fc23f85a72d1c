"""The glue between Snakemake's ``snakemake`` object and igrm's pipeline tasks.

Every script in scripts/ is one line: ``run(snakemake, kind)``. This module sends
the job's output to its log, looks up ``params.task`` in the registry
(igrm/pipeline.py), reads the inputs, calls the task and writes the outputs
atomically (HDF5 with provenance for simulations, CSV for tidy tables, PDF+PNG
for figures, CSV/Markdown/LaTeX for tables).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

log = logging.getLogger("igrm")


@contextlib.contextmanager
def logging_to(path):
    """Send stdout, stderr and the igrm logger to the rule's log file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = fh
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield fh
        except BaseException:
            log.exception("job failed")
            raise
        finally:
            root.removeHandler(handler)
            sys.stdout, sys.stderr = old_out, old_err


def _named_inputs(smk) -> dict[str, str]:
    named = dict(smk.input.items())
    if not named:
        raise ValueError("this rule kind needs named inputs (input: name=path)")
    return named


def _group_by_stem(paths) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = defaultdict(list)
    for p in map(Path, paths):
        groups[p.with_suffix("").name].append(p)
    return dict(groups)


def run(smk, kind: str) -> None:
    from . import pipeline

    with logging_to(smk.log[0]):
        task_name = smk.params.task
        task = pipeline.task(kind, task_name) if kind not in ("data", "train", "report") else None
        cfg = getattr(smk.params, "cfg", None)
        cfg = dict(cfg) if cfg is not None else None
        log.info("%s task %s (rule %s, wildcards %s)", kind, task_name, smk.rule, dict(smk.wildcards.items()))
        t0 = time.perf_counter()
        if kind == "simulate":
            _simulate(smk, task, cfg)
        elif kind == "tidy":
            _tidy(smk, task, cfg)
        elif kind == "plot":
            _plot(smk, task, cfg)
        elif kind == "table":
            _table(smk, task, cfg)
        elif kind == "data":
            _data(smk, task_name, cfg)
        elif kind == "report":
            _report(smk, cfg)
        elif kind == "train" and task_name == "noise":
            _noise(smk, cfg)
        elif kind == "train":
            _train(smk, cfg)
        else:
            raise ValueError(f"unknown script kind {kind!r}")
        log.info("done in %.2f s", time.perf_counter() - t0)


def _simulate(smk, task, cfg):
    from .io import now_iso, provenance, write_h5

    started = now_iso()
    t0 = time.perf_counter()
    arrays, attrs = task(cfg)
    attrs = dict(attrs)
    attrs["wall_time_s"] = time.perf_counter() - t0
    status = attrs.pop("status", "completed")
    prov = provenance(config=cfg, seed=(cfg or {}).get("seed"), started=started)
    write_h5(smk.output[0], arrays, attrs, prov, status=status)
    log.info("wrote %s (status %s)", smk.output[0], status)


def _tidy(smk, task, cfg=None):
    from .io import read_h5, write_text_atomic

    results = [read_h5(p) for p in smk.input]
    tables = task(results, cfg)
    outputs = dict(smk.output.items())
    missing = set(outputs) - set(tables)
    if missing:
        raise KeyError(f"task returned no table for output(s) {sorted(missing)}")
    for name, path in outputs.items():
        write_text_atomic(path, tables[name].to_csv(index=False))
        log.info("wrote %s (%d rows)", path, len(tables[name]))


def _read_inputs(smk):
    import pandas as pd

    return {name: pd.read_csv(path) for name, path in _named_inputs(smk).items()}


def _plot(smk, task, cfg):
    task(_read_inputs(smk), cfg, list(smk.output))
    log.info("wrote %s", ", ".join(smk.output))


def _table(smk, task, cfg):
    """Table tasks return {stem: (DataFrame, caption)}; each stem's outputs
    (.csv/.md/.tex) are written from it."""
    from .io import write_table

    if len(smk.input) and not dict(smk.input.items()):
        import pandas as pd

        inputs = [pd.read_csv(p) for p in smk.input]  # unnamed list (e.g. claim parts)
    else:
        inputs = _read_inputs(smk)
    tables = task(inputs, cfg)
    groups = _group_by_stem(smk.output)
    missing = set(groups) - set(tables)
    if missing:
        raise KeyError(f"task returned no table for output(s) {sorted(missing)}")
    for stem, paths in groups.items():
        df, caption = tables[stem]
        write_table(df, paths, caption=caption)
        log.info("wrote %s", ", ".join(map(str, paths)))


def _data(smk, task_name, cfg):
    """download: fetch + verify the archives, write a manifest (JSON) of what came from
    where; prepare: parse the manifest's archives into one HDF5 file."""
    import json

    from . import data
    from .io import write_text_atomic

    name = smk.wildcards.dataset
    spec = data.spec_for(name, cfg)
    if task_name == "download":
        out = Path(smk.output[0])
        files = data.download(spec, out.parent, cfg)
        manifest = {"dataset": name, "files": [
            {"path": str(f), **(data.read_source_info(f) or {})} for f in files]}
        write_text_atomic(out, json.dumps(manifest, indent=2, sort_keys=True))
    elif task_name == "prepare":
        manifest = json.loads(Path(smk.input[0]).read_text())
        data.prepare(spec, [f["path"] for f in manifest["files"]], smk.output[0], cfg)
    else:
        raise KeyError(f"no data task {task_name!r} (params.task); known: download, prepare")
    log.info("%s %s: wrote %s", task_name, name, smk.output[0])


def _train(smk, cfg):
    """One training run: the prepared dataset in, one HDF5 file out; resume checkpoints
    live in params.checkpoint_dir, outside the declared outputs (Snakemake deletes
    declared outputs before a retry)."""
    from .gpuslots import acquire_gpu

    # one machine, several GPUs: each concurrent GPU job takes its own device (a flock
    # slot) before CUDA initialises; under SLURM, CUDA_VISIBLE_DEVICES is already set
    with acquire_gpu(count=int(smk.resources.get("gpu", 0) or 0)):
        _train_on_device(smk, cfg)


def _train_on_device(smk, cfg):
    import torch

    from .data import load_prepared
    from .io import now_iso, provenance, write_h5
    from .train import train

    torch.set_num_threads(max(1, int(smk.threads)))
    started = now_iso()
    data = load_prepared(smk.input.data)
    arrays, attrs = train(cfg, data, checkpoint_dir=Path(smk.params.checkpoint_dir), progress=log)
    attrs = dict(attrs)
    attrs["dataset"] = smk.wildcards.dataset
    prov = provenance(config={**cfg, "dataset": smk.wildcards.dataset}, seed=cfg.get("seed"),
                      device=str(attrs.get("device", "cpu")), started=started)
    status = attrs.pop("status", "completed")
    write_h5(smk.output[0], arrays, attrs, prov, status=status)
    log.info("wrote %s (status %s)", smk.output[0], status)


def _noise(smk, cfg):
    """Gradient-noise estimates at one saved parameter point (snapshot) of a training run."""
    from .gpuslots import acquire_gpu

    with acquire_gpu(count=int(smk.resources.get("gpu", 0) or 0)):
        _noise_on_device(smk, cfg)


def _noise_on_device(smk, cfg):
    import torch

    from .data import load_prepared
    from .io import now_iso, provenance, read_h5, write_h5
    from .noise import estimate_noise, model_state_from_run

    torch.set_num_threads(max(1, int(smk.threads)))
    started = now_iso()
    arrays, attrs = read_h5(smk.input.run)
    epoch = int(smk.wildcards.epoch)
    state = model_state_from_run(arrays, attrs, prefix=f"snapshots/epoch{epoch:04d}/")
    data = load_prepared(smk.input.data)
    out, out_attrs = estimate_noise(cfg, state, data)
    out_attrs = {**out_attrs, "dataset": smk.wildcards.dataset, "run": str(smk.input.run), "epoch": epoch}
    prov = provenance(config=cfg, seed=cfg.get("seed"), device=str(out_attrs.get("device", "cpu")),
                      started=started)
    write_h5(smk.output[0], out, out_attrs, prov)
    log.info("wrote %s", smk.output[0])


def _report(smk, cfg):
    """`snakemake --report` for this run's resolved config (written to a temporary YAML so
    the nested call sees exactly the config of this run), into the rule's output."""
    import os
    import subprocess
    import tempfile

    import yaml

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(cfg, fh, sort_keys=False)
        cfg_path = fh.name
    try:
        cmd = [sys.executable, "-m", "snakemake", "-s", str(smk.params.snakefile), "--directory", os.getcwd(),
               "--nolock", "--cores", "1", "--report", str(smk.output[0]), "--configfile", cfg_path]
        log.info("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log.info("%s%s", proc.stdout[-4000:], proc.stderr[-8000:])
        if proc.returncode != 0 or not Path(smk.output[0]).exists():
            raise RuntimeError(f"snakemake --report failed ({proc.returncode}); see {smk.log[0]}")
    finally:
        os.unlink(cfg_path)
