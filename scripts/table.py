"""Snakemake entry point for 'table' rules: parse inputs, call igrm, write outputs.

The rule's `params.task` names the igrm function (registry in igrm/pipeline.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (igrm without install)

from igrm.smk import run  # noqa: E402

run(snakemake, "table")  # noqa: F821 (injected by Snakemake)
