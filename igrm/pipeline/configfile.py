"""Config files read strictly (docs/reliability.md, "Config files"): a duplicate key is an
error naming both lines, a YAML alias bomb is refused before anything walks it, and a tag
the loader will not construct is reported with the file and the tag.

Snakemake reads every config file first (its own loader: the last of two duplicate keys
wins, aliases are shared, not expanded); rules/common.smk then re-reads each with
:func:`load_strict` before the config is validated or walked (igrm.pipeline.config).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

#: at most this many aliases in one file (config.yaml and the presets use none)
MAX_ALIASES = 100
#: at most this many nodes in a config once its aliases are expanded (config.yaml: ~400)
MAX_NODES = 100_000


class ConfigFileError(ValueError):
    """A config file that is not read; the message names the file and the line."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and refuses duplicate keys."""

    def __init__(self, stream, name: str):
        super().__init__(stream)
        self.name = name
        self.aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise ConfigFileError(
                    f"{self.name}:{mark.line + 1}: more than {MAX_ALIASES} YAML aliases (*name); "
                    "refused (an alias bomb expands to more than memory holds): write the values out"
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges; its keys may be overridden here
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise ConfigFileError(
                    f"{self.name}: key {key!r} is given twice, on line {seen[key]} and line {line} "
                    "(YAML would keep only the last silently): keep one"
                )
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_strict(path: str | Path) -> Any:
    """The YAML (or JSON) file at ``path``, read as data: ConfigFileError for a duplicate key,
    an alias bomb, a tag that is not plain data, or bad syntax, naming the file and line."""
    name = str(path)
    text = Path(path).read_text(encoding="utf-8")
    loader = _StrictLoader(text, name)
    try:
        data = loader.get_single_data()
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        where = f"{name}:{mark.line + 1}" if mark else name
        raise ConfigFileError(
            f"{where}: {e.problem} (a YAML tag igrm does not construct; config files hold plain data only)"
        ) from None
    except yaml.YAMLError as e:
        raise ConfigFileError(f"{name}: not valid YAML: {e}") from None
    finally:
        loader.dispose()
    check_size(data, name)
    return data


def check_size(node: Any, name: str = "the config", cap: int = MAX_NODES) -> int:
    """Nodes of ``node`` with shared sub-trees (YAML aliases) counted once per use, in time
    proportional to the distinct ones; ConfigFileError past ``cap``."""
    memo: dict[int, int] = {}

    def size(n) -> int:
        if id(n) in memo:
            return memo[id(n)]
        children = n.values() if isinstance(n, Mapping) else n if isinstance(n, (list, tuple)) else ()
        memo[id(n)] = 1
        total = 1
        for c in children:
            total += size(c)
            if total > cap:
                break
        memo[id(n)] = total
        return total

    total = size(node)
    if total > cap:
        raise ConfigFileError(
            f"{name}: more than {cap} values once its YAML aliases are expanded; refused before "
            "validation (an alias bomb): write the values out"
        )
    return total


def check_files(paths: Iterable[str | Path]) -> None:
    """Each config file read strictly (:func:`load_strict`); the first problem raised."""
    for p in paths:
        if Path(p).is_file():
            load_strict(p)
