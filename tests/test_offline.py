"""An offline first run (no network, no dataset): the download fails with its ways out, the
offline preset among them, and the run keeps going: the toys, the error orders and their claims
are made; the partial summary and results page list what was not run and how to get it."""

from __future__ import annotations

import pandas as pd
import pytest

from .conftest import REPO, snakemake

pytestmark = pytest.mark.pipeline

TINY = REPO / "tests" / "configs" / "tiny.yaml"
DEAD = "http://127.0.0.1:9"  # a dead proxy: no request leaves the machine
# two data-free figures (one with claims), one that needs the training runs, and the claims table
SMALL = """\
figures: [sigmoid, orders_sgdm, acc_vs_beta]
tables: [claims]
report: false
data:
  cifar10: {retries: 0, backoff_s: 0.1, timeout_s: 5}
"""


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    wd = tmp_path_factory.mktemp("offline")
    (wd / "small.yaml").write_text(SMALL)
    proc = snakemake(
        "--cores",
        "2",
        "--configfile",
        str(TINY),
        str(wd / "small.yaml"),
        cwd=wd,
        check=False,
        as_user=True,  # the console profiles/default gives
        env={"HTTPS_PROXY": DEAD, "https_proxy": DEAD, "HTTP_PROXY": DEAD, "http_proxy": DEAD, "NO_PROXY": ""},
    )
    return wd, proc.returncode, proc.stdout + proc.stderr


def test_offline_run_makes_the_data_free_part(offline):
    wd, rc, out = offline
    assert rc != 0, "a dataset could not be obtained: the run says so by its exit status"
    for name in ("sigmoid", "orders_sgdm"):
        assert (wd / "results" / "figures" / f"{name}.png").stat().st_size > 1000, out[-3000:]
    assert not (wd / "results" / "figures" / "acc_vs_beta.png").exists()
    for part in ("orders_sgdm",):
        assert len(pd.read_csv(wd / "results" / "claims" / f"{part}.csv")), part


def test_download_error_names_the_offline_preset(offline):
    wd, _, out = offline
    log = (wd / "logs" / "data" / "download_cifar10.log").read_text()
    assert "DownloadError" in log and "presets/fashion_mnist.yaml" in log
    assert "presets/fashion_mnist.yaml" in out  # on the console too (show-failed-logs)


def test_partial_summary_lists_what_was_not_run_and_how(offline):
    wd, _, out = offline
    md = (wd / "results" / "tables" / "claims_summary.partial.md").read_text()
    summary, not_run = md.split("## Not run")
    assert "claims.md#sgdm-flow" in summary
    assert "figure acc_vs_beta" in not_run and "claims cifar" in not_run
    assert "needs the dataset cifar10" in not_run and "presets/fashion_mnist.yaml" in not_run
    assert "figure orders_sgdm" not in not_run and "claims orders_sgdm" not in not_run
    page = (wd / "results" / "index.partial.html").read_text()
    assert 'id="not-run"' in page and 'src="figures/orders_sgdm.png"' in page
    assert not (wd / "results" / "tables" / "claims_summary.md").exists()  # only complete files under that name
    last = out.strip().splitlines()[-1]
    assert "claims_summary.partial.md" in last and "index.partial.html" in last, out[-2000:]


def test_console_is_one_line_per_job_and_ends_on_where_to_look(offline):
    """profiles/default: no job blocks (their input lists name every igrm source file); each
    finished job one line; the plan's estimate at the start; the last line says where to look."""
    _, _, out = offline
    assert "igrm: about " in out and "one line per finished job below" in out
    assert "igrm: done order_sgdm beta=0.8 in " in out and "planned)" in out
    assert "    input: " not in out and "igrm/pipeline/io.py" not in out  # no job blocks
