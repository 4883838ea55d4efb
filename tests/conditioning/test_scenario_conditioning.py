from __future__ import annotations

import json

import polars as pl
import pytest
from pydantic import ValidationError

from analysis.io import load_run
from sim.engine.replica import Replica
from sim.errors import RunError
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig, ScenarioSpec


def _spec(conditioning: str, cohort: str | None = None, size: int = 4) -> ScenarioSpec:
    cohorts = [{"name": "steered", "count": 2, "conditioning": cohort}] if cohort else []
    return ScenarioSpec.model_validate({
        "name": "cond", "rounds": 1,
        "population": {"size": size, "conditioning": conditioning, "steering_strength": 2.0,
                       "cohorts": cohorts},
        "stages": [{"id": "play", "kind": "choice", "groups": {"by": "random_pairs"},
                    "prompt": "Cooperate or defect?", "options": ["cooperate", "defect"],
                    "payoff": {"matrix": [[3, 0], [5, 1]]}}],
    })


def test_methods_set_prompt_and_steering_per_cohort():
    sim = Replica(_spec("prompt", cohort="steering"), seed=0)
    steered, prompted = sim.population[:2], sim.population[2:]
    for agent in steered:
        assert agent._system == f"You are {agent.persona.name}."
        assert agent.steering and all(abs(c) <= 2.0 for _t, c in agent.steering)
    for agent in prompted:
        assert agent.steering == () and "You are" in agent._system
        assert len(agent._system) > 40  # the persona's trait text


def test_none_is_name_only_and_unsteered():
    sim = Replica(_spec("none"), seed=0)
    assert all(a.steering == () and a._system == f"You are {a.persona.name}."
               for a in sim.population)


def test_unknown_conditioning_is_rejected():
    with pytest.raises(ValidationError, match="conditioning"):
        _spec("hypnosis")


def test_steering_needs_a_model_backend(tmp_path):
    with pytest.raises(RunError, match="hf backend"):
        run_scenario(_spec("steering"), RunConfig(out=tmp_path, backend="scripted"))


def test_steered_run_on_tiny_model_writes_steering_json(tmp_path, tiny_model_path,
                                                        monkeypatch):
    from sim.backends.hf.backend import HFBackend

    monkeypatch.setenv("TRAITLAB_CACHE", str(tmp_path / "cache"))
    backend = HFBackend(tiny_model_path, dtype="float32", threads=1)
    out = run_scenario(_spec("both"), RunConfig(out=tmp_path, seed=1, dtype="float32"),
                       backend=backend)
    meta = json.loads((out.path / "steering.json").read_text())
    assert meta["steering"]["layers"] and meta["strengths"]["all_traits"] == 2.0
    choices = load_run(out.path).events.filter(pl.col("kind") == "choice")
    assert choices.height == 4
