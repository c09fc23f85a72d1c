"""Every shipped preset is a valid configuration, and the workflow plans it (dry run)."""

import re

import pytest
import yaml

from .conftest import REPO, snakemake

PRESETS = sorted((REPO / "presets").glob("*.yaml"))


@pytest.mark.pipeline
@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_plans(tmp_path, preset):
    proc = snakemake("--cores", "1", "-n", "--configfile", str(preset), cwd=tmp_path, timeout=300)
    out = proc.stdout + proc.stderr
    assert "train_run" in out
    # its datasets are prepared, and the noise stage probes runs of those datasets only
    default = yaml.safe_load((REPO / "config.yaml").read_text())["train"]["datasets"]
    datasets = (yaml.safe_load(preset.read_text()).get("train") or {}).get("datasets", default)
    for d in datasets:
        assert f"resources/data/{d}.h5" in out, d
    probed = set(re.findall(r"results/noise/(\w+)/", out))
    assert probed and probed <= set(datasets), probed
    assert not (tmp_path / "results").exists()
