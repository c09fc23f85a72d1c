"""igrm.pipeline.targets, training region: run paths, grid files, the cfg of a training job
(igrm.train.TRAIN_KEYS exactly), the runs' snapshot epochs, the analysis eta."""

import copy

from igrm.pipeline.config import schema_defaults
from igrm.pipeline.targets import (
    analysis_eta,
    checkpoint_dir,
    ensemble_groups,
    explicit_study_data,
    grid_files,
    run_log,
    run_path,
    snapshot_epochs,
    train_job_cfg,
)
from igrm.train import TRAIN_KEYS, resolve_config

DEFAULTS = schema_defaults()


def config(**train):
    c = copy.deepcopy(DEFAULTS)
    c["train"].update(train)
    return c


def test_paths():
    c = config(model="small_cnn")
    assert run_path(c, "cifar10", "sgdm", 0.9, 0.1, 2) == "results/train/cifar10/small_cnn/sgdm/beta0.9_eta0.1_seed2"
    assert (
        checkpoint_dir(c, "cifar10", "gdm", 0.0, 0.10, 0)
        == "results/checkpoints/cifar10/small_cnn/gdm/beta0_eta0.1_seed0"
    )
    c["train"]["explicit"].update(beta=0.9, eta=0.1)
    c["train"]["datasets"], c["train"]["seeds"] = ["cifar10"], [0]
    assert grid_files(c, "explicit") == [
        f"results/train/cifar10/small_cnn/{m}/beta{b}_eta0.1_seed0.h5"
        for m, b in (("gdm", "0.9"), ("gdm", "0"), ("igrm_explicit", "0.9"))
    ]
    c["train"]["explicit_study"]["dataset"] = None
    assert explicit_study_data(c) == "resources/data/cifar10.h5"


def test_train_job_cfg_is_train_keys_and_full_batch_reads_train_explicit():
    c = config(epochs=7, checkpoint_every=3, augment=["flip"], test_subset=100)
    c["train"]["explicit"].update(steps=40, fullbatch_subset=64, test_subset=50)
    sgd = train_job_cfg(c, "cifar10", "sgdm", 0.9, 0.1, 1)
    assert set(sgd) == set(TRAIN_KEYS)
    assert (sgd["epochs"], sgd["checkpoint_every"], sgd["augment"], sgd["test_subset"], sgd["fullbatch_subset"]) == (
        7,
        3,
        ["flip"],
        100,
        None,
    )
    assert (sgd["method"], sgd["beta"], sgd["lr"], sgd["lr_mode"], sgd["seed"]) == ("sgdm", 0.9, 0.1, "effective", 1)
    gd = train_job_cfg(c, "cifar10", "igrm_explicit", 0.9, 0.1, 1)
    assert (gd["epochs"], gd["checkpoint_every"], gd["augment"], gd["test_subset"], gd["fullbatch_subset"]) == (
        40,
        4,
        ["none"],
        50,
        64,
    )
    resolve_config(gd)  # a complete, valid cfg


def test_snapshot_epochs_only_for_probed_runs():
    c = config(epochs=10)
    c["train"]["explicit"]["steps"] = 20
    c["noise"]["runs"] = [
        {"method": "sgdm", "beta": 0.9, "eta": 0.1, "seed": 0},
        {"method": "gdm", "beta": 0.9, "eta": 0.1, "seed": 0},
    ]
    c["noise"]["points"] = [0, 5, 15]
    assert snapshot_epochs(c, "sgdm", 0.9, 0.1, 0) == [0, 5, 10]
    assert snapshot_epochs(c, "gdm", 0.9, 0.1, 0) == [0, 5, 15]
    assert snapshot_epochs(c, "sgdm", 0.9, 0.1, 1) == []
    assert train_job_cfg(c, "cifar10", "sgdm", 0.90, 0.1, 0)["snapshot_epochs"] == [0, 5, 10]


def test_analysis_eta():
    c = config()
    c["train"]["beta_grid"].update(lrs=[0.1], betas=[0.0, 0.9], lr_mode="effective")
    assert analysis_eta(c) == 0.1
    c["train"]["beta_grid"]["lrs"] = [0.1, 0.2]
    assert analysis_eta(c) is None


def test_ensemble_groups_cover_every_sgd_run_once_k_at_a_time():
    from igrm.ensemble import check_members

    c = config(datasets=["cifar10", "mnist"], seeds=[0, 1, 2])
    c["train"]["beta_grid"].update(betas=[0.0, 0.5, 0.9], lrs=[0.1], lr_mode="effective")
    c["train"]["lr_grid"]["lrs"] = [0.05, 0.1]  # 0.1: the beta grid's beta-0 run, in both grids
    sgd = {f for g in ("beta", "lr") for f in grid_files(c, g)}
    assert len(sgd) == 2 * 3 * 4  # datasets x seeds x (3 betas + the one other lr)
    assert ensemble_groups(c) == []  # train.ensemble 1 (the default): no ensemble job
    for k in (2, 3, 100):
        c["train"]["ensemble"] = k
        groups = ensemble_groups(c)
        outputs = [f for g in groups for f in g["outputs"]]
        assert sorted(outputs) == sorted(sgd)  # each SGD run in exactly one group, no full-batch run
        assert len({g["name"] for g in groups}) == len(groups)
        for g in groups:
            assert 1 <= len(g["outputs"]) <= k
            check_members(g["cfgs"])  # SGD+M runs that agree on igrm.ensemble.SHARED_KEYS (else ValueError)
            assert all(f"/{g['dataset']}/" in f for f in g["outputs"])
            for f, cfg, ck, log in zip(g["outputs"], g["cfgs"], g["checkpoint_dirs"], g["logs"]):
                run = (g["dataset"], "sgdm", cfg["beta"], cfg["lr"], cfg["seed"])
                assert (f, cfg, ck, log) == (
                    run_path(c, *run) + ".h5",
                    train_job_cfg(c, *run),
                    checkpoint_dir(c, *run),
                    run_log(*run),
                )
    assert len(groups) == 4  # k = 100: one job per (grid, dataset)
