"""Outputs that Snakemake's mtimes would keep although stale (igrm.pipeline.stale): a file
restored with an old mtime, an intermediate edited by hand. The job records are built here in
Snakemake's format (.snakemake/metadata/<urlsafe base64 of the output>, docs/reliability.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time

from igrm.pipeline.stale import check, find, runs_jobs


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def job(wd, output, inputs: dict, start, end, text="made\n"):
    """``output`` written at ``end`` by a job that read ``inputs`` ({path: text}), and its record."""
    (wd / output).parent.mkdir(parents=True, exist_ok=True)
    (wd / output).write_text(text)
    os.utime(wd / output, (end, end))
    meta = wd / ".snakemake" / "metadata"
    meta.mkdir(parents=True, exist_ok=True)
    rec = {"input_checksums": {f: sha(t) for f, t in inputs.items()}, "starttime": start, "endtime": end}
    rec["incomplete"] = False
    (meta / base64.urlsafe_b64encode(output.encode()).decode()).write_text(json.dumps(rec))


def pipeline(wd):
    """train.h5 -> tidy.csv -> claims.csv, an hour ago; returns the time base."""
    t = time.time() - 3600
    job(wd, "results/train/run.h5", {}, t, t + 10, text="good run\n")
    job(wd, "results/tidy/finals.csv", {"results/train/run.h5": "good run\n"}, t + 20, t + 21, text="acc\n0.5\n")
    job(wd, "results/claims/cifar.csv", {"results/tidy/finals.csv": "acc\n0.5\n"}, t + 30, t + 31)
    return t


def test_a_fresh_run_has_nothing_stale(tmp_path):
    pipeline(tmp_path)
    assert find(tmp_path) == ([], [], [])
    assert check(tmp_path, warn=lambda m: None) == []


def test_restored_input_with_an_old_mtime_is_marked_newer(tmp_path):
    """A bad run was tidied; the good one restored with cp -p (its old mtime): the tidy table is remade."""
    t = pipeline(tmp_path)
    run = tmp_path / "results/train/run.h5"
    job(tmp_path, "results/tidy/finals.csv", {"results/train/run.h5": "bad run\n"}, t + 40, t + 41, text="acc\n27\n")
    os.utime(run, (t + 10, t + 10))  # the good file, restored with its own old mtime
    assert find(tmp_path)[0] == [("results/train/run.h5", "results/tidy/finals.csv")]
    msgs = []
    check(tmp_path, act=False, warn=msgs.append)
    assert run.stat().st_mtime == t + 10 and "results/train/run.h5" in msgs[0] and "finals.csv" in msgs[0]
    check(tmp_path, warn=msgs.append)
    assert run.stat().st_mtime > (tmp_path / "results/tidy/finals.csv").stat().st_mtime


def test_hand_edited_intermediate_is_set_aside_and_rebuilt(tmp_path):
    pipeline(tmp_path)
    tidy = tmp_path / "results/tidy/finals.csv"
    tidy.write_text("acc\n0.9\n")  # edited now, after both its job and the claims job read it
    assert find(tmp_path)[1] == [("results/tidy/finals.csv", "results/claims/cifar.csv")]
    msgs = []
    check(tmp_path, act=False, warn=msgs.append)
    assert tidy.exists() and "results/tidy/finals.csv" in msgs[0] and "by hand" in msgs[0]
    check(tmp_path, warn=msgs.append)
    assert not tidy.exists() and (tmp_path / "results/tidy/finals.csv.edited").read_text() == "acc\n0.9\n"
    # what was made from it goes too: Snakemake would not remake a gone intermediate otherwise
    assert not (tmp_path / "results/claims/cifar.csv").exists()


def test_a_rule_rewriting_its_output_is_not_an_edit(tmp_path):
    """finals.csv remade by its job (record updated); claims not yet rerun: Snakemake's own case."""
    t = pipeline(tmp_path)
    job(tmp_path, "results/tidy/finals.csv", {"results/train/run.h5": "good run\n"}, t + 50, t + 51, text="acc\n0.6\n")
    assert find(tmp_path) == ([], [], [])


def test_runs_jobs_reads_the_command_line():
    assert runs_jobs(["snakemake", "--cores", "2", "all"])
    for no in (["-n"], ["-np"], ["--dry-run"], ["--report", "r.zip"], ["--lint"], ["--touch"], ["--list-rules"]):
        assert not runs_jobs(["snakemake", *no]), no


def test_another_runs_files_are_named_with_what_to_do(tmp_path):
    """A second run over files the first one is writing: say that run holds them (not --cleanup-metadata)."""
    from igrm.pipeline.stale import concurrent_note

    sm = tmp_path / ".snakemake"
    (sm / "locks").mkdir(parents=True)
    (sm / "incomplete").mkdir()
    assert concurrent_note(tmp_path) is None
    held = "results/figures/sigmoid.pdf"
    (sm / "locks" / "0.output.lock").write_text(f"{held}\nresults/figures/other.pdf\n")
    (sm / "incomplete" / base64.urlsafe_b64encode(held.encode()).decode()).write_text("{}")
    note = concurrent_note(tmp_path)
    assert held in note and "other.pdf" not in note
    assert (
        "wait for it to finish" in note and "another results folder" in note and "Do not use --cleanup-metadata" in note
    )


def test_intermediate_gone_while_its_consumer_exists_is_remade(tmp_path):
    """claims_cifar killed mid-write: Snakemake had deleted results/claims/cifar.csv; the claims
    table made from it exists, so Snakemake alone would say "Nothing to be done"."""
    t = pipeline(tmp_path)
    meta = tmp_path / ".snakemake" / "metadata"
    job(tmp_path, "results/tables/claims.csv", {"results/claims/cifar.csv": "made\n"}, t + 40, t + 41)
    rec = meta / base64.urlsafe_b64encode(b"results/tables/claims.csv").decode()
    rec.write_text(json.dumps({**json.loads(rec.read_text()), "input": ["results/claims/cifar.csv"]}))
    assert find(tmp_path)[2] == []
    (tmp_path / "results/claims/cifar.csv").unlink()
    assert find(tmp_path)[2] == [("results/claims/cifar.csv", "results/tables/claims.csv")]
    msgs = []
    check(tmp_path, act=False, warn=msgs.append)
    assert (tmp_path / "results/tables/claims.csv").exists() and "results/claims/cifar.csv" in msgs[0]
    check(tmp_path, warn=msgs.append)
    assert not (tmp_path / "results/tables/claims.csv").exists()
    assert len(msgs) == 2  # one for the dry run, one for the real one


def test_everything_made_from_a_gone_file_goes_down_to_the_last_output(tmp_path):
    """The tidy table gone: the claims made from it and the table made from those are removed
    too (Snakemake remakes a missing file only for a consumer that is missing or outdated)."""
    t = pipeline(tmp_path)
    job(tmp_path, "results/tables/claims.csv", {"results/claims/cifar.csv": "made\n"}, t + 40, t + 41)
    (tmp_path / "results/tidy/finals.csv").unlink()
    msgs = []
    check(tmp_path, warn=msgs.append)
    assert not (tmp_path / "results/claims/cifar.csv").exists()
    assert not (tmp_path / "results/tables/claims.csv").exists()
    assert (tmp_path / "results/train/run.h5").exists()
    assert len(msgs) == 1 and "results/tidy/finals.csv" in msgs[0]
