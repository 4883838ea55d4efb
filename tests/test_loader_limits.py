"""The loader's limits: alias bombs, huge files, deep nesting, duplicate keys, YAML tags."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.scenario.loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, load_scenario, parse_scenario

PD_TEXT = (Path(__file__).parents[1] / "scenarios" / "prisoners_dilemma.yaml").read_text()


def _refused(text: str, *, within: float = 1.0) -> ScenarioError:
    started = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, source="limits.yaml")
    assert time.perf_counter() - started < within
    message = str(info.value)
    assert message.startswith("limits.yaml:") and len(message.splitlines()) == 1
    assert info.value.fix
    return info.value


def _billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in itertools.pairwise("abcdefghijklmnopqrstuvwxyz"[:levels]):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return PD_TEXT + "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_fast() -> None:
    exc = _refused(_billion_laughs(9))
    assert "aliases" in exc.message and f"{MAX_NODES:,}" in exc.message
    assert exc.line is not None


def test_alias_bomb_in_a_field_is_refused_fast() -> None:
    levels = ["&a [" + ", ".join(["lol"] * 9) + "]"]
    for prev, name in itertools.pairwise("abcdefghi"):
        levels.append(f"&{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    text = PD_TEXT.replace("description: >-", "description: [" + ", ".join(levels) + "]\n"
                           "summary: >-")
    exc = _refused(text)
    assert "aliases" in exc.message and (exc.field or "").startswith("description.")
    assert exc.line == text.splitlines().index(next(
        line for line in text.splitlines() if line.startswith("description:"))) + 1


def test_small_aliases_still_work() -> None:
    text = PD_TEXT.replace("groups: {by: random_pairs}", "groups: &pairs {by: random_pairs}", 1)
    text = text.replace("groups: {by: random_pairs}", "groups: *pairs")
    loaded = parse_scenario(text)
    assert all(s.groups.by == "random_pairs" for s in loaded.spec.stages)


def test_recursive_alias_is_refused() -> None:
    exc = _refused(PD_TEXT + "extra: &loop [*loop]\n")
    assert "alias" in exc.message and exc.line == PD_TEXT.count("\n") + 1


def test_file_over_limit_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    filler = "# " + "x" * 98 + "\n"
    path.write_text(PD_TEXT + filler * (MAX_FILE_BYTES // len(filler) + 10))
    started = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert time.perf_counter() - started < 0.5
    message = str(info.value)
    assert message.startswith(f"{path}:") and "bytes, over the limit of 1,000,000" in message
    assert "Fix:" in message


def test_text_over_limit_is_refused_quickly() -> None:
    exc = _refused("description: " + "é" * (MAX_FILE_BYTES // 2 + 1) + "\n", within=0.5)
    assert "over the limit of 1,000,000 bytes" in exc.message


def test_duplicate_keys_are_refused() -> None:
    text = PD_TEXT.replace("rounds: 10\n", "rounds: 10\nrounds: 3\n")
    exc = _refused(text)
    assert exc.message == "key 'rounds' appears twice in one mapping."
    assert exc.field == "rounds"
    assert exc.line == text.splitlines().index("rounds: 3") + 1


def test_nested_duplicate_keys_are_refused() -> None:
    text = PD_TEXT.replace("  size: 16\n", "  size: 16\n  size: 20\n")
    exc = _refused(text)
    assert exc.field == "population.size" and "appears twice" in exc.message
    assert exc.line == text.splitlines().index("  size: 20") + 1


@pytest.mark.parametrize("tagged", [
    '!!python/object/apply:os.system ["touch {marker}"]',
    "!!python/object/new:os.system [touch {marker}]",
    "!!python/name:os.system",
    '!!python/object/apply:builtins.exec ["open(\'{marker}\', \'w\')"]',
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!custom thing",
    "!!int ten",
    "!!float nope",
    "!!timestamp never",
])
def test_yaml_tags_are_refused_not_executed(tagged: str, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    value = tagged.replace("{marker}", str(marker))
    exc = _refused(PD_TEXT.replace("name: prisoners-dilemma", f"name: {value}"))
    assert "YAML tag" in exc.message and "is not allowed" in exc.message
    assert exc.field == "name" and exc.line == PD_TEXT.splitlines().index(
        "name: prisoners-dilemma") + 1
    assert not marker.exists()


def test_quoted_and_plain_values_are_not_tags() -> None:
    text = PD_TEXT.replace("rounds: 10", "rounds: !!int 10").replace(
        "name: prisoners-dilemma", "name: !!str prisoners-dilemma")
    assert parse_scenario(text).spec.rounds == 10


def test_deep_nesting_is_refused_fast() -> None:
    depth = 50_000
    exc = _refused(PD_TEXT + "extra: " + "[" * depth + "]" * depth + "\n")
    assert f"more than {MAX_DEPTH} levels" in exc.message


def test_bare_special_scalars_are_refused() -> None:
    exc = _refused(PD_TEXT.replace("rounds: 10", "rounds: ="))
    assert exc.field == "rounds" and "quote it" in (exc.fix or "")
