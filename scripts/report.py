"""Snakemake entry point for the report rule (see igrm/smk.py: _report)."""
import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (igrm without install)

from igrm.smk import run  # noqa: E402

run(snakemake, "report")  # noqa: F821 (injected by Snakemake)
