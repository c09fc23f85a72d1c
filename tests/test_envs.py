"""One source of truth for versions: every pin in envs/*.yaml equals requirements.txt's."""

import re

import pytest
import yaml

from .conftest import REPO

ALIASES = {"matplotlib-base": "matplotlib", "pyyaml": "pyyaml"}


def requirement_pins():
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned with =="
            pins[name.lower()] = version
    return pins


def env_pins(path):
    spec = yaml.safe_load(path.read_text())
    pins = {}
    for dep in spec["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            m = re.match(r"^([A-Za-z0-9_.-]+)\s*(==|=)\s*([^\s=]+)$", item)
            if m:
                pins[ALIASES.get(m.group(1).lower(), m.group(1).lower())] = m.group(3)
    return pins


ENVS = sorted((REPO / "envs").glob("*.yaml"))


@pytest.mark.parametrize("env", ENVS, ids=[e.stem for e in ENVS])
def test_env_pins_match_requirements(env):
    req = requirement_pins()
    pins = env_pins(env)
    pins.pop("python", None)
    assert pins, f"{env.name} pins nothing"
    for name, version in pins.items():
        assert name in req, f"{env.name}: {name} is not in requirements.txt"
        assert req[name] == version, f"{env.name}: {name}={version} but requirements.txt has {req[name]}"
