"""resources/data/raw/{dataset}/manifest.json (rule download_data): fetch and verify a
dataset's archives (igrm.data.download); the manifest says which file came from where."""

import json
from pathlib import Path

from igrm.data import download, read_source_info, spec_for
from igrm.pipeline.io import write_text_atomic
from igrm.pipeline.snakejob import logged

with logged(snakemake):
    name = snakemake.wildcards.dataset
    # transport keys (mirrors, local, retries, timeouts) from the config, not params: rules/data.smk
    cfg = {**snakemake.config["data"][name], **snakemake.params.cfg}
    out = Path(snakemake.output.manifest)
    files = download(spec_for(name, cfg), out.parent, cfg)
    manifest = {"dataset": name, "files": [{"path": str(f), **(read_source_info(f) or {})} for f in files]}
    write_text_atomic(out, json.dumps(manifest, indent=2, sort_keys=True))
