"""The igrm source files a rule's script runs: the rule's ``code`` input (rules/common.smk).

A result whose igrm code changed is then outdated, and nothing else is (README, "When code
changes"). Used at parse time, and by igrm.train (:func:`code_version`: the same files
form the training fingerprint, so a code change that reruns a training job also retrains
instead of resuming a checkpoint of the old code; docs/reliability.md).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path


def igrm_imports(path: str | Path, root: str | Path) -> set[Path]:
    """igrm modules the Python file ``path`` imports (anywhere in it, lazily or not), as file
    paths under ``root`` (the repository: ``root``/igrm is the package)."""
    return set(_igrm_imports(str(path), str(root), Path(path).read_text()))


# Keyed on the file's text, so an edited file is parsed again. One parse per file and
# process: Snakemake asks for ~60 scripts' closures at parse time, which share most of their
# files (parsing each file per script was ~7 s of every Snakemake start).
@functools.lru_cache(maxsize=1024)
def _igrm_imports(path: str, root: str, text: str) -> frozenset[Path]:
    tree = ast.parse(text, filename=path)
    pkg = Path(root) / "igrm"
    here = Path(path).resolve().parent
    found = set()
    for node in ast.walk(tree):
        for name in _imported_names(node, pkg, here):
            found |= _module_files(name, pkg)
    return frozenset(found)


def _imported_names(node: ast.AST, pkg: Path, here: Path) -> list[str]:
    """Dotted igrm names an import statement may load: the module, and each name taken from
    it (``from igrm import toy`` loads the module igrm.toy)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "igrm"]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0 and (node.module or "").split(".")[0] == "igrm":
        base = node.module
    elif node.level > 0 and pkg in (here, *here.parents):
        parts = here.relative_to(pkg.parent).parts
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    else:
        return []
    return [base] + [f"{base}.{a.name}" for a in node.names]


def _module_files(name: str, pkg: Path) -> set[Path]:
    """The file of module ``name`` (a.b.c: a/b/c.py or a/b/c/__init__.py), if it exists, with
    every package __init__.py above it: importing a.b.c runs a/__init__.py and a/b/__init__.py."""
    rel = Path(*name.split("."))
    found = set()
    for cand in (pkg.parent / f"{rel}.py", pkg.parent / rel / "__init__.py"):
        if cand.is_file():
            found.add(cand)
            for parent in cand.parent.relative_to(pkg.parent).parents[:-1]:
                found.add(pkg.parent / parent / "__init__.py")
            found.add(cand.parent / "__init__.py")
    return found


def code_inputs(script: str, root: str | Path) -> list[str]:
    """The igrm source files scripts/``script`` runs (its imports, transitively), sorted."""
    todo = [Path(root) / "scripts" / script]
    seen: set[Path] = set()
    while todo:
        for f in igrm_imports(todo.pop(), root):
            if f not in seen:
                seen.add(f)
                todo.append(f)
    return sorted(str(f) for f in seen)


def code_version(root: str | Path, script: str = "train_run.py", start: str = "igrm/train.py") -> str:
    """16 hex digits of sha256 over the igrm files ``scripts/<script>`` runs (:func:`code_inputs`,
    the rule's ``code`` input), each as its path under ``root`` and its bytes. Without the
    script (an installed package): the files ``root``/``start`` imports, and itself."""
    return _code_version(str(Path(root).resolve()), script, start)


@functools.lru_cache(maxsize=8)
def _code_version(root: str, script: str, start: str) -> str:
    base = Path(root)
    if (base / "scripts" / script).is_file():
        files = [Path(f) for f in code_inputs(script, base)]
    else:
        todo, seen = [base / start], {base / start}
        while todo:
            for f in igrm_imports(todo.pop(), base) - seen:
                seen.add(f)
                todo.append(f)
        files = sorted(seen)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(base).as_posix()}\n".encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]
