"""Snakemake entry point for 'train' rules (see igrm/smk.py: _train)."""
import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (igrm without install)

from igrm.smk import run  # noqa: E402

run(snakemake, "train")  # noqa: F821 (injected by Snakemake)
