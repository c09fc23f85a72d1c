"""Every shipped preset is a valid configuration, and the workflow plans it (dry run)."""

import pytest

from .conftest import REPO, snakemake

PRESETS = sorted((REPO / "presets").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_plans(tmp_path, preset):
    proc = snakemake("--cores", "1", "-n", "--configfile", str(preset), cwd=tmp_path, timeout=300)
    out = proc.stdout + proc.stderr
    assert "train_run" in out
    assert not (tmp_path / "results").exists()
