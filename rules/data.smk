# Datasets (docs/data.md): download (verified against the published checksum before
# anything is parsed) -> prepare (uint8 HDF5, once). Retrieved inputs live in resources/.
#
# Only what changes the bytes of the data is a param (Snakemake reruns a job whose params
# change, and then everything downstream): the md5 overrides. How the bytes are fetched
# (mirrors, local, retries, backoff_s, timeout_s, progress_s) the scripts read from the
# config itself, so changing it reruns nothing; every archive is MD5-verified whatever its source.

from igrm.data import bytes_cfg


rule download_data:
    """Fetch a dataset's archives (official URL, then mirrors; or a local copy)."""
    input:
        code=code_inputs("data/download.py"),
    output:
        manifest=f"{DATA}/raw/{{dataset}}/manifest.json",
    log:
        "logs/data/download_{dataset}.log",
    # not rerun by Snakemake (not even with --retries / profiles): igrm.data.download already
    # retries transient errors per URL (data.<name>.retries), and a DownloadError, printed
    # with its ways out, would only be printed again
    retries: 0
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        cfg=lambda wc: bytes_cfg(config["data"][wc.dataset]),
    script:
        "../scripts/data/download.py"


rule prepare_data:
    """Parse the verified archives into uint8 arrays (HDF5) with source and checksums."""
    input:
        manifest=rules.download_data.output.manifest,
        code=code_inputs("data/prepare.py"),
    output:
        data=f"{DATA}/{{dataset}}.h5",
    log:
        "logs/data/prepare_{dataset}.log",
    conda:
        "../envs/science.yaml"
    params:
        cfg=lambda wc: bytes_cfg(config["data"][wc.dataset]),
    script:
        "../scripts/data/prepare.py"


rule download:
    """Every configured dataset's archives, downloaded and verified (named target)."""
    input:
        expand(rules.download_data.output.manifest, dataset=config["train"]["datasets"]),
    localrule: True


rule prepare:
    """Every configured dataset parsed into resources/data/<name>.h5 (named target)."""
    input:
        expand(rules.prepare_data.output.data, dataset=config["train"]["datasets"]),
    localrule: True
