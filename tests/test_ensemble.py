"""igrm.ensemble: several SGD+M runs trained together (one vmapped step) give each run what
igrm.train.train gives it alone (issue 25). Small CPU runs, seconds each."""

import shutil

import numpy as np
import pytest

from igrm.ensemble import check_members, train_ensemble
from igrm.train import train

from .test_train import BASE, tiny_data

CFG = {**BASE, "epochs": 2, "sharpness": {**BASE["sharpness"], "points": 2}}
MEMBERS = [
    {**CFG, "seed": s, "beta": b, "lr": lr}
    for s, b, lr in ((0, 0.9, 0.05), (1, 0.5, 0.05), (2, 0.0, 0.1), (3, 0.8, 0.02))
]


def _states(a):
    return [k for k in a if k.startswith("final_state/") and a[k].dtype.kind == "f"]


def test_one_member_is_the_plain_path_bit_for_bit(tmp_path):
    data = tiny_data()
    plain, a_plain = train(CFG, data, tmp_path / "p", None)
    [(ens, a_ens)] = train_ensemble([CFG], data, [tmp_path / "e"], [None])
    assert set(ens) == set(plain)
    for k in plain:
        if not k.endswith("wall_time"):
            np.testing.assert_array_equal(ens[k], plain[k], err_msg=k)
    assert a_ens["ensemble_size"] == 1
    assert {k: v for k, v in a_ens.items() if k != "ensemble_size"} == a_plain


def test_each_member_matches_its_solo_run_after_one_step():
    data = tiny_data()
    one = [{**m, "epochs": 1, "train_subset": 32} for m in MEMBERS]  # 32 examples, batch 32: one step
    out = train_ensemble(one, data, [None] * 4, [None] * 4)
    for cfg, (a, at) in zip(one, out):
        solo, _ = train(cfg, data, None, None)
        assert at["steps"] == 1
        for k in _states(solo):
            np.testing.assert_allclose(a[k], solo[k], rtol=1e-5, atol=1e-6, err_msg=k)
        np.testing.assert_allclose(a["train_loss"], solo["train_loss"], rtol=1e-6)
    # the members differ from each other (own init, order, beta): no member copied another's
    assert len({float(a["train_loss"][0]) for a, _ in out}) == 4


def test_members_stay_equivalent_to_their_solo_runs_over_a_short_run():
    data = tiny_data()
    long = [{**m, "epochs": 4} for m in MEMBERS]
    out = train_ensemble(long, data, [None] * 4, [None] * 4)
    ens_acc, solo_acc = [], []
    for cfg, (a, _) in zip(long, out):
        solo, _ = train(cfg, data, None, None)
        np.testing.assert_allclose(a["train_loss"], solo["train_loss"], rtol=1e-4)
        # the test accuracy of 32 images: equal, or one image apart where rounding flips a prediction
        assert np.max(np.abs(a["test_acc"] - solo["test_acc"])) <= 1 / 32 + 1e-12
        ens_acc.append(a["test_acc"][-1])
        solo_acc.append(solo["test_acc"][-1])
    assert abs(np.mean(ens_acc) - np.mean(solo_acc)) <= 1 / 32 + 1e-12


def test_resume_works_per_member(tmp_path):
    data = tiny_data()
    dirs = [tmp_path / f"m{i}" for i in range(4)]
    whole = train_ensemble([{**m, "epochs": 3} for m in MEMBERS], data, [None] * 4, [None] * 4)
    train_ensemble(MEMBERS, data, dirs, [None] * 4)  # 2 epochs, checkpointed every epoch
    # member 3 lost its epoch-2 checkpoint: it resumes from epoch 1, catches up alone, then joins
    (folder,) = [p for p in dirs[3].iterdir() if p.is_dir()]
    for p in folder.glob("ckpt_epoch0002.pt*"):
        p.unlink()
    msgs = [[] for _ in range(4)]
    out = train_ensemble([{**m, "epochs": 3} for m in MEMBERS], data, dirs, [x.append for x in msgs])
    assert [at["resumed_from_epoch"] for _, at in out] == [2, 2, 2, 1]
    for i, ((a, _), (w, _)) in enumerate(zip(out, whole)):
        for k in ("train_loss", "test_acc", "grad_norm_sq", *_states(w)):
            if i < 3:  # resumed where the uninterrupted ensemble was: the same steps, bit for bit
                np.testing.assert_array_equal(a[k], w[k], err_msg=f"member {i} {k}")
            else:  # one epoch alone (the plain step), then vmapped again: equal to rounding
                np.testing.assert_allclose(a[k], w[k], rtol=1e-4, atol=1e-5, err_msg=f"member {i} {k}")
    shutil.rmtree(tmp_path)


def test_members_must_share_the_step_s_shapes():
    with pytest.raises(ValueError, match="batch_size"):
        check_members([CFG, {**CFG, "batch_size": 16}])
    with pytest.raises(ValueError, match="trains with igrm.train.train"):
        check_members([{**CFG, "method": "gdm"}])


def test_a_job_s_runs_are_grouped_k_at_a_time():
    from igrm.ensemble import train_runs

    data = tiny_data()
    one = {**CFG, "epochs": 1}
    cfgs = [{**one, "seed": s} for s in (0, 1, 2)] + [{**one, "method": "gdm", "fullbatch_subset": 40}]
    out = train_runs(cfgs, data, [None] * 4, [None] * 4, ensemble=2)
    pair = train_ensemble(cfgs[:2], data, [None] * 2, [None] * 2)
    for (a, at), (b, _) in zip(out[:2], pair):
        assert at["ensemble_size"] == 2
        np.testing.assert_array_equal(a["final_state/linear.weight"], b["final_state/linear.weight"])
    for a, at in out[2:]:  # the third SGD+M run alone, the full-batch run by igrm.train.train
        assert at.get("ensemble_size", 1) == 1
    gd, _ = train(cfgs[3], data, None, None)
    np.testing.assert_array_equal(out[3][0]["final_state/linear.weight"], gd["final_state/linear.weight"])


def test_a_lone_run_never_resumes_an_ensembles_checkpoint(tmp_path):
    """Checkpoints carry the code of the job that wrote them (igrm.train.trajectory_code of
    scripts/train_ensemble.py vs train_run.py): the ensemble's are not the lone run's."""
    data = tiny_data()
    one = {**CFG, "epochs": 1}
    train_ensemble([one], data, [tmp_path], [None])
    _, at = train(one, data, tmp_path, None)
    assert at["resumed_from_epoch"] == 0
    assert len([p for p in tmp_path.iterdir() if p.is_dir() and p.name != "epoch0"]) == 2
    [(_, again)] = train_ensemble([one], data, [tmp_path], [None])
    assert again["resumed_from_epoch"] == 1  # its own checkpoint still resumes
