"""Flow semantics: rounds from start to end, typed edge conditions, no cycles."""

import pytest

from sim.errors import ScenarioError
from sim.scenario.flow import ScenarioGraph
from sim.scenario.loader import parse_scenario
from sim.scenario.spec import ScenarioSpec

STAGE = {"kind": "choice", "prompt": "Pick.", "options": ["a", "b"]}


def _spec(flow, rounds=6, ids=("chat", "play")):
    return ScenarioSpec.model_validate({
        "name": "t", "rounds": rounds, "population": {"size": 2},
        "stages": [{"id": i, **STAGE} for i in ids], "flow": flow})


def _walk(spec):
    graph, out, state = ScenarioGraph.compile(spec), [], None
    state = graph.first()
    while state is not None:
        out.append((state.round, state.stage))
        state = graph.advance(state)
    assert graph.num_steps() == len(out)
    return out


def test_default_flow_is_the_stage_list_each_round():
    assert _walk(_spec(None, rounds=2)) == [(1, "chat"), (1, "play"), (2, "chat"), (2, "play")]


def test_every_and_offset():
    flow = [{"from": "start", "to": "chat", "every": 3, "offset": 1},
            {"from": "start", "to": "play"}, {"from": "chat", "to": "play"}]
    walk = _walk(_spec(flow, rounds=7))
    assert [r for r, s in walk if s == "chat"] == [2, 5]
    assert [r for r, s in walk if s == "play"] == list(range(1, 8))


def test_while_and_rounds_conditions():
    flow = [{"from": "start", "to": "chat", "rounds": [1, 4]},
            {"from": "start", "to": "play", "while": {"round_lt": 4}},
            {"from": "chat", "to": "play", "while": {"round_le": 2}}]
    assert _walk(_spec(flow, rounds=5)) == [(1, "chat"), (1, "play"), (2, "play"),
                                            (3, "play"), (4, "chat")]


def test_cycle_within_a_round_is_refused():
    flow = [{"from": "start", "to": "chat"}, {"from": "chat", "to": "play"},
            {"from": "play", "to": "chat"}]
    with pytest.raises(ScenarioError, match="cycle"):
        ScenarioGraph.compile(_spec(flow))


def test_unreachable_stage_is_refused_with_its_line():
    text = """name: t
population: {size: 2}
stages:
  - {id: a, kind: choice, prompt: x, options: [p, q]}
  - {id: b, kind: choice, prompt: x, options: [p, q]}
flow:
  - {from: start, to: a}
"""
    with pytest.raises(ScenarioError, match="never reached") as err:
        parse_scenario(text)
    assert "'b'" in str(err.value)
