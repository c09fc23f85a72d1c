# Datasets (docs/data.md): download (verified against the published checksum before
# anything is parsed) -> prepare (uint8 HDF5, once). Retrieved inputs live in resources/.


rule download_data:
    """Fetch a dataset's archives (official URL, then mirrors; or a local copy)."""
    output:
        f"{DATA}/raw/{{dataset}}/manifest.json",
    log:
        "logs/data/download_{dataset}.log",
    retries: 2
    localrule: True
    conda:
        "../envs/science.yaml"
    params:
        task="download",
        cfg=data_cfg,
    script:
        "../scripts/data.py"


rule prepare_data:
    """Parse the verified archives into uint8 arrays (HDF5) with source and checksums."""
    input:
        rules.download_data.output,
    output:
        f"{DATA}/{{dataset}}.h5",
    log:
        "logs/data/prepare_{dataset}.log",
    conda:
        "../envs/science.yaml"
    params:
        task="prepare",
        cfg=data_cfg,
    script:
        "../scripts/data.py"
