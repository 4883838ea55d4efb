"""Interventions: trajectories computed by hand, announcements in prompts, swaps, edges, resume.

``tests/data/commons_interventions.yaml`` is the commons of ``tests/test_world_state.py``
(three ``share`` fishers, p = 0.75, lake 60 regrowing as ``min(cap, 2 * (lake - catch))``,
catches offered up to ``lake / 3``, stop once ``lake < 10``) with one intervention at the
start of round 3: ``lake += 12``, ``cap = 16``, agent 0's wealth set to 0, and an
announcement to agent 0 only. By hand:

====== ================ ============= ========= ==============================
round  lake at start    offered up to catch     lake after
====== ================ ============= ========= ==============================
1      60               20            15 x 3    min(60, 2 * 15) = 30 (+ notice)
2      30               10            7 x 3     2 * (30 - 21) = 18
3      18 + 12 = 30     10            7 x 3     min(16, 2 * (30 - 21)) = 16
4      16               5             4 x 3     min(16, 2 * (16 - 12)) = 8 < 10: stop
====== ================ ============= ========= ==============================

Five steps (fish, notice, fish, fish, fish); the intervention is a row of step 4. Agent 0's
wealth: 15, 15, 22, 0 + 7 = 7, 11; the others': 15, 15, 22, 29, 33.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agents.conditioning import needs_steering
from analysis.io import load_run
from sim.backends.scripted import ScriptedBackend
from sim.engine.interventions import apply_intervention
from sim.engine.loop import Engine
from sim.engine.replica import Replica
from sim.errors import RunError, ScenarioError
from sim.executors.local import LocalExecutor
from sim.records.checkpoint import checkpoint_steps, engine_state_at
from sim.run.runner import resume_run, run_scenario
from sim.scenario.interventions import load_interventions
from sim.scenario.loader import load_scenario, parse_scenario
from sim.scenario.spec import RunConfig
from tests.support.faults import killed_runs
from tests.support.shards import read_shards

DATA = Path(__file__).parent / "data"
COMMONS = DATA / "commons_interventions.yaml"
PLAIN = DATA / "commons_state.yaml"
ANNOUNCED = ('Round 3: the game master announced "The lake was restocked with 12 tonnes; '
             'it now holds at most 16.".')


def _run(path: Path, out: Path) -> Path:
    return run_scenario(path, RunConfig(backend="scripted", seed=0, out=out)).path


@pytest.fixture(scope="module")
def restock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run of the commons with its intervention."""
    return _run(COMMONS, tmp_path_factory.mktemp("restock"))


def _lake(run_dir: Path) -> list[float]:
    state = load_run(run_dir).state
    return state.filter(pl.col("name") == "lake").sort("step")["value"].to_list()


def _variant(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "variant.yaml"
    path.write_text(text)
    return path


def test_a_state_and_param_set_changes_the_trajectory_computed_by_hand(restock: Path) -> None:
    run = load_run(restock)
    assert run.manifest["steps_completed"] == 5
    assert _lake(restock) == [30.0, 30.0, 18.0, 16.0, 8.0]
    wealth = run.state.filter(pl.col("name") == "wealth").sort("step", "agent")
    assert wealth.filter(pl.col("agent") == "a000")["value"].to_list() == [15, 15, 22, 7, 11]
    assert wealth.filter(pl.col("agent") == "a001")["value"].to_list() == [15, 15, 22, 29, 33]
    choices = run.events.filter(pl.col("kind") == "choice").sort("step", "agent")
    assert choices["value"].to_list() == [15.0] * 3 + [7.0] * 6 + [4.0] * 3


def test_each_application_is_one_event_row_before_the_stage(restock: Path) -> None:
    events = load_run(restock).events
    rows = events.filter(pl.col("kind") == "intervention")
    assert rows.select("replica", "step", "round", "stage", "agent", "intervention").rows() == [
        (0, 4, 3, "fish", None, "restock")]
    assert rows["text"].to_list() == [
        "The lake was restocked with 12 tonnes; it now holds at most 16."]
    step4 = events.filter(pl.col("step") == 4)["kind"].to_list()
    assert step4 == ["intervention", "choice", "choice", "choice"]
    assert events.filter(pl.col("kind") != "intervention")["intervention"].null_count() == \
        len(events) - 1


def test_an_announcement_is_in_the_prompts_of_its_round_on_and_not_before(
        restock: Path) -> None:
    run = load_run(restock)
    prompts = run.prompts.select("prompt_hash", "messages")
    seen = (run.events.filter(pl.col("kind") == "choice")
            .join(prompts, on="prompt_hash").sort("round", "agent"))
    announced = {(r["agent"], r["round"]): ANNOUNCED in json.loads(r["messages"])[-1]["content"]
                 for r in seen.iter_rows(named=True)}
    assert {k for k, v in announced.items() if v} == {("a000", 3), ("a000", 4)}
    assert len(announced) == 12  # every choice's prompt was found


def test_when_fires_once_at_the_first_round_start_its_condition_holds(tmp_path: Path) -> None:
    # The lake is 60, 30, 18, 16 at the starts of rounds 1-4: below 20 first at round 3 (and
    # again at round 4, where it does not fire a second time).
    path = _variant(tmp_path, COMMONS.read_text().replace(
        "at: {round: 3}", 'when: "state.lake < 20"'))
    run_dir = _run(path, tmp_path)
    rows = load_run(run_dir).events.filter(pl.col("kind") == "intervention")
    assert rows.select("step", "round", "intervention").rows() == [(4, 3, "restock")]
    assert _lake(run_dir) == [30.0, 30.0, 18.0, 16.0, 8.0]


def test_a_set_honours_bounds_and_a_refused_set_is_in_its_steps_state_rows(
        tmp_path: Path) -> None:
    # Agent 0's catches are 15 at the start of round 3 (22 was refused in round 2); a set to
    # 21 leaves max 20 and is refused (on_bound: refuse), the stage's update then adds 4: 19.
    text = COMMONS.read_text().replace(
        "      state.lake: state.lake + 12\n      params.cap: 16\n      my.state.wealth: 0\n",
        "      my.state.catches: 21\n")
    run_dir = _run(_variant(tmp_path, text), tmp_path)
    assert _lake(run_dir) == [30.0, 30.0, 18.0, 12.0, 6.0]  # the commons without a restock
    catches = load_run(run_dir).state.filter(pl.col("name") == "catches", pl.col("step") == 4)
    assert catches.sort("agent").select("agent", "value", "refused").rows() == [
        ("a000", 19.0, True), ("a001", 19.0, False), ("a002", 19.0, False)]
    spec = load_scenario(COMMONS).spec
    replica = Replica(spec, seed=0)
    replica.world.assign("state.lake", "state.lake + 100", 1)  # clamped to max 60
    assert replica.world.shared["lake"] == 60.0 and not replica.world.refused


SWAP = """
interventions:
  - id: moratorium
    at: {round: 2}
    policy: {cohort: cohort0, policy: {name: always, option: "0"}}
"""


def test_a_policy_swap_changes_the_choices_from_its_round(tmp_path: Path) -> None:
    # Round 1 catches 15 each (lake 30); from round 2 nobody fishes, the lake doubles back to
    # 60 and stays full: fish and notice every round, 20 steps.
    run_dir = _run(_variant(tmp_path, PLAIN.read_text() + SWAP), tmp_path)
    run = load_run(run_dir)
    assert run.manifest["steps_completed"] == 20
    choices = run.events.filter(pl.col("kind") == "choice").sort("round", "agent")
    assert choices["value"].to_list() == [15.0] * 3 + [0.0] * 27
    assert choices["policy"].to_list() == ["share"] * 3 + ["always"] * 27
    assert _lake(run_dir)[:4] == [30.0, 30.0, 60.0, 60.0]


EDGES = """\
name: rewired
rounds: 3
population:
  size: 4
  cohorts: [{count: 4, policy: {name: always, option: a}}]
network: {edges: [[0, 1], [2, 3]]}
stages:
  - {id: play, kind: choice, prompt: Pick., options: [a, b], groups: {by: neighbours}}
interventions:
  - id: rewire
    at: {round: 2}
    edges: {add: [[0, 2]], remove: [[2, 3]]}
"""


def test_edges_change_the_neighbours_grouping_from_their_round(tmp_path: Path) -> None:
    run = load_run(_run(_variant(tmp_path, EDGES), tmp_path))
    rows = run.events.filter(pl.col("kind") != "intervention").sort("round", "agent", "partners")
    by_round = {r: sorted((a, tuple(p)) for rr, a, p in rows.select(
        "round", "agent", "partners").rows() if rr == r) for r in (1, 2, 3)}
    assert by_round[1] == [("a000", ("a001",)), ("a001", ("a000",)), ("a002", ("a003",)),
                           ("a003", ("a002",))]
    expected = [("a000", ("a001",)), ("a000", ("a002",)), ("a001", ("a000",)),
                ("a002", ("a000",)), ("a003", ())]
    assert by_round[2] == by_round[3] == expected
    assert rows.filter(pl.col("agent") == "a003", pl.col("round") > 1)["kind"].unique() \
        .to_list() == ["sit_out"]


CONDITIONING = """\
name: reconditioned
population:
  size: 2
  cohorts: [{name: c1, count: 1}]
stages:
  - {id: play, kind: choice, prompt: Pick., options: [a, b]}
interventions:
  - {id: plain, at: {round: 1}, conditioning: {cohort: c1, conditioning: none}}
"""


def test_a_conditioning_swap_changes_the_persona_text_of_its_cohort_only() -> None:
    spec = parse_scenario(CONDITIONING).spec
    replica = Replica(spec, seed=0)
    before = [a.choice_request(spec.stages[0], [], 1, 1).messages[0].content  # type: ignore[arg-type]
              for a in replica.population]
    apply_intervention(replica, spec.interventions[0], 1, replica.interventions)
    after = [a.choice_request(spec.stages[0], [], 1, 1).messages[0].content  # type: ignore[arg-type]
             for a in replica.population]
    name = replica.population[0].name
    assert before[0] != after[0] == f"You are {name}."
    assert before[1] == after[1]
    assert not needs_steering(spec)
    steering = parse_scenario(CONDITIONING.replace("conditioning: none", "conditioning: both"))
    assert needs_steering(steering.spec)


def _engine(path: Path) -> Engine:
    return Engine(load_scenario(path).spec, RunConfig(backend="scripted"),
                  LocalExecutor(ScriptedBackend()))


def test_intervene_applies_a_declared_one_at_the_next_step_and_survives_a_checkpoint() -> None:
    engine = _engine(COMMONS)
    engine.step()
    engine.intervene("restock")
    with pytest.raises(RunError, match=r"no intervention 'restok'.*use one of: restock"):
        engine.intervene("restok")
    resumed = _engine(COMMONS)
    resumed.load_state_dict(json.loads(json.dumps(engine.state_dict())))
    reports = [resumed.step() for _ in range(3)]
    rows = [(r["step"], r["round"], r["stage"]) for rep in reports for r in rep.rows
            if r["kind"] == "intervention"]
    assert rows == [(2, 1, "notice")]  # applied once, at once; round 3 does not repeat it
    # Lake 30 after round 1, + 12 = 42 when the notice ran; cap 16 from then on: round 2
    # offers up to 14, 10 each, min(16, 2 * 12) = 16; round 3: 4 each, 8 < 10: stop.
    assert [rep.world[0]["value"] for rep in reports] == [42.0, 16.0, 8.0]
    assert not resumed.running


def test_a_file_of_interventions_is_loaded_and_checked_against_the_scenario(
        tmp_path: Path) -> None:
    spec = load_scenario(PLAIN).spec
    good = tmp_path / "quota.yaml"
    good.write_text("interventions:\n  - id: quota\n    at: {round: 2}\n"
                    "    announce: At most 5 tonnes each.\n")
    (item,) = load_interventions(good, spec)
    assert (item.id, item.at.round if item.at else None) == ("quota", 2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("interventions:\n  - id: quota\n    at: {round: 2}\n"
                   "    set: {state.lak: 3}\n")
    with pytest.raises(ScenarioError, match=rf"^{bad}:4:\d+: field 'interventions.0.set."
                                            r"state.lak': set of an undeclared name"):
        load_interventions(bad, spec)
    taken = tmp_path / "taken.yaml"
    taken.write_text("interventions:\n  - {id: restock, announce: Hello.}\n")
    with pytest.raises(ScenarioError, match=r"duplicate intervention id 'restock' \(also the "
                                            r"scenario\)"):
        load_interventions(taken, load_scenario(COMMONS).spec, require_trigger=False)
    with pytest.raises(ScenarioError, match=r"has no trigger"):
        load_interventions(taken, spec)


def test_a_run_without_interventions_checkpoints_as_before(tmp_path: Path) -> None:
    run_dir = _run(PLAIN, tmp_path)
    replicas = engine_state_at(run_dir, checkpoint_steps(run_dir)[-1])["replicas"]
    assert "interventions" not in replicas[0]
    assert load_run(run_dir).events["intervention"].null_count() == len(load_run(run_dir).events)


KILLS = {"before-step:4": 3, "after-shard:4": 3, "after-checkpoint:4": 4, "finish:5": 5}


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Runs SIGKILLed around the intervention's step (one process each, started at once)."""
    root = tmp_path_factory.mktemp("killed")
    return killed_runs(root, COMMONS, KILLS, ["--backend", "scripted", "--seed", "0"])


@pytest.mark.parametrize("point", list(KILLS))
def test_resume_at_every_kill_point_gives_identical_events_and_state(
        point: str, killed: dict[str, Path], restock: Path) -> None:
    run_dir = killed[point]
    assert checkpoint_steps(run_dir)[-1] == KILLS[point]
    outcome = resume_run(run_dir)
    assert (outcome.status, outcome.steps) == ("complete", 5)
    for folder in ("events", "state", "prompts"):
        assert_frame_equal(read_shards(run_dir, folder), read_shards(restock, folder))


def test_edges_policies_and_conditioning_are_redone_on_a_resumed_replica() -> None:
    spec = parse_scenario(EDGES + "  - {id: stop, at: {round: 2}, policy: {cohort: cohort0, "
                                  "policy: {name: always, option: b}}}\n").spec
    first = Replica(spec, seed=0)
    for item in spec.interventions:
        apply_intervention(first, item, 2, first.interventions)
        first.interventions.fired.append(item.id)
    second = Replica(spec, seed=0)
    assert second.network is not None and first.network is not None
    assert sorted(second.network.edges) == [(0, 1), (2, 3)]
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert sorted(second.network.edges) == sorted(first.network.edges) == [(0, 1), (0, 2)]
    assert [a.policy.option for a in second.population if a.policy] == ["b"] * 4
    assert second.interventions.fired == ["rewire", "stop"]
