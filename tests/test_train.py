import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from igrm.batches import augment_batch, batch_crop
from igrm.regularizers import penalty_grad
from igrm.train import accumulate_gradient, resolve_config, step_sizes, train
from tests._train_cfg import train_cfg

torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent


def tiny_data(n_train=96, n_test=32, size=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "train/images": rng.integers(0, 256, (n_train, size, size, channels), dtype=np.uint8),
        "train/labels": rng.integers(0, 10, n_train),
        "test/images": rng.integers(0, 256, (n_test, size, size, channels), dtype=np.uint8),
        "test/labels": rng.integers(0, 10, n_test),
        "attrs": {"mean": [0.5, 0.4, 0.3][:channels], "std": [0.25, 0.2, 0.3][:channels], "num_classes": 10},
    }


BASE = train_cfg(
    model="small_cnn",
    width=0.25,
    method="sgdm",
    beta=0.9,
    lr=0.05,
    batch_size=32,
    epochs=2,
    augment=["crop+flip", "cutout"],
    cutout_size=4,
    seed=3,
    device="cpu",
    eval_batch_size=64,
    train_subset=None,
    test_subset=None,
    checkpoint_every=1,
)


# ---------------------------------------------------------------- optimiser
def test_torch_sgd_momentum_is_heavy_ball():
    """x_{k+1} = x_k - h g_k + beta (x_k - x_{k-1}), x_{-1} = x_0, on fresh mini-batches."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    params = list(model.parameters())
    h, beta = 0.1, 0.8
    opt = torch.optim.SGD(params, lr=h, momentum=beta, dampening=0, nesterov=False)
    x_hand = [p.detach().clone() for p in params]
    x_prev = [p.clone() for p in x_hand]
    gen = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(8, 4, generator=gen, dtype=torch.float64), torch.randint(0, 3, (8,), generator=gen))
        for _ in range(20)
    ]
    for xb, yb in batches:
        # the hand-written step uses the gradient at its own iterate
        with torch.no_grad():
            for p, v in zip(params, x_hand):
                p.copy_(v)
        g = torch.autograd.grad(nn.functional.cross_entropy(model(xb), yb), params)
        new = [x - h * gi + beta * (x - xp) for x, gi, xp in zip(x_hand, g, x_prev)]
        x_prev, x_hand = x_hand, new
    # torch SGD from the same start
    with torch.no_grad():
        torch.manual_seed(0)
        ref = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
        for p, q in zip(params, ref.parameters()):
            p.copy_(q)
    for xb, yb in batches:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    for p, x in zip(params, x_hand):
        torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-13)


def test_step_sizes():
    s = step_sizes(resolve_config({**BASE, "beta": 0.9, "lr": 0.1, "lr_mode": "effective"}))
    assert s["h"] == pytest.approx(0.01) and s["eta"] == pytest.approx(0.1)
    assert s["mu"] == pytest.approx(0.9 * 0.1 / (2 * 0.1))
    assert s["lambda_flow2"] == pytest.approx(1.9 * 0.01 / (4 * 0.01))
    r = step_sizes(resolve_config({**BASE, "beta": 0.5, "lr": 0.1, "lr_mode": "raw"}))
    assert r["h"] == pytest.approx(0.1) and r["eta"] == pytest.approx(0.2)


def test_unknown_and_bad_keys_are_named():
    with pytest.raises(ValueError, match="momentum"):
        resolve_config({"momentum": 0.9})
    with pytest.raises(ValueError, match="'method'"):
        resolve_config({**BASE, "method": "adam"})


def test_missing_keys_are_named_no_defaults():
    """train() has no defaults (they live in the schema): a key that does not arrive is an
    error naming it, before anything runs."""
    with pytest.raises(TypeError, match="pad"):
        resolve_config({k: v for k, v in BASE.items() if k != "pad"})
    with pytest.raises(TypeError, match="snapshot_epochs"):
        train({k: v for k, v in BASE.items() if k != "snapshot_epochs"}, tiny_data(), None, None)


# ---------------------------------------------------------------- full batch
def test_chunked_full_batch_gradient_is_exact():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).double()
    x = torch.randn(10, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (10,))
    params = list(model.parameters())
    one = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), params)
    for chunk in (3, 4, 10, 64):
        acc, loss = accumulate_gradient(model, x, y, chunk)
        assert loss == pytest.approx(float(nn.functional.cross_entropy(model(x), y).detach()), rel=1e-13)
        for a, b in zip(acc, one):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- explicit baseline
def _least_squares(seed=0, n=20, d=5):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    return A, b


def _run(A, b, method, h_or_eta, beta, K, x0, x_prev=None):
    """K steps on E = ||Ax-b||^2/(2n); returns the (K, d) iterates after each step."""
    x = x0.clone().requires_grad_(True)
    loss = lambda: ((A @ x - b) ** 2).sum() / (2 * len(b))
    mom = beta if method == "gdm" else 0.0
    opt = torch.optim.SGD([x], lr=h_or_eta, momentum=mom, dampening=0, nesterov=False)
    if x_prev is not None:  # start with the velocity of a given previous iterate
        opt.state[x]["momentum_buffer"] = (x_prev - x0) / h_or_eta  # x1 = x0 - h g + beta (x0 - x_prev)
    mu = beta * h_or_eta / (2 * (1 - beta))
    out = []
    for _ in range(K):
        if method == "explicit":
            g, pg, _ = penalty_grad(loss, [x], mu, "double_backprop", None)
            x.grad = g[0] + pg[0]
        else:
            x.grad = torch.autograd.grad(loss(), [x])[0]
        opt.step()
        out.append(x.detach().clone())
    return torch.stack(out)


def test_explicit_baseline_tracks_gdm_better_than_gd():
    A, b = _least_squares()
    beta, eta = 0.5, 0.01
    h = eta * (1 - beta)
    K = int(20 / eta)
    x0 = torch.full((A.shape[1],), 2.0, dtype=torch.float64)
    gdm = _run(A, b, "gdm", h, beta, K, x0)
    gd = _run(A, b, "gd", eta, beta, K, x0)
    exp = _run(A, b, "explicit", eta, beta, K, x0)
    e_gd = (gdm - gd).norm(dim=1)
    e_exp = (gdm - exp).norm(dim=1)
    # from rest: after the start-up transient (second half of the horizon) and at the end
    assert e_exp[K // 2 :].mean() < 0.6 * e_gd[K // 2 :].mean()
    assert e_exp[-1] < 0.5 * e_gd[-1]
    # started on the slow manifold (no start-up lag): an order of eta closer everywhere
    H = A.T @ A / len(b)
    lam, Q = torch.linalg.eigh(H)
    xs = torch.linalg.solve(H, A.T @ b / len(b))
    tr = 1 + beta - h * lam
    r1 = (tr + torch.sqrt(tr**2 - 4 * beta)) / 2
    x_prev = xs + Q @ ((Q.T @ (x0 - xs)) / r1)
    gdm_sm = _run(A, b, "gdm", h, beta, K, x0, x_prev)
    assert (gdm_sm - exp).norm(dim=1).max() < 0.1 * (gdm_sm - gd).norm(dim=1).max()


# ---------------------------------------------------------------- augmentation
def test_augmentation_shapes_and_determinism():
    x = torch.randint(0, 256, (6, 3, 12, 12), dtype=torch.uint8)
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.2, 0.2])
    for augs in (["none"], ["flip"], ["crop"], ["crop+flip"], ["cutout"], ["crop+flip", "cutout"]):
        a = augment_batch(x, augs, torch.Generator().manual_seed(5), mean, std, pad=4, cutout_size=4)
        b = augment_batch(x, augs, torch.Generator().manual_seed(5), mean, std, pad=4, cutout_size=4)
        c = augment_batch(x, augs, torch.Generator().manual_seed(6), mean, std, pad=4, cutout_size=4)
        assert a.shape == (6, 3, 12, 12) and a.dtype == torch.float32
        assert torch.equal(a, b)
        if augs != ["none"]:
            assert not torch.equal(a, c)
    # none = plain normalisation; cutout zeroes at most size^2 pixels per image and channel
    plain = augment_batch(x, ["none"], torch.Generator(), mean, std, pad=4, cutout_size=16)
    torch.testing.assert_close(plain, (x.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
    cut = augment_batch(x, ["cutout"], torch.Generator().manual_seed(0), mean, std, pad=4, cutout_size=4)
    changed = (cut != plain).all(1).flatten(1).sum(1)
    assert (changed <= 16).all() and (changed >= 4).all()


def test_crop_is_a_window_of_the_reflect_padded_image():
    x = torch.randint(0, 256, (5, 2, 8, 8), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(0)
    out = batch_crop(x, 3, gen)
    off = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(0))
    padded = nn.functional.pad(x.float(), (3,) * 4, mode="reflect")
    for i in range(5):
        dy, dx = off[0, i], off[1, i]
        assert torch.equal(out[i].float(), padded[i, :, dy : dy + 8, dx : dx + 8])
    assert out.dtype == torch.uint8


# ---------------------------------------------------------------- train()
def test_train_methods_outputs_and_determinism():
    data = tiny_data()
    for method, extra in (
        ("sgdm", {}),
        ("gdm", {"fullbatch_subset": 40, "fullbatch_chunk": 16, "epochs": 3}),
        ("igrm_explicit", {}),
    ):
        cfg = {**BASE, "method": method, **extra}
        a1, at1 = train(cfg, data, None, None)
        a2, _ = train(cfg, data, None, None)
        E = cfg["epochs"]
        for k in (
            "epoch",
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
            "grad_norm_sq",
            "lr",
            "steps",
            "wall_time",
        ):
            assert a1[k].shape == (E,), k
        assert at1["status"] == "completed" and at1["diverged_step"] == -1
        assert at1["n_params"] == sum(
            v.size
            for k, v in a1.items()
            if k.startswith("final_state/") and "running" not in k and "num_batches" not in k
        )
        assert "final_state/linear.weight" in a1
        for k in a1:
            if not k.endswith("wall_time"):
                np.testing.assert_array_equal(a1[k], a2[k], err_msg=f"{method} {k}")
        assert np.all(np.isfinite(a1["train_loss"]))
    assert at1["mu"] == pytest.approx(0.9 * 0.05 / (2 * 0.1))


def test_gdm_steps_and_lr():
    a, at = train(
        {**BASE, "method": "gdm", "fullbatch_subset": 40, "epochs": 3, "augment": ["none"]}, tiny_data(), None, None
    )
    assert at["n_train"] == 40 and at["steps_per_epoch"] == 1
    np.testing.assert_array_equal(a["steps"], [1, 2, 3])
    np.testing.assert_allclose(a["lr"], 0.05 * 0.1)


def test_divergence_is_recorded_not_raised():
    cfg = {**BASE, "lr": 1.0e4, "epochs": 3, "blowup_factor": 10.0}
    a, at = train(cfg, tiny_data(), None, None)
    assert at["status"] == "diverged"
    assert 0 <= at["diverged_step"] < 9
    assert len(a["train_loss"]) <= 3 and math.isnan(a["test_acc"][-1])


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    data = tiny_data()
    cfg = {**BASE, "epochs": 4, "checkpoint_every": 1}
    npz = tmp_path / "data.npz"
    np.savez(npz, **{k.replace("/", "__"): v for k, v in data.items() if k != "attrs"})
    ckpt = tmp_path / "ckpt"
    out = tmp_path / "out.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_train_subprocess.py"), json.dumps(cfg), str(npz), str(ckpt), str(out), "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # the child holds after epoch 2's checkpoint and progress line: kill it there
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.strip() == "HOLD":
            break
    else:
        raise AssertionError("child ended before epoch 2: " + "".join(lines)[-3000:])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    # one folder per config fingerprint, holding the newest checkpoint and the one before
    assert sorted(p.relative_to(ckpt).parts[1] for p in ckpt.rglob("ckpt_epoch*.pt")) == [
        "ckpt_epoch0001.pt",
        "ckpt_epoch0002.pt",
    ]

    torch.set_num_threads(1)
    resumed, at_r = train(
        cfg, {**data, "attrs": {"mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3], "num_classes": 10}}, ckpt, None
    )
    assert at_r["resumed_from_epoch"] == 2 and at_r["status"] == "completed"
    whole, _ = train(cfg, data, None, None)
    assert set(resumed) == set(whole)
    for k in whole:
        if not k.endswith("wall_time"):
            np.testing.assert_array_equal(resumed[k], whole[k], err_msg=k)
    # a finished run leaves its final checkpoint; starting again returns the same result at once
    again, at_a = train(cfg, data, ckpt, None)
    assert at_a["resumed_from_epoch"] == 4
    np.testing.assert_array_equal(again["final_state/linear.weight"], whole["final_state/linear.weight"])


def test_one_channel_28x28_and_schedules():
    data = tiny_data(n_train=48, n_test=16, size=28, channels=1)
    for schedule in ("cosine", "step"):
        a, at = train(
            {**BASE, "batch_size": 16, "epochs": 2, "schedule": schedule, "augment": ["crop+flip"], "train_subset": 32},
            data,
            None,
            None,
        )
        assert at["status"] == "completed" and at["n_train"] == 32 and at["steps_per_epoch"] == 2
        assert a["final_state/features.0.weight"].shape[1] == 1
        assert a["lr"][0] == pytest.approx(0.05 * 0.1) and a["lr"][1] < a["lr"][0]


def test_checkpoint_of_other_config_is_not_resumed_and_constant_runs_extend(tmp_path):
    data = tiny_data()
    cfg = {**BASE, "epochs": 2, "augment": ["none"]}
    train(cfg, data, tmp_path, None)
    _, at = train({**cfg, "lr": 0.02}, data, tmp_path, None)  # other lr: fresh start
    assert at["resumed_from_epoch"] == 0
    train(cfg, data, tmp_path / "b", None)
    longer, at = train({**cfg, "epochs": 3}, data, tmp_path / "b", None)  # extend 2 -> 3
    assert at["resumed_from_epoch"] == 2 and len(longer["train_loss"]) == 3
    whole, _ = train({**cfg, "epochs": 3}, data, None, None)
    np.testing.assert_array_equal(longer["final_state/linear.weight"], whole["final_state/linear.weight"])


def test_snapshots_are_kept_and_survive_resume(tmp_path):
    """snapshot_epochs keeps the parameter points (0 = initialisation) that the noise
    estimates use; a run resumed from a checkpoint still has the earlier snapshots."""
    data = tiny_data()
    cfg = {**BASE, "epochs": 3, "snapshot_epochs": [0, 1, 3], "checkpoint_every": 1}
    full, _ = train(cfg, data, None, None)
    snaps = sorted({k.split("/")[1] for k in full if k.startswith("snapshots/")})
    assert snaps == ["epoch0000", "epoch0001", "epoch0003"]
    for k in full:
        if k.startswith("snapshots/epoch0003/"):
            np.testing.assert_array_equal(full[k], full["final_state/" + k.split("/", 2)[2]])
    init_w = full["snapshots/epoch0000/linear.weight"]
    assert not np.array_equal(init_w, full["final_state/linear.weight"])
    # stop after epoch 2 (a shorter run under the constant schedule), then extend to 3
    train({**cfg, "epochs": 2}, data, tmp_path, None)
    resumed, at = train(cfg, data, tmp_path, None)
    assert at["resumed_from_epoch"] == 2
    for k in full:
        if k.startswith("snapshots/"):
            np.testing.assert_array_equal(resumed[k], full[k], err_msg=k)


def test_crop_from_the_set_padded_once_equals_per_batch_crop():
    """The trainer pads the uint8 set once and gathers each batch's crop from it: the same
    offsets from the same generator give exactly the pixels of batch_crop(x[idx])."""
    from igrm.batches import crop_padded, reflect_pad_u8

    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    idx = torch.tensor([3, 7, 7, 0, 49, 12])
    padded = reflect_pad_u8(x, 2, chunk=16)  # several chunks
    a = crop_padded(padded, idx, 2, torch.Generator().manual_seed(11))
    b = batch_crop(x[idx], 2, torch.Generator().manual_seed(11))
    assert a.dtype == torch.uint8 and torch.equal(a, b)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    for augs in (["crop+flip"], ["crop", "cutout"], ["crop+flip", "cutout"]):
        u = augment_batch(
            None, augs, torch.Generator().manual_seed(4), mean, std, pad=2, cutout_size=3, padded=padded, idx=idx
        )
        v = augment_batch(x[idx], augs, torch.Generator().manual_seed(4), mean, std, pad=2, cutout_size=3)
        assert torch.equal(u, v), augs


class _Payload:
    """A pickle that runs code when unpickled (writes a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_planted_checkpoint_is_not_unpickled(tmp_path):
    """A file planted as a checkpoint with a __reduce__ payload is refused by the loader
    (tensors and plain types only): the payload never runs."""
    import hashlib
    import pickle

    from igrm.train import cfg_fingerprint, fingerprint_id

    cfg = {**BASE, "epochs": 2, "checkpoint_every": 1}
    folder = tmp_path / "ckpt" / fingerprint_id(cfg_fingerprint(resolve_config(cfg), torch.device("cpu")))
    folder.mkdir(parents=True)
    marker = tmp_path / "payload-ran"
    path = folder / "ckpt_epoch0001.pt"
    torch.save({"epoch": 1, "evil": _Payload(marker)}, path)
    # without its checksum it is set aside unread; with a matching one the loader refuses it
    msgs = []
    _, at = train(cfg, tiny_data(), tmp_path / "ckpt", msgs.append)
    assert at["resumed_from_epoch"] == 0 and any("set aside" in m for m in msgs)
    torch.save({"epoch": 3, "evil": _Payload(marker)}, folder / "ckpt_epoch0002.pt")
    sha = hashlib.sha256((folder / "ckpt_epoch0002.pt").read_bytes()).hexdigest()
    (folder / "ckpt_epoch0002.pt.sha256").write_text(f"{sha}  ckpt_epoch0002.pt\n")
    with pytest.raises(pickle.UnpicklingError, match="ckpt_epoch0002.pt"):
        train(cfg, tiny_data(), tmp_path / "ckpt", None)
    assert not marker.exists()


# ---------------------------------------------------------------- checkpoints: configs, evaluation keys, damage
def _ckpts(root):
    """{epoch: path} of the checkpoints under root, any layout."""
    return {int(p.name[10:14]): p for p in Path(root).rglob("ckpt_epoch*.pt")}


def test_checkpoints_of_other_configs_do_not_shadow_each_other(tmp_path):
    """B's checkpoint is resumed although A's in the same folder is numbered higher; A's
    survives B's run and is resumed when A comes back."""
    data = tiny_data()
    a = {**BASE, "epochs": 3, "augment": ["none"]}
    b = {**a, "lr": 0.02, "epochs": 2}
    train(a, data, tmp_path, None)  # A: epochs 1..3
    train(b, data, tmp_path, None)  # B: epochs 1, 2
    _, at = train(b, data, tmp_path, None)
    assert at["resumed_from_epoch"] == 2
    ext, at = train({**a, "epochs": 4}, data, tmp_path, None)  # A extended 3 -> 4 from A's epoch 3
    assert at["resumed_from_epoch"] == 3
    whole, _ = train({**a, "epochs": 4}, data, None, None)
    np.testing.assert_array_equal(ext["final_state/linear.weight"], whole["final_state/linear.weight"])
    # per config, the newest checkpoint and the one before it are kept
    dirs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert sorted(sorted(_ckpts(d)) for d in dirs) == [[1, 2], [3, 4]]


def test_pruning_keeps_the_last_two_of_a_config(tmp_path):
    train({**BASE, "epochs": 4, "checkpoint_every": 1}, tiny_data(), tmp_path, None)
    assert sorted(_ckpts(tmp_path)) == [3, 4]


def test_evaluation_only_keys_resume_trajectory_keys_restart(tmp_path):
    data = tiny_data()
    cfg = {**BASE, "epochs": 2, "checkpoint_every": 1}
    train(cfg, data, tmp_path, None)
    evaluation_only = {
        "eval_batch_size": 16,
        "checkpoint_every": 2,
        "sharpness": {**cfg["sharpness"], "points": 2, "iters": 3},
    }
    for key, value in evaluation_only.items():
        _, at = train({**cfg, key: value}, data, tmp_path, None)
        assert at["resumed_from_epoch"] == 2, key
    # resumed mid-run under another eval_batch_size: the same trajectory as a run that used it throughout
    longer = {**cfg, "epochs": 3, "eval_batch_size": 16}
    ext, at = train(longer, data, tmp_path, None)
    assert at["resumed_from_epoch"] == 2
    whole, _ = train(longer, data, None, None)
    for k in ("train_loss", "grad_norm_sq", "final_state/linear.weight"):
        np.testing.assert_array_equal(ext[k], whole[k], err_msg=k)
    for key, value in {
        "weight_decay": 1e-3,
        "test_subset": 16,
        "pad": 2,
        "seed": 4,
        "deterministic": not cfg["deterministic"],
        "batch_size": 16,
    }.items():
        _, at = train({**cfg, key: value}, data, tmp_path, None)
        assert at["resumed_from_epoch"] == 0, key


def _damage(path, how):
    blob = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    else:  # one flipped bit in the stored linear.weight tensor
        w = torch.load(path, weights_only=True)["model"]["linear.weight"]
        at = blob.find(w.numpy().tobytes())
        assert at > 0
        pos = at + w.numel() * 2 + 1
        path.write_bytes(blob[:pos] + bytes([blob[pos] ^ 0x10]) + blob[pos + 1 :])


@pytest.mark.parametrize("how", ["truncated", "empty", "flipped"])
def test_damaged_checkpoint_is_set_aside_and_the_previous_one_resumed(tmp_path, how):
    data = tiny_data()
    cfg = {**BASE, "epochs": 3, "checkpoint_every": 1}
    whole, _ = train(cfg, data, None, None)
    # a 2-epoch run (constant schedule: extended below) leaves epochs 1 and 2; damage 2
    train({**cfg, "epochs": 2}, data, tmp_path, None)
    found = _ckpts(tmp_path)
    _damage(found[2], how)
    msgs = []
    resumed, at = train(cfg, data, tmp_path, msgs.append)
    assert at["resumed_from_epoch"] == 1, msgs
    bad = [m for m in msgs if found[2].name in m and "set aside" in m]
    assert bad and str(found[2]) in bad[0], msgs
    assert found[2].with_name(found[2].name + ".corrupt").exists()
    for k in whole:
        if not k.endswith("wall_time"):
            np.testing.assert_array_equal(resumed[k], whole[k], err_msg=k)


def test_all_checkpoints_damaged_starts_afresh_with_a_warning(tmp_path):
    data = tiny_data()
    cfg = {**BASE, "epochs": 2, "checkpoint_every": 1}
    train(cfg, data, tmp_path, None)
    for p in _ckpts(tmp_path).values():
        _damage(p, "truncated")
    msgs = []
    out, at = train(cfg, data, tmp_path, msgs.append)
    assert at["resumed_from_epoch"] == 0 and at["status"] == "completed"
    assert sum("set aside" in m for m in msgs) == 2, msgs
    whole, _ = train(cfg, data, None, None)
    np.testing.assert_array_equal(out["final_state/linear.weight"], whole["final_state/linear.weight"])


# ---------------------------------------------------------------- checkpoints: code, name, shape (docs/reliability.md)
def _plant(folder, epoch, content):
    """``content`` as ``folder/ckpt_epoch<epoch>.pt`` with a valid sha256 sidecar."""
    import hashlib
    import io

    buf = io.BytesIO()
    torch.save(content, buf)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt_epoch{epoch:04d}.pt"
    path.write_bytes(buf.getvalue())
    (folder / f"{path.name}.sha256").write_text(f"{hashlib.sha256(buf.getvalue()).hexdigest()}  {path.name}\n")
    return path


def _folder(root, cfg):
    from igrm.train import cfg_fingerprint, fingerprint_id

    return Path(root) / fingerprint_id(cfg_fingerprint(resolve_config(cfg), torch.device("cpu")))


def test_code_version_follows_the_training_jobs_code(tmp_path):
    """The hash covers the files of the rule's code input (igrm/models.py: yes; a figure module: no)."""
    import shutil

    from igrm.pipeline import code
    from igrm.pipeline.code import code_inputs, code_version

    root = HERE.parent
    shutil.copytree(root / "igrm", tmp_path / "igrm", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "scripts").mkdir()
    shutil.copy(root / "scripts" / "train_run.py", tmp_path / "scripts")
    before = code_version(tmp_path)
    assert before == code_version(root)
    assert str(tmp_path / "igrm" / "models.py") in code_inputs("train_run.py", tmp_path)
    with open(tmp_path / "igrm" / "figures" / "style.py", "a") as fh:
        fh.write("\n# not run by training\n")
    code._code_version.cache_clear()  # the hash is cached per tree
    assert code_version(tmp_path) == before
    with open(tmp_path / "igrm" / "models.py", "a") as fh:
        fh.write("\nACTIVATION = 'tanh'\n")
    code._code_version.cache_clear()
    assert code_version(tmp_path) != before


def test_code_change_retrains_instead_of_resuming(tmp_path, monkeypatch):
    import igrm.train as T

    data = tiny_data()
    cfg = {**BASE, "epochs": 2, "checkpoint_every": 1}
    train(cfg, data, tmp_path, None)
    _, at = train(cfg, data, tmp_path, None)
    assert at["resumed_from_epoch"] == 2
    monkeypatch.setattr(T, "trajectory_code", lambda script="train_run.py": "0123456789abcdef")
    msgs = []
    _, at = train(cfg, data, tmp_path, msgs.append)
    assert at["resumed_from_epoch"] == 0, msgs
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2  # the old code's folder is kept


def test_checkpoint_of_another_width_under_this_fingerprint_is_set_aside(tmp_path):
    """A checkpoint with this folder's fingerprint and a valid checksum whose tensors are of
    another width: set aside with a warning naming it, the run starts afresh (no size-mismatch error)."""
    data = tiny_data()
    narrow = {**BASE, "epochs": 1, "augment": ["none"]}
    wide = {**narrow, "width": 0.5}
    train(narrow, data, tmp_path / "a", None)
    (ck,) = _ckpts(tmp_path / "a").values()
    saved = torch.load(ck, weights_only=True)
    want = torch.load(next(iter(_ckpts(_train_once(wide, data, tmp_path / "b")).values())), weights_only=True)
    planted = _plant(_folder(tmp_path / "c", wide), 1, {**saved, "cfg": want["cfg"]})
    msgs = []
    out, at = train(wide, data, tmp_path / "c", msgs.append)
    assert at["resumed_from_epoch"] == 0 and at["status"] == "completed"
    assert any(str(planted) in m and "set aside" in m for m in msgs), msgs
    assert planted.with_name(planted.name + ".rejected").exists()


def _train_once(cfg, data, root):
    train(cfg, data, root, None)
    return root


def test_checkpoint_whose_counter_disagrees_with_its_name_is_set_aside(tmp_path):
    """ckpt_epoch0003.pt holding epoch 2: set aside; the run resumes from the true epoch 2 and
    its result has 3 epochs of arrays for epochs_completed = 3."""
    data = tiny_data()
    cfg = {**BASE, "epochs": 2, "checkpoint_every": 1, "augment": ["none"]}
    train(cfg, data, tmp_path, None)
    found = _ckpts(tmp_path)
    planted = _plant(found[2].parent, 3, torch.load(found[2], weights_only=True))
    msgs = []
    out, at = train({**cfg, "epochs": 3}, data, tmp_path, msgs.append)
    assert at["resumed_from_epoch"] == 2, msgs
    assert at["epochs_completed"] == 3 and len(out["test_acc"]) == 3
    assert any(str(planted) in m and "epoch 3" in m for m in msgs), msgs
    assert planted.with_name(planted.name + ".rejected").exists()
