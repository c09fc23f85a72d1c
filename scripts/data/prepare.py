"""resources/data/{dataset}.h5 (rule prepare_data): the verified archives of the manifest
parsed into uint8 arrays with sources and checksums (igrm.data.prepare)."""

import json
from pathlib import Path

from igrm.data import prepare, spec_for
from igrm.pipeline.snakejob import logged

with logged(snakemake):
    name = snakemake.wildcards.dataset
    # params hold only the md5 overrides (rules/data.smk); the rest is recorded as provenance
    cfg = {**snakemake.config["data"][name], **snakemake.params.cfg}
    manifest = json.loads(Path(snakemake.input.manifest).read_text())
    prepare(spec_for(name, cfg), [f["path"] for f in manifest["files"]], snakemake.output.data, cfg)
