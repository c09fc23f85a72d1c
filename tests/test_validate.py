"""Result and prepared-data files are checked when read (igrm.pipeline.validate, through
igrm.pipeline.io.read_h5): the hostile files are built here with h5py; each is refused with
an error that names the file and what is wrong (docs/reliability.md, "Files read back")."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from igrm.data import load_prepared
from igrm.pipeline.io import read_h5, write_h5
from igrm.pipeline.validate import ResultFileError
from igrm.tidy.runs import tidy_runs

N = 3
CFG = {"dataset": "cifar10", "model": "small_cnn", "width": 0.5, "method": "sgdm", "beta": 0.9, "lr": 0.1}
CFG |= {"lr_mode": "effective", "batch_size": 32, "seed": 0}


def run_arrays(n=N):
    acc = np.linspace(0.2, 0.5, n)
    return {
        "epoch": np.arange(1, n + 1),
        "train_loss": np.linspace(2.0, 1.0, n),
        "train_acc": acc,
        "test_loss": np.linspace(2.1, 1.2, n),
        "test_acc": acc - 0.05,
        "grad_norm_sq": np.ones(n),
        "lr": np.full(n, 0.01),
        "steps": np.arange(1, n + 1) * 10,
        "wall_time": np.arange(1, n + 1, dtype=float),
    }


def good_run(tmp_path, *, arrays=None, status="completed", config=CFG, name="beta0.9_eta0.1_seed0.h5", **attrs):
    path = tmp_path / "results/train/cifar10/small_cnn/sgdm" / name
    attrs = {"epochs_completed": N, "dataset": "cifar10", **attrs}
    prov = {} if config is None else {"config": json.dumps(config)}
    return write_h5(path, run_arrays() if arrays is None else arrays, attrs, prov, status=status)


def refused(path, *words):
    with pytest.raises(ResultFileError) as e:
        read_h5(path)
    msg = str(e.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_a_good_run_reads_and_tidies(tmp_path):
    arrays, attrs = read_h5(good_run(tmp_path))
    np.testing.assert_array_equal(arrays["test_acc"], run_arrays()["test_acc"])
    assert len(tidy_runs([(arrays, attrs)], spread_window=2)["finals"]) == 1


@pytest.mark.parametrize("how", ["truncated", "empty", "random"])
def test_unreadable_files_are_named(tmp_path, how):
    path = good_run(tmp_path)
    blob = path.read_bytes()
    path.write_bytes({"truncated": blob[: len(blob) // 2], "empty": b"", "random": np.random.bytes(4096)}[how])
    refused(path, "not a readable HDF5 file")


def test_external_storage_is_refused(tmp_path):
    """test_acc stored in another local file: that file's bytes are never read."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.full(N, 0.25).tobytes())
    path = good_run(tmp_path)
    with h5py.File(path, "a") as f:
        del f["test_acc"]
        f.create_dataset("test_acc", shape=(N,), dtype="f8", external=[(str(secret), 0, 8 * N)])
    refused(path, "external storage", "secret.bin")


def test_external_link_and_virtual_dataset_are_refused(tmp_path):
    other = write_h5(tmp_path / "other.h5", {"x": np.full(N, 0.3)})
    path = good_run(tmp_path)
    with h5py.File(path, "a") as f:
        del f["test_acc"]
        f["test_acc"] = h5py.ExternalLink(str(other), "x")
    refused(path, "external link")
    path = good_run(tmp_path, name="beta0.9_eta0.1_seed1.h5", config={**CFG, "seed": 1})
    with h5py.File(path, "a") as f:
        del f["test_acc"]
        layout = h5py.VirtualLayout(shape=(N,), dtype="f8")
        layout[:] = h5py.VirtualSource(str(other), "x", shape=(N,))
        f.create_virtual_dataset("test_acc", layout)
    refused(path, "virtual dataset")


@pytest.mark.parametrize("status", ["failed", "running"])
def test_unfinished_status_is_refused(tmp_path, status):
    refused(good_run(tmp_path, status=status), repr(status))


def test_accuracy_out_of_range_and_nan_are_refused_unless_diverged(tmp_path):
    a = run_arrays()
    refused(good_run(tmp_path, arrays={**a, "test_acc": a["test_acc"] * 100}), "outside [0, 1]")
    nan_last = {**a, "test_acc": np.r_[a["test_acc"][:-1], np.nan]}
    refused(good_run(tmp_path, arrays=nan_last), "not finite at epoch 3")
    arrays, attrs = read_h5(good_run(tmp_path, arrays=nan_last, status="diverged"))
    assert attrs["status"] == "diverged"


def test_test_metrics_may_be_nan_only_between_evaluations(tmp_path):
    """Full-batch runs evaluate every train.explicit.eval_every-th step and the last (NaN in
    between): accepted there, refused at an evaluated epoch or without the attribute."""
    a = run_arrays()
    between = {**a, "test_acc": np.r_[np.nan, a["test_acc"][1:]], "test_loss": np.r_[np.nan, a["test_loss"][1:]]}
    arrays, _ = read_h5(good_run(tmp_path, arrays=between, eval_every=2))
    assert np.isnan(arrays["test_acc"][0]) and np.isfinite(arrays["test_acc"][-1])
    refused(good_run(tmp_path, arrays=between), "test_loss is not finite at epoch 1")
    at_eval = {**a, "test_acc": np.r_[a["test_acc"][0], np.nan, a["test_acc"][2]]}
    refused(good_run(tmp_path, arrays=at_eval, eval_every=2), "test_acc is not finite at epoch 2")
    refused(good_run(tmp_path, arrays=between, eval_every=0), "eval_every is 0")


def test_file_at_another_runs_path_is_refused(tmp_path):
    """The beta-0.9 path holding a beta-0 run; a run in another method's folder."""
    refused(good_run(tmp_path, config={**CFG, "beta": 0.0}), "beta 0.9", "beta 0.0")
    refused(good_run(tmp_path, config={**CFG, "seed": 4}), "seed")
    refused(good_run(tmp_path, config={**CFG, "method": "gdm"}), "'sgdm'", "gdm")


@pytest.mark.parametrize(
    "bad,words",
    [
        ({"test_acc": None}, ["'test_acc'", "missing"]),
        ({"test_acc": np.full(N - 1, 0.3)}, ["2 epochs"]),
        ({"test_acc": np.full((N, 2), 0.3)}, ["not a 1-D numeric array"]),
        ({"test_acc": np.float64(0.3)}, ["not a 1-D numeric array"]),
        ({"test_acc": np.array(["a", "b", "c"])}, ["not a 1-D numeric array"]),
    ],
)
def test_malformed_run_arrays_are_named(tmp_path, bad, words):
    a = {**run_arrays(), **bad}
    refused(good_run(tmp_path, arrays={k: v for k, v in a.items() if v is not None}), *words)


def test_missing_config_and_epoch_count_are_refused(tmp_path):
    refused(good_run(tmp_path, config=None), "no 'config' attribute")
    refused(good_run(tmp_path, epochs_completed=5), "epochs_completed is 5")


def prepared(tmp_path, **over):
    rng = np.random.default_rng(0)
    arrays = {
        "train/images": rng.integers(0, 256, (8, 4, 4, 3), dtype=np.uint8),
        "train/labels": rng.integers(0, 10, 8),
        "test/images": rng.integers(0, 256, (4, 4, 4, 3), dtype=np.uint8),
        "test/labels": rng.integers(0, 10, 4),
        **over,
    }
    prov = {"config": json.dumps({"dataset": "cifar10"})}
    return write_h5(tmp_path / "resources/data/cifar10.h5", arrays, {"num_classes": 10}, prov)


def test_prepared_datasets_are_checked(tmp_path):
    assert load_prepared(prepared(tmp_path))["train/images"].shape == (8, 4, 4, 3)
    path = prepared(tmp_path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ResultFileError, match="not a readable HDF5 file") as e:
        load_prepared(path)
    assert str(path) in str(e.value)
    refused(prepared(tmp_path, **{"test/labels": np.arange(4) + 20}), "test/labels outside [0, 10)")
    refused(prepared(tmp_path, **{"train/images": np.zeros((8, 4, 4, 3))}), "train/images is float64")
    path = prepared(tmp_path)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(8 * 48))
    with h5py.File(path, "a") as f:
        del f["train/images"]
        f.create_dataset("train/images", shape=(8, 4, 4, 3), dtype="u1", external=[(str(secret), 0, 8 * 48)])
    refused(path, "external storage")
