"""The pipeline's ensemble jobs (train.ensemble: K > 1, rules train_ensemble_<name> of
rules/train.smk, igrm.pipeline.targets.ensemble_groups): one Snakemake job trains a group of
SGD runs together, and each member's result is the file, checkpoints and progress its own
train_run job would give it. One small real run (the tiny config's beta grid: two members)."""

import numpy as np
import pytest
import yaml

from igrm.pipeline.config import check_config
from igrm.pipeline.io import read_h5
from igrm.pipeline.plan import merge_layers
from igrm.pipeline.targets import checkpoint_dir, ensemble_groups, grid_files, run_log, train_job_cfg

from .conftest import REPO, snakemake
from .test_pipeline import TINY, data_config

pytestmark = pytest.mark.pipeline


def test_an_ensemble_job_writes_each_member_s_own_result(tmp_path):
    cheap = tmp_path / "ensemble.yaml"
    cheap.write_text("train:\n  ensemble: 2\n  epochs: 2\n  sharpness: {points: 0}\n")
    files = [str(TINY), str(data_config(tmp_path)), str(cheap)]
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for f in files:
        config = merge_layers(config, yaml.safe_load(open(f).read()))
    config = check_config(config)
    [group] = [g for g in ensemble_groups(config) if g["name"] == "beta_cifar10_0"]
    targets = grid_files(config, "beta")
    assert sorted(group["outputs"]) == sorted(targets)  # the tiny beta grid: two SGD+M runs, one job

    proc = snakemake("--cores", "2", *targets, "--configfile", *files, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert "rule train_ensemble_beta_cifar10_0:" in out and "rule train_run:" not in out, out[-3000:]

    from igrm.data import load_prepared
    from igrm.train import train

    data = load_prepared(tmp_path / "resources" / "data" / "cifar10.h5")
    for path, cfg in zip(targets, group["cfgs"]):
        arrays, attrs = read_h5(tmp_path / path)  # validated as every reader does (igrm.pipeline.validate)
        assert attrs["ensemble_size"] == 2 and attrs["dataset"] == "cifar10"
        run = ("cifar10", "sgdm", cfg["beta"], cfg["lr"], cfg["seed"])
        assert cfg == train_job_cfg(config, *run)
        assert any((tmp_path / checkpoint_dir(config, *run)).rglob("ckpt_epoch*.pt"))
        progress = (tmp_path / run_log(*run)).with_suffix(".progress.csv").read_text().splitlines()
        assert len(progress) == 1 + cfg["epochs"]  # header, one row per epoch
        # what the run gives alone, to the tolerance of tests/test_ensemble.py (grouped kernels
        # sum in another order); the 100 test images: equal or one image apart
        solo, _ = train(cfg, data, None, None)
        np.testing.assert_allclose(arrays["train_loss"], solo["train_loss"], rtol=1e-4)
        assert np.max(np.abs(arrays["test_acc"] - solo["test_acc"])) <= 1 / 100 + 1e-12
