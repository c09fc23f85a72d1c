"""Snakemake entry point for 'data' rules (see igrm/smk.py: _data)."""
import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (igrm without install)

from igrm.smk import run  # noqa: E402

run(snakemake, "data")  # noqa: F821 (injected by Snakemake)
