"""Every figure and table caption (report/<name>.rst, a Jinja template over the run's config)
renders to reStructuredText that docutils reads without a warning: a stray ``*`` or a
``|x|`` (a substitution reference in RST) would otherwise show in the report as an error."""

import io
from types import SimpleNamespace

import docutils.core
import jinja2
import pytest
import yaml

from igrm.pipeline.config import load_schema, with_defaults

from .conftest import REPO

CAPTIONS = sorted(p for p in (REPO / "report").glob("*.rst") if p.name != "workflow.rst")


@pytest.fixture(scope="module")
def config():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    return with_defaults(cfg, load_schema(REPO / "schemas" / "config.schema.yaml"))


def problems(text: str) -> str:
    err = io.StringIO()
    docutils.core.publish_string(
        text, writer="null", settings_overrides={"warning_stream": err, "report_level": 2, "halt_level": 5}
    )
    return err.getvalue()


def test_there_are_captions():
    assert len(CAPTIONS) >= 15


@pytest.mark.parametrize("path", CAPTIONS, ids=lambda p: p.name)
def test_caption_renders_without_rst_warnings(path, config):
    text = jinja2.Template(path.read_text()).render(snakemake=SimpleNamespace(config=config))
    assert problems(text) == "", path.name


def test_the_check_sees_the_faults_it_guards_against():
    assert "substitution" in problems("lower bounds of |λ_max|).")
    assert "emphasis" in problems("rows order/higher/beta*/limit/*; docs")
    assert problems(r"lower bounds of \|λ_max\|).") == ""
