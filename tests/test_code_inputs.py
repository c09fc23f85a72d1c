"""A rule's `code` input: the igrm files its script runs, followed through imports."""

from pathlib import Path

from igrm.pipeline.code import code_inputs

from .conftest import REPO


def test_imports_are_followed_transitively(tmp_path):
    files = {
        "igrm/__init__.py": "",
        "igrm/a.py": "def f():\n    from . import b  # lazily, inside a function\n",
        "igrm/b.py": "import math\n",
        "igrm/unused.py": "",
        "igrm/sub/__init__.py": "",
        "igrm/sub/c.py": "from ..a import f\n",
        "scripts/fig/x.py": "import os\nfrom igrm.sub import c\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    got = {str(Path(f).relative_to(tmp_path)) for f in code_inputs("fig/x.py", tmp_path)}
    assert got == {"igrm/__init__.py", "igrm/a.py", "igrm/b.py", "igrm/sub/__init__.py", "igrm/sub/c.py"}


def test_every_script_runs_the_igrm_code_it_imports():
    """Each script's code input holds its direct igrm imports; no script's holds this module
    (parse-time only: editing it outdates no result)."""
    for script in sorted((REPO / "scripts").rglob("*.py")):
        rel = str(script.relative_to(REPO / "scripts"))
        got = code_inputs(rel, REPO)
        assert str(REPO / "igrm" / "pipeline" / "code.py") not in got, rel
        if "from igrm" in script.read_text() or "import igrm" in script.read_text():
            assert str(REPO / "igrm" / "__init__.py") in got, rel
