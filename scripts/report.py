"""results/report.zip (rule make_report): `snakemake --report` for exactly this run's
resolved config. The nested call writes into a hidden folder beside the output
(``.report.zip.part/report.zip``: the zip's inner folder is named after its stem) and the
zip is renamed into place once complete, so results/report.zip only ever appears whole.
Its config is logs/report.config.yaml (a record beside the log, like logs/config.merged.yaml;
no temporary file holds the config, so none can be left behind by a kill)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from igrm.pipeline.io import write_text_atomic
from igrm.pipeline.snakejob import logged

smk = snakemake
with logged(smk) as log:
    out = Path(smk.output[0])
    staging = out.parent / f".{out.name}.part"
    shutil.rmtree(staging, ignore_errors=True)  # what a killed report left
    staging.mkdir(parents=True)
    cfg_path = Path(smk.log[0]).with_name("report.config.yaml")
    write_text_atomic(cfg_path, yaml.safe_dump(dict(smk.params.cfg), sort_keys=False))
    try:
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(smk.params.snakefile),
            "--directory",
            os.getcwd(),
            "--nolock",
            "--cores",
            "1",
            "--report",
            str(staging / out.name),
            "--configfile",
            str(cfg_path),
        ]
        log.info("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log.info("%s%s", proc.stdout[-4000:], proc.stderr[-8000:])
        if proc.returncode != 0 or not (staging / out.name).exists():
            raise RuntimeError(f"snakemake --report failed ({proc.returncode}); see {smk.log[0]}")
        os.replace(staging / out.name, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
