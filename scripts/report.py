"""results/report.zip (rule make_report): `snakemake --report` for exactly this run's
resolved config (written to a temporary YAML for the nested call)."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from igrm.pipeline.snakejob import logged

smk = snakemake
with logged(smk) as log:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(dict(smk.params.cfg), fh, sort_keys=False)
        cfg_path = fh.name
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
            str(smk.output[0]),
            "--configfile",
            cfg_path,
        ]
        log.info("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log.info("%s%s", proc.stdout[-4000:], proc.stderr[-8000:])
        if proc.returncode != 0 or not Path(smk.output[0]).exists():
            raise RuntimeError(f"snakemake --report failed ({proc.returncode}); see {smk.log[0]}")
    finally:
        os.unlink(cfg_path)
