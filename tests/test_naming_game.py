"""Naming game: shuffled options, coordination payoffs, naming_game policy, committed minority."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.memory import Moment
from agents.policies import naming_game_update
from analysis.io import load_run
from analysis.naming import naming_convergence, naming_success
from sim.backends.scripted import ScriptedBackend, policy_probabilities
from sim.engine.loop import Engine
from sim.errors import ScenarioError
from sim.executors.local import LocalExecutor
from sim.requests import GenerateRequest, GenerateResult, ModelInfo, ScoreRequest, ScoreResult
from sim.run.runner import run_scenario
from sim.scenario.loader import load_scenario
from sim.scenario.spec import RunConfig, ScenarioSpec

NAMES = [f"w{i}" for i in range(10)]


def naming(size: int, rounds: int, cohorts: list[dict[str, Any]], *, shuffle: bool = True,
           payoff: dict[str, Any] | None = None, names: Sequence[str] = NAMES) -> ScenarioSpec:
    """A naming game stage in random pairs with a coordination payoff."""
    return ScenarioSpec.model_validate({
        "name": "test-naming", "rounds": rounds,
        "population": {"size": size, "cohorts": cohorts},
        "stages": [{"id": "name", "kind": "choice", "prompt": "Pick one of {options}.",
                    "options": list(names), "groups": {"by": "random_pairs"},
                    "shuffle_options": shuffle,
                    "payoff": {"coordination": {"success": 1, "failure": 0}}
                    if payoff is None else payoff}],
    })


def _events(tmp_path: Path, spec: ScenarioSpec, seed: int) -> pl.DataFrame:
    outcome = run_scenario(spec, RunConfig(backend="scripted", seed=seed, out=tmp_path))
    return load_run(outcome.path).events


class FirstShownBackend:
    """An LLM-like stand-in with a pure position bias: the first shown option wins."""

    @property
    def info(self) -> ModelInfo:
        """Identity for the manifest."""
        return ModelInfo(backend="scripted", model_id="first-shown")

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Log-probability 0 for the first option of every request, -20 for the rest."""
        return [ScoreResult(logprobs=tuple(0.0 if i == 0 else -20.0
                                           for i in range(len(r.options))))
                for r in requests]

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Unused: the scenario has no dialogue."""
        return [GenerateResult(text="", num_new_tokens=0) for _ in requests]


# ----------------------------------------------------------------------------- policy rule
def test_update_collapses_on_success_and_learns_on_failure():
    assert naming_game_update(["a", "b"], "b", ["b"]) == ["b"]
    assert naming_game_update([], "a", ["b"]) == ["a", "b"]  # invented name is kept
    assert naming_game_update(["a", "b"], "a", ["b"]) == ["a", "b", "b"]  # hearings count


def test_policy_plays_from_inventory_or_invents():
    from sim.requests import PolicyCall, PolicyFacts
    from sim.scenario.spec import PolicySpec

    uniform = PolicySpec(name="naming_game")
    empty = PolicyCall(spec=uniform, facts=PolicyFacts(inventory=()))
    assert policy_probabilities(empty, NAMES) == [0.1] * 10
    known = PolicyCall(spec=uniform, facts=PolicyFacts(inventory=("w1", "w3", "w3")))
    probs = policy_probabilities(known, NAMES)
    assert probs[1] == probs[3] == 0.5 and sum(probs) == 1.0
    weighted = PolicyCall(spec=PolicySpec(name="naming_game", pick="frequency"),
                          facts=PolicyFacts(inventory=("w1", "w3", "w3")))
    assert policy_probabilities(weighted, NAMES)[3] == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------ dynamics
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scripted_naming_game_reaches_consensus(tmp_path, seed):
    rounds = 120
    spec = naming(32, rounds, [{"count": 32,
                                "policy": {"name": "naming_game", "pick": "frequency"}}])
    events = _events(tmp_path, spec, seed)
    conv = naming_convergence(events).row(0, named=True)
    assert conv["converged"] and conv["round"] <= rounds - 10, conv
    last = events.filter(pl.col("round") > rounds - 10)
    assert last["choice"].n_unique() == 1
    assert (naming_success(last)["success"] == 1.0).all()
    assert events.filter(pl.col("round") == 1)["choice"].n_unique() > 1  # not trivial


def _committed(tmp_path: Path, fraction: float, seed: int) -> pl.DataFrame:
    size, rounds = 30, 60
    committed = round(fraction * size)
    cohorts = [{"name": "committed", "count": committed,
                "policy": {"name": "always", "option": "w1"}}] if committed else []
    cohorts.append({"name": "majority", "count": size - committed,
                    "policy": {"name": "naming_game", "initial": ["w0"]}})
    return _events(tmp_path, naming(size, rounds, cohorts), seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_committed_minority_of_40_percent_flips_the_convention(tmp_path, seed):
    events = _committed(tmp_path, 0.4, seed)
    first = events.filter(pl.col("round") == 1)
    majority = first.filter(pl.col("policy") == "naming_game")
    assert (majority["choice"] == "w0").all()  # the established convention
    conv = naming_convergence(events).row(0, named=True)
    assert conv["converged"] and conv["convention"] == "w1", conv


def test_without_a_committed_minority_the_convention_stays(tmp_path):
    events = _committed(tmp_path, 0.0, 0)
    assert (events["choice"] == "w0").all()
    assert naming_convergence(events).row(0, named=True)["convention"] == "w0"


# ------------------------------------------------------------------------ shuffle_options
def test_shuffled_options_are_recorded_canonically_and_undo_position_bias():
    rounds, size = 5, 64
    spec = naming(size, rounds, [])
    engine = Engine(spec, RunConfig(backend="scripted", seed=3),
                    LocalExecutor(FirstShownBackend()))  # type: ignore[arg-type]
    rows = [r for _ in range(rounds) for r in engine.step().rows if r["kind"] == "choice"]
    assert all(r["options"] == NAMES for r in rows)
    assert all(sorted(r["shown_order"]) == list(range(10)) for r in rows)
    assert all(r["choice"] == NAMES[r["shown_order"][0]] for r in rows)
    assert all(r["option_probs"][r["shown_order"][0]] > 0.99 for r in rows)
    assert len({tuple(r["shown_order"]) for r in rows[:size]}) > size // 2
    counts = Counter(r["choice"] for r in rows)
    expected = len(rows) / len(NAMES)
    chi2 = sum((counts[n] - expected) ** 2 / expected for n in NAMES)
    assert len(counts) == 10 and chi2 < 27.9  # chi2(9) at p = 0.001


def test_without_shuffle_the_first_option_always_wins():
    spec = naming(8, 1, [], shuffle=False)
    engine = Engine(spec, RunConfig(backend="scripted", seed=3),
                    LocalExecutor(FirstShownBackend()))  # type: ignore[arg-type]
    rows = [r for r in engine.step().rows if r["kind"] == "choice"]
    assert {r["choice"] for r in rows} == {"w0"}
    assert all(r["shown_order"] is None for r in rows)


def test_shown_order_is_a_recorded_column(tmp_path):
    events = _events(tmp_path, naming(4, 2, []), 0)
    assert events.schema["shown_order"] == pl.List(pl.Int32)
    assert events["shown_order"].list.len().to_list() == [10] * 8


# ---------------------------------------------------------------------- coordination payoff
@pytest.mark.parametrize(("theirs", "expected"), [("w0", 5.0), ("w1", -1.0)])
def test_coordination_payoff(theirs, expected):
    spec = naming(2, 1, [{"count": 1, "policy": {"name": "always", "option": "w0"}},
                         {"count": 1, "policy": {"name": "always", "option": theirs}}],
                  payoff={"coordination": {"success": 5, "failure": -1}})
    rows = Engine(spec, RunConfig(backend="scripted"), LocalExecutor(ScriptedBackend())).step().rows
    assert [r["payoff"] for r in rows] == [expected, expected]


@pytest.mark.parametrize("payoff", [{}, {"matrix": [[1, 0], [0, 1]],
                                         "coordination": {"success": 1}}])
def test_payoff_needs_exactly_one_formula(payoff):
    from sim.scenario.validate import check_scenario

    with pytest.raises(ScenarioError, match="exactly one of 'matrix', 'coordination' or 'formula'"):
        check_scenario(naming(2, 1, [], payoff=payoff, names=["a", "b"]))


def test_initial_is_only_for_naming_game():
    from sim.scenario.validate import check_scenario

    spec = naming(2, 1, [{"count": 1, "policy": {"name": "always", "option": "w0",
                                                 "initial": ["w0"]}}])
    with pytest.raises(ScenarioError, match="'initial' is only used"):
        check_scenario(spec)
    bad = naming(2, 1, [{"count": 1, "policy": {"name": "naming_game", "initial": ["zz"]}}])
    with pytest.raises(ScenarioError, match="'zz' is not an option"):
        check_scenario(bad)


# ------------------------------------------------------------------------ agent state, prompt
def test_inventory_is_saved_and_the_prompt_shows_matches():
    spec = naming(2, 3, [{"count": 2, "policy": {"name": "naming_game"}}])
    engine = Engine(spec, RunConfig(backend="scripted", seed=1), LocalExecutor(ScriptedBackend()))
    engine.run()
    agent = engine.replicas[0].population[0]
    assert agent.inventory["name"]
    clone = Engine(spec, RunConfig(backend="scripted", seed=1),
                   LocalExecutor(ScriptedBackend())).replicas[0].population[0]
    clone.load_state_dict(agent.state_dict())
    assert clone.inventory == agent.inventory
    history = agent.memory.render(5)
    assert history.count("\n") == 2 and ("(match)" in history or "(no match)" in history)
    line = Moment(round=2, stage="name", partners=("Sage",), my_choice="kaz",
                  their_choices=("mip",), payoff=0.0, matched=False).render()
    assert line == "Round 2 (name) with Sage: you chose kaz, they chose mip (no match); " \
                   "you earned 0."


def test_naming_game_scenario_shows_each_agent_its_own_order():
    loaded = load_scenario("scenarios/naming_game.yaml")
    engine = Engine(loaded.spec, RunConfig(backend="scripted", seed=0),
                    LocalExecutor(ScriptedBackend()))
    sim = engine.replicas[0]
    plan = sim.plan_step()
    requests = next(plan)
    prompts = {r.messages[1].content.split("pool: ")[1].split(".")[0] for r in requests}
    assert len(prompts) > 1 and all(math.isclose(len(r.options), 10) for r in requests)
