from __future__ import annotations

import copy

from agents.instruments import load_instrument
from agents.memory import Moment
from agents.survey import SurveyDesign
from sim.engine.replica import Replica
from sim.engine.survey_side import respondents_of, survey_agents
from sim.scenario.spec import ScenarioSpec


def _sim() -> Replica:
    spec = ScenarioSpec.model_validate({
        "name": "side", "rounds": 1,
        "population": {"size": 3, "conditioning": "prompt",
                       "cohorts": [{"name": "bots", "count": 1,
                                    "policy": {"name": "always", "option": "a"}}]},
        "stages": [{"id": "play", "kind": "choice", "prompt": "Pick.", "options": ["a", "b"]}],
    })
    return Replica(spec, seed=0)


def test_in_situ_shows_memory_and_isolated_does_not():
    sim = _sim()
    agent = sim.population[1]
    agent.memory.add(Moment(round=1, stage="play", partners=("Zed",), my_choice="b",
                            their_choices=("a",)))
    iso = {r.id: r for r in respondents_of(sim.population, "isolated")}
    situ = {r.id: r for r in respondents_of(sim.population, "in_situ")}
    assert sim.population[0].key not in iso  # the scripted agent is not surveyed
    assert iso[agent.key].context == ""
    assert "you chose b" in situ[agent.key].context
    assert iso[agent.key].system == situ[agent.key].system == agent._system


def test_survey_is_a_side_channel(tiny_backend):
    sim = _sim()
    before = [copy.deepcopy(a.state_dict()) for a in sim.population]
    rows = survey_agents(sim, tiny_backend, load_instrument("mini-ipip"), mode="in_situ",
                         design=SurveyDesign(items=("MINI01",), orders=("asc",)))
    assert len(rows) == 2 and {r["mode"] for r in rows} == {"in_situ"}
    assert [a.state_dict() for a in sim.population] == before
