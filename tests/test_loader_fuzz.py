"""Fuzz the loader: a mutated scenario is either valid or refused with a ScenarioError.

Mutations start from the valid prisoner's dilemma and drop keys, insert random keys, misspell
keys, replace values with random JSON-able values of other types and nest values in lists or
mappings. Whatever comes out, ``parse_scenario`` must never raise anything but ScenarioError,
and each problem it reports must stay one line with a fix, the problems in line order.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.errors import ScenarioError, ScenarioErrors
from sim.scenario.loader import LoadedScenario, parse_scenario

PD = yaml.safe_load(
    (Path(__file__).parents[1] / "scenarios" / "prisoners_dilemma.yaml").read_text())

FIELD_NAMES = ["name", "rounds", "population", "size", "personality", "profiles", "cohorts",
               "network", "generator", "edges", "stages", "id", "kind", "prompt", "options",
               "payoff", "matrix", "groups", "by", "flow", "from", "to", "every", "while",
               "big_five", "mbti", "type", "policy", "count", "fraction", "turns", "k", "p"]

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=20) | st.sampled_from(FIELD_NAMES) | st.dates()
           | st.sampled_from(["choice", "dialogue", "start", "end", "play", "chat", "INTJ",
                              "watts_strogatz_graph", "random_pairs", "{partner.secret}", "{",
                              "x\ny", "{a\nb}", "=", "<<"]))
keys = (st.text(max_size=12) | st.sampled_from(FIELD_NAMES) | st.integers(-5, 5)
        | st.sampled_from(["a\nb", "line\u2028sep", "tab\tkey", "<<", "="]))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12)


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) in the tree, containers first."""
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((node, key))
            _slots(value, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((node, i))
            _slots(value, out)
    return out


def _problems(exc: ScenarioError) -> list[ScenarioError]:
    """Every problem of a refusal; several come in line order, each on one line."""
    if not isinstance(exc, ScenarioErrors):
        return [exc]
    assert len(exc.errors) >= 2
    lines = [(e.line or 0, e.column or 0) for e in exc.errors]
    assert lines == sorted(lines), str(exc)
    assert str(exc).splitlines() == [str(e) for e in exc.errors]
    return list(exc.errors)


def _misspell(key: str, data: st.DataObject) -> str:
    if not key:
        return "x"
    i = data.draw(st.integers(0, len(key) - 1))
    return data.draw(st.sampled_from([key[:i] + key[i + 1:], key[:i] + "x" + key[i:],
                                      key.upper(), key[::-1], key + "s"]))


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(PD)
    data = draw(st.data())
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(doc, [])
        containers = [doc] + [c[k] for c, k in slots if isinstance(c[k], dict | list)]
        op = draw(st.sampled_from(["drop", "insert", "replace", "replace", "nest", "rename"]))
        if op == "insert":
            target = draw(st.sampled_from(containers))
            if isinstance(target, dict):
                target[draw(keys)] = draw(values)
            else:
                target.insert(draw(st.integers(0, len(target))), draw(values))
            continue
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if op == "drop":
            del container[key]
        elif op == "replace":
            container[key] = draw(values)
        elif op == "nest":
            container[key] = draw(st.sampled_from(
                [[container[key]], {draw(keys): container[key]}]))
        elif isinstance(container, dict) and isinstance(key, str):  # rename
            new = _misspell(key, data)
            container[new] = container.pop(key)
    return doc


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_scenarios_load_or_raise_scenario_error(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True)
    try:
        loaded = parse_scenario(text, source="fuzz.yaml")
    except ScenarioError as exc:
        for problem in _problems(exc):
            message = str(problem)
            assert message.startswith("fuzz.yaml"), message
            assert len(message.splitlines()) == 1, message
            assert problem.fix, message
    else:
        assert isinstance(loaded, LoadedScenario)


@settings(max_examples=100, deadline=None)
@given(values)
def test_any_document_loads_or_raises_scenario_error(doc: Any) -> None:
    try:
        parse_scenario(yaml.safe_dump(doc, allow_unicode=True), source="fuzz.yaml")
    except ScenarioError as exc:
        for problem in _problems(exc):
            assert len(str(problem).splitlines()) == 1, str(problem)


def test_pd_is_valid() -> None:
    assert parse_scenario(yaml.safe_dump(PD)).spec.name == "prisoners-dilemma"
