"""The whole workflow on a tiny config: every figure, table and claim; reruns are no-ops;
one figure is rebuilt alone."""

import json
import os
import re
import time
from types import SimpleNamespace

import h5py
import pandas as pd
import pytest
import yaml

from igrm.pipeline.config import with_defaults
from igrm.pipeline.targets import built_figures

from .conftest import REPO, snakemake

pytestmark = pytest.mark.pipeline

TINY = REPO / "tests" / "configs" / "tiny.yaml"
# the figures `all` builds: the one list of figures, the schema's (its default: every figure),
# less those of optional studies the tiny config does not run (igrm.pipeline.targets.built_figures)
FIGURES = built_figures(with_defaults(yaml.safe_load(TINY.read_text())))
TABLES = ["sharpness", "orders_gdm_slopes", "orders_sgdm_slopes", "cifar_final", "claims", "claims_summary"]


def data_config(wd):
    """A small CIFAR-10 archive in the real binary format, given to the pipeline as a
    local source with its checksum (data.cifar10.local / md5): no network."""
    from .archives import make_cifar10, md5_of

    archive, _ = make_cifar10(wd / "staged" / "cifar-10-binary.tar.gz", n_per_batch=40, n_test=100)
    cfg = wd / "data.yaml"
    cfg.write_text(f"data:\n  cifar10:\n    local: {archive}\n    md5: {{cifar-10-binary.tar.gz: {md5_of(archive)}}}\n")
    return cfg


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    wd = tmp_path_factory.mktemp("pipeline")
    args = ["--configfile", str(TINY), str(data_config(wd))]
    snakemake("--cores", "2", *args, cwd=wd)
    return SimpleNamespace(path=wd, args=args)


def test_every_figure_and_table_is_built(workdir):
    for name in FIGURES:
        for ext in ("pdf", "png"):
            f = workdir.path / "results" / "figures" / f"{name}.{ext}"
            assert f.stat().st_size > 1000, f
    for name in TABLES:
        for ext in ("csv", "md", "tex"):
            assert (workdir.path / "results" / "tables" / f"{name}.{ext}").stat().st_size > 0


def test_claims_table_has_every_part(workdir):
    claims = pd.read_csv(workdir.path / "results" / "tables" / "claims.csv")
    assert set(claims.columns) >= {"id", "claim", "expected", "measured", "tolerance", "verdict"}
    prefixes = {i.split("/")[0] + "/" + i.split("/")[1] for i in claims["id"]}
    assert {"order/gdm", "order/sgdm"} <= prefixes, prefixes
    assert any(i.startswith("toy/") for i in claims["id"])
    assert any(i.startswith("cifar/") for i in claims["id"])
    # noise rows for both probed points (init and end) and both samplers
    noise = claims[claims["id"].str.startswith("noise/")]
    assert {"epoch0", "epoch3"} <= {i.split("/")[-2] for i in noise["id"] if not i.endswith("/force")}
    assert claims["verdict"].isin(["reproduces", "does not reproduce", "inconclusive", "out of range"]).all()
    # one GD+M order row per (problem, beta, comparison, flow) of the tiny grid
    gdm = claims[claims["id"].str.startswith("order/gdm/")]
    assert len(gdm) == 2 * 2 * 4 * 2


def test_claims_summary_is_one_line_per_paper_claim(workdir):
    """claims_summary: every row of the claims table counted under exactly one paper claim,
    the verdict read off the in-range decided rows, and each line's link lands on its section."""
    tables = workdir.path / "results" / "tables"
    claims = pd.read_csv(tables / "claims.csv")
    summary = pd.read_csv(tables / "claims_summary.csv")
    verdicts = ["reproduces", "does not reproduce", "inconclusive", "out of range"]
    assert summary[verdicts].to_numpy().sum() == len(claims)
    by_claim = claims.groupby("paper_claim")["verdict"].value_counts().unstack(fill_value=0)
    for _, line in summary.iterrows():
        key = line["rows"].split("#")[1]
        assert [line[v] for v in verdicts] == [int(by_claim.loc[key].get(v, 0)) for v in verdicts], key
        rep, fail = line["reproduces"], line["does not reproduce"]
        expected = (
            f"mixed ({rep} of {rep + fail} decided in-range rows reproduce, {fail} "
            f"{'does' if fail == 1 else 'do'} not; rows not corrected for multiplicity)"
            if rep and fail
            else "reproduces where decided"
            if rep and line["inconclusive"]
            else "reproduces"
            if rep
            else "does not reproduce"
            if fail
            else "inconclusive"
            if line["inconclusive"]
            else "out of range"
        )
        assert line["verdict"] == expected, line.to_dict()
        assert line["headline_id"] in set(claims.loc[claims["paper_claim"] == key, "id"])
    detail = (tables / "claims.md").read_text()
    assert {m for m in re.findall(r'<a id="([^"]+)"></a>', detail)} == set(claims["paper_claim"])
    md = (tables / "claims_summary.md").read_text()
    assert md.count("](claims.md#") == len(summary)
    tex = (tables / "claims.tex").read_text()
    assert r"\begin{longtable}" in tex and tex.count(r"\\") > len(claims)
    assert r"\begin{tabular}" in (tables / "claims_summary.tex").read_text()


def test_results_page_opens_on_the_claims_summary(workdir):
    """results/index.html (rule results_page): one summary row per claim line, then every figure
    of the config with its image (tests/test_results_page.py loads such a page in Chromium)."""
    page = (workdir.path / "results" / "index.html").read_text()
    summary = pd.read_csv(workdir.path / "results" / "tables" / "claims_summary.csv")
    first = page.index('<table id="claims-summary"')
    assert first < page.index("<figure")
    assert page[first : page.index("</table>", first)].count("<tr data-claim=") == len(summary)
    for name in FIGURES:
        assert f'src="figures/{name}.png"' in page, name


def test_figures_pass_the_layout_check(workdir):
    """Every figure of the run: labelled axes, no legend over data, no overlapping tick labels
    (igrm.figures.style.layout_problems, logged by save() into the figure rule's log)."""
    logs = sorted((workdir.path / "logs" / "figures").glob("*.log"))
    assert len(logs) >= len(FIGURES), logs
    problems = [line for p in logs for line in p.read_text().splitlines() if "figure layout" in line]
    assert not problems, "\n".join(problems)


def test_result_files_carry_provenance(workdir):
    files = sorted((workdir.path / "results").rglob("*.h5"))
    assert len(files) >= 1 + 2 + 1 + 4 + 1 + 6 + 2
    for f in files:
        with h5py.File(f) as h:
            for key in ("config", "versions", "git_commit", "started", "finished", "status", "host"):
                assert key in h.attrs, (f, key)
            assert h.attrs["status"] in ("completed", "diverged")
    assert not list((workdir.path / "results").rglob("*.part"))


def test_rerun_does_nothing(workdir):
    proc = snakemake("--cores", "2", *workdir.args, "-n", cwd=workdir.path)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_all_builds_the_report_with_every_figure_and_table(workdir):
    import zipfile

    assert (workdir.path / "results" / "report.zip").exists(), "`all` builds the report (config key report)"
    with zipfile.ZipFile(workdir.path / "results" / "report.zip") as z:
        names = z.namelist()
        # the report embeds its pages as JSON strings: quotes inside them are escaped
        html = z.read("report/report.html").decode().replace('\\"', '"')
    raw = {n.split("/")[3] for n in names if n.startswith("report/data/raw/") and n.count("/") >= 4}
    assert len(raw) == len(FIGURES) + len(TABLES) + 1, sorted(raw)  # + claims_summary.html (rule results_page)
    for category in ("Toy problems", "Modified-flow error orders", "CIFAR training", "Gradient noise", "Claims"):
        assert category in html
    assert "one line per claim of the paper" in html  # the claims summary opens the claims category
    assert "The claims summary" in html and 'id="glossary"' in html  # and the report's first page


def test_one_figure_rebuilds_alone(workdir):
    results = workdir.path / "results"
    before = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    for ext in ("pdf", "png"):
        os.remove(results / "figures" / f"sigmoid.{ext}")
    time.sleep(0.05)
    proc = snakemake("fig_sigmoid", "--cores", "2", *workdir.args, cwd=workdir.path)
    log = proc.stdout + proc.stderr
    assert "fig_sigmoid" in log
    after = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    changed = {p.name for p in after if before.get(p) != after[p]}
    assert changed == {"sigmoid.pdf", "sigmoid.png"}, changed
    # what was made from the deleted figure is stale: removed (igrm.pipeline.stale), and the
    # next `all` remakes it; nothing else is touched
    gone = {p.relative_to(results).as_posix() for p in before if p not in after}
    assert gone == {"index.html", "findings.md", "tables/claims_summary.html", "report.zip"}, gone


def test_lint_is_clean(tmp_path):
    proc = snakemake("--lint", "--cores", "1", cwd=REPO, timeout=120)
    assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_every_rule_names_its_own_script():
    """No dispatch by string: every rule with a script has one of its own (a named target
    has none), and each script exists."""
    text = "".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    scripts = re.findall(r'^    script:\n        "\.\./scripts/(\S+)"', text, re.M)
    assert scripts and len(scripts) == len(set(scripts)), sorted(scripts)
    for s in scripts:
        assert (REPO / "scripts" / s).is_file(), s
    assert "task=" not in text and not (REPO / "igrm" / "pipeline.py").exists()


def test_min_seeds_setting_reaches_the_claims(workdir):
    """train.analysis.min_seeds reaches the CIFAR and run-sharpness claims rules (and only what uses it): a new
    value makes exactly that job's params change. (The tiny grid has one seed, so every row
    is inconclusive; tests/test_cifar.py checks the rule the rows then use.)"""
    other = workdir.path / "minseeds4.yaml"
    other.write_text("train:\n  analysis: {spread_window: 2, min_seeds: 4}\n")
    proc = snakemake("--cores", "1", *workdir.args, str(other), "-n", cwd=workdir.path)
    out = proc.stdout + proc.stderr
    jobs = set(re.findall(r"^(?:local)?rule (\w+):$", out, re.M))
    assert jobs == {
        "claims_cifar",
        "claims_eos",
        "claims_explicit_study",
        "claims_sharpness_runs",
        "table_claims",
        "results_page",
        "make_report",
        "all",
    }, jobs
    assert "'min_seeds': 3" in out and "'min_seeds': 4" in out, out[-3000:]


def test_noise_jobs_get_the_augmentation_setting(workdir):
    """noise.augment (and train.cutout_size, in `augmentation`) reach every noise job: stored in
    its result's provenance, and a change makes the noise jobs (only them and what follows) outdated."""
    files = sorted(f for f in (workdir.path / "results" / "noise").rglob("*.h5") if f.name != "calibration.h5")
    assert files
    for f in files:
        with h5py.File(f) as h:
            cfg = json.loads(h.attrs["config"])
        assert cfg["augment"] == ["none"] and cfg["augmentation"]["cutout_size"] == 16, cfg
    other = workdir.path / "flip.yaml"
    other.write_text("noise:\n  augment: [flip]\n")
    proc = snakemake("--cores", "1", *workdir.args, str(other), "-n", cwd=workdir.path)
    out = proc.stdout + proc.stderr
    jobs = set(re.findall(r"^rule (\w+):$", out, re.M)) | set(re.findall(r"^localrule (\w+):$", out, re.M))
    assert "noise_point" in jobs, out[-3000:]
    assert "train_run" not in jobs and "toy_two_factor" not in jobs, jobs


def test_code_change_outdates_its_results(workdir):
    """A result whose igrm code changed is outdated: an edit of igrm/problems.py (used by
    the toy and order simulations) reruns those and what depends on them, nothing else. A
    newer file with the same content is not a change (Snakemake compares checksums)."""
    path = REPO / "igrm" / "problems.py"
    text, st = path.read_bytes(), path.stat()

    def outdated():
        proc = snakemake("--cores", "1", *workdir.args, "-n", cwd=workdir.path)
        out = proc.stdout + proc.stderr
        # the report (and `all`) follow any rebuilt figure, here the one test_one_figure_rebuilds_alone redrew
        return set(re.findall(r"^(?:local)?rule (\w+):$", out, re.M)) - {"results_page", "make_report", "all"}, out

    try:
        os.utime(path, ns=(st.st_atime_ns, time.time_ns() + 10**9))
        assert outdated()[0] == set()
        path.write_bytes(text + b"\n# an edit\n")
        os.utime(path, ns=(st.st_atime_ns, time.time_ns() + 10**9))
        jobs, out = outdated()
    finally:
        path.write_bytes(text)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert {"toy_two_factor", "toy_sigmoid", "order_gdm"} <= jobs, out[-3000:]
    assert "train_run" not in jobs and "noise_point" not in jobs, jobs
    assert "igrm/problems.py" in out
