"""World state: a tiny commons whose trajectory is computed by hand, prompts, bounds, resume.

``tests/data/commons_state.yaml``: three ``share`` fishers (p = 0.75: the offered level
nearest three quarters of the way from 0 to the highest, ties to the lower), a lake of 60
(cap 60) regrowing as ``min(60, 2 * (lake - total catch))``, catches bounded by
``lake / 3``, the run stopping once ``lake < 10``. By hand:

====== ====== ============= ================ ======= ===================
round  lake   offered up to target (0.75 hi) catch   lake after
====== ====== ============= ================ ======= ===================
1      60     20            15               15 x 3  2 * (60 - 45) = 30
2      30     10            7.5 (tie: 7)     7 x 3   2 * (30 - 21) = 18
3      18     6             4.5 (tie: 4)     4 x 3   2 * (18 - 12) = 12
4      12     4             3                3 x 3   2 * (12 - 9) = 6 < 10: stop
====== ====== ============= ================ ======= ===================

A ``notice`` stage follows ``fish`` only while ``lake >= 20`` (round 1 only): 5 steps.
Each agent's wealth (+= payoff = catch): 15, 22, 26, 29. ``catches`` (max 20, refuse):
15, 22 refused (15), 19, 22 refused (19). ``regime``: closed once lake < 20: open, closed,
closed, closed (and open after the notice of round 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from analysis.io import load_run
from sim.engine.replica import Replica
from sim.records.checkpoint import checkpoint_steps, engine_state_at
from sim.records.schemas import STATE_SCHEMA
from sim.run.runner import resume_run, run_scenario
from sim.scenario.formula import Formula, FormulaError
from sim.scenario.loader import load_scenario
from sim.scenario.spec import RunConfig
from tests.conftest import SCENARIOS
from tests.support.faults import killed_runs
from tests.support.shards import read_shards

COMMONS = Path(__file__).parent / "data" / "commons_state.yaml"


def _run(path: Path, out: Path) -> Path:
    return run_scenario(path, RunConfig(backend="scripted", seed=0, out=out)).path


@pytest.fixture(scope="module")
def greedy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run of the commons."""
    return _run(COMMONS, tmp_path_factory.mktemp("greedy"))


def _global(run_dir: Path, name: str) -> list[object]:
    state = load_run(run_dir).state.filter(pl.col("scope") == "global", pl.col("name") == name)
    column = "text" if name == "regime" else "value"
    return state.sort("step")[column].to_list()


def test_greedy_commons_collapses_at_the_round_computed_by_hand(greedy: Path) -> None:
    run = load_run(greedy)
    assert run.manifest["status"] == "complete"
    assert run.manifest["steps_completed"] == 5
    assert _global(greedy, "lake") == [30.0, 30.0, 18.0, 12.0, 6.0]
    assert _global(greedy, "regime") == ["open", "open", "closed", "closed", "closed"]
    assert run.state["stage"].to_list()[::8] == ["fish", "notice", "fish", "fish", "fish"]
    choices = run.events.filter(pl.col("kind") == "choice").sort("step", "agent")
    assert choices["value"].to_list() == [15.0] * 3 + [7.0] * 3 + [4.0] * 3 + [3.0] * 3
    assert choices["round"].max() == 4


def test_options_are_bounded_by_state(greedy: Path) -> None:
    choices = load_run(greedy).events.filter(pl.col("kind") == "choice")
    highest = choices.group_by("round").agg(pl.col("options").list.last().first()).sort("round")
    assert highest["options"].to_list() == ["20", "10", "6", "4"]


def test_per_agent_state_and_refused_updates(greedy: Path) -> None:
    agent = load_run(greedy).state.filter(pl.col("agent") == "a001").sort("step")
    wealth = agent.filter(pl.col("name") == "wealth")
    assert wealth["value"].to_list() == [15.0, 15.0, 22.0, 26.0, 29.0]
    catches = agent.filter(pl.col("name") == "catches")
    assert catches["value"].to_list() == [15.0, 15.0, 15.0, 19.0, 19.0]
    assert catches["refused"].to_list() == [False, False, True, False, True]


def test_prompts_show_the_state_of_their_round(greedy: Path) -> None:
    texts = [json.loads(m)[-1]["content"] for m in load_run(greedy).prompts["messages"]]
    assert any(t.startswith("The lake holds 60 tonnes (open). You have 0.") for t in texts)
    assert any(t.startswith("The lake holds 30 tonnes (open). You have 15.") for t in texts)
    assert any(t.startswith("The lake holds 18 tonnes (closed). You have 22.") for t in texts)


def test_sustainable_commons_never_collapses(tmp_path: Path) -> None:
    # p = 0.5 of 20 is 10 each: 2 * (60 - 30) = 60, the lake stays full for all 10 rounds.
    path = tmp_path / "sustainable.yaml"
    path.write_text(COMMONS.read_text().replace("p: 0.75", "p: 0.5"))
    run_dir = _run(path, tmp_path)
    assert load_run(run_dir).manifest["steps_completed"] == 20
    assert set(_global(run_dir, "lake")) == {60.0}


def test_state_survives_a_checkpoint_round_trip() -> None:
    spec = load_scenario(COMMONS).spec
    first = Replica(spec, seed=0)
    first.world.shared["lake"] = 12.5
    first.world.agents[2]["wealth"] = 7.0
    second = Replica(spec, seed=0)
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert second.world.shared == {"lake": 12.5, "regime": "open"}
    assert second.world.agents[2] == {"wealth": 7.0, "catches": 0.0}


def test_a_run_without_state_has_an_empty_state_frame(tmp_path: Path) -> None:
    config = RunConfig(backend="scripted", seed=0, out=tmp_path, steps=2)
    run = load_run(run_scenario(SCENARIOS / "prisoners_dilemma.yaml", config).path)
    assert run.state.is_empty()
    assert set(STATE_SCHEMA) <= set(run.state.columns)
    assert not (run.path / "state").exists()
    assert "world" not in engine_state_at(run.path, 2)["replicas"][0]


KILLS = {"before-step:1": 0, "after-shard:2": 1, "after-checkpoint:3": 3, "finish:5": 5}


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Commons runs SIGKILLed at each point (one process each, started at once)."""
    root = tmp_path_factory.mktemp("killed")
    return killed_runs(root, COMMONS, KILLS, ["--backend", "scripted", "--seed", "0"])


@pytest.mark.parametrize("point", list(KILLS))
def test_resume_at_every_kill_point_gives_identical_events_and_state(
        point: str, killed: dict[str, Path], greedy: Path) -> None:
    run_dir = killed[point]
    assert checkpoint_steps(run_dir)[-1] == KILLS[point]
    outcome = resume_run(run_dir)
    assert (outcome.status, outcome.steps) == ("complete", 5)
    for folder in ("events", "state"):
        assert_frame_equal(read_shards(run_dir, folder), read_shards(greedy, folder))
        assert sorted(p.name for p in (run_dir / folder).iterdir()) == \
            sorted(p.name for p in (greedy / folder).iterdir())


def test_formulas_read_dotted_names_round_and_text() -> None:
    formula = Formula.parse('min(100, 2 * (state.lake - total_value)) + round '
                            '+ (my.choice == "cooperate")', texts={"my.choice"})
    assert formula.names == {"state.lake", "total_value", "round", "my.choice"}
    values = {"state.lake": 50.0, "total_value": 10.0, "round": 3.0, "my.choice": "cooperate"}
    assert formula.evaluate(values) == 84.0  # min(100, 80) + 3 + 1
    assert formula.evaluate({**values, "my.choice": "defect"}) == 83.0
    assert Formula.parse("round(round / 2)").evaluate({"round": 5.0}) == 2.0  # 2.5 to even
    text = Formula.parse('"closed" if state.lake < 20 else "open"', text_result=True)
    assert [text.evaluate_text({"state.lake": v}) for v in (19.0, 20.0)] == ["closed", "open"]
    for bad in ('my.choice + 1', '"a" == "a"', 'state.lake == "a" == "b"', 'my.choice < "a"',
                'state.lake["x"]'):
        with pytest.raises(FormulaError):
            Formula.parse(bad, texts={"my.choice"})


def test_a_stop_with_one_explicit_round_loads_back_from_the_run(tmp_path: Path) -> None:
    # rounds: 1 equals the default; the run's scenario.yaml must still write it, or the
    # stop condition would be refused when a resume loads the file back.
    path = tmp_path / "one.yaml"
    path.write_text(COMMONS.read_text().replace("rounds: 10", "rounds: 1"))
    run_dir = _run(path, tmp_path)
    assert load_scenario(run_dir / "scenario.yaml").spec.rounds == 1
    assert load_run(run_dir).manifest["steps_completed"] == 2


def test_outcomes_of_agents_in_several_games_count_every_choice() -> None:
    """Agent a001 chose 4 and 2 in two games (payoffs 1 and 3), a000 chose 6 (payoff 5).

    By hand: total_value = 4 + 2 + 6 = 12 over three choices, mean 4; n_actors = 2;
    a001's own value is the mean of its choices, 3, its payoff the sum, 4.
    """
    from sim.engine.world import stage_outcomes

    rows = [{"agent": "a001", "kind": "choice", "value": 4.0, "choice": "4", "payoff": 1.0},
            {"agent": "a001", "kind": "choice", "value": 2.0, "choice": "2", "payoff": 3.0},
            {"agent": "a000", "kind": "choice", "value": 6.0, "choice": "6", "payoff": 5.0},
            {"agent": "a002", "kind": "sit_out", "value": None, "payoff": None}]
    totals, own = stage_outcomes(rows, n_agents=3)
    assert totals == {"total_value": 12.0, "mean_value": 4.0, "n_actors": 2.0,
                      "total_payoff": 9.0, "mean_payoff": 3.0}
    assert own["a001"] == {"value": 3.0, "acted": 1.0, "payoff": 4.0, "my.choice": "2"}
    assert own["a002"] == {"value": 0.0, "acted": 0.0, "payoff": 0.0, "my.choice": ""}
