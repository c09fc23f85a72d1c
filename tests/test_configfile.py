"""Config files read strictly (igrm.pipeline.configfile; docs/reliability.md, "Config files"):
duplicate keys, alias bombs and tags refused with the file and line named; the merged config
written with the umask's mode."""

from __future__ import annotations

import os
import time

import pytest

from igrm.pipeline.config import check_config, write_merged
from igrm.pipeline.configfile import ConfigFileError, check_files, load_strict


def bomb(levels: int, fan: int = 10) -> str:
    """YAML whose last key expands to fan**levels leaves through aliases."""
    lines = ["toy:", "  a0: &a0 [" + ", ".join(["1"] * fan) + "]"]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def test_duplicate_key_names_both_lines(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("train:\n  epochs: 3\n  model: small_cnn\n  epochs: 4\n")
    with pytest.raises(ConfigFileError, match=r"dup.yaml: key 'epochs' is given twice, on line 2 and line 4"):
        load_strict(p)
    p.write_text("train:\n  epochs: 3\ntoy: {}\ntrain:\n  epochs: 4\n")  # a duplicate section
    with pytest.raises(ConfigFileError, match=r"key 'train' is given twice, on line 1 and line 4"):
        check_files([p])


def test_plain_files_and_merge_keys_load(tmp_path, repo):
    assert load_strict(repo / "config.yaml")["train"]
    for preset in (repo / "presets").glob("*.yaml"):
        load_strict(preset)
    p = tmp_path / "merge.yaml"
    p.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert load_strict(p)["other"] == {"x": 1, "y": 3}


@pytest.mark.parametrize("levels,fan", [(9, 10), (4, 200)])
def test_alias_bomb_is_refused_in_under_a_second(tmp_path, levels, fan):
    """10**9 leaves (few aliases, caught by the expanded size) and 200**4 (many aliases)."""
    p = tmp_path / "bomb.yaml"
    p.write_text(bomb(levels, fan))
    t0 = time.perf_counter()
    with pytest.raises(ConfigFileError, match="bomb.yaml") as e:
        load_strict(p)
    assert time.perf_counter() - t0 < 1.0
    assert "alias" in str(e.value)


def test_check_config_refuses_an_expanded_bomb_before_walking_it():
    import yaml

    cfg = yaml.safe_load(bomb(9))  # what Snakemake's loader hands over: shared lists, not expanded
    t0 = time.perf_counter()
    with pytest.raises(ConfigFileError, match="expanded"):
        check_config(cfg)
    assert time.perf_counter() - t0 < 1.0


def test_a_tag_is_reported_with_the_file_and_the_tag(tmp_path):
    p = tmp_path / "tag.yaml"
    marker = tmp_path / "ran"
    p.write_text(f'train: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConfigFileError) as e:
        load_strict(p)
    assert f"{p}:1" in str(e.value) and "python/object/apply:os.system" in str(e.value), e.value
    assert not marker.exists()


def test_merged_config_is_written_with_the_umask_mode(tmp_path):
    old = os.umask(0o002)
    try:
        path = write_merged({"a": 1}, tmp_path / "logs" / "config.merged.yaml", ["header"])
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o664
