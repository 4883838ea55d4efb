"""Network grouping rules (``neighbour_sample``, ``ego``) and the sentence stop rule.

The network is small and explicit: edges 0-1, 1-2, 1-3 and agent 4 alone, so agent 1 has
three neighbours, agents 0, 2 and 3 one each, agent 4 none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import polars as pl
import pytest

from analysis.io import load_run
from sim.backends.scripted import ScriptedBackend
from sim.engine.groups import form_groups
from sim.engine.loop import Engine
from sim.engine.stages.dialogue import trim_to_sentence
from sim.executors.local import LocalExecutor
from sim.requests import GenerateRequest, GenerateResult, ModelInfo, ScoreRequest, ScoreResult
from sim.run.runner import run_scenario
from sim.scenario.spec import GroupingSpec, RunConfig, ScenarioSpec

EDGES = [[0, 1], [1, 2], [1, 3]]


def _graph() -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(range(5))
    graph.add_edges_from(EDGES)
    return graph


def _sample(k: int | None, seed: int = 0) -> Any:
    spec = GroupingSpec(by="neighbour_sample", k=k)
    return form_groups(spec, 5, _graph(), np.random.default_rng(seed))


def test_one_neighbour_each_initiator_first_the_lonely_sit_out() -> None:
    grouping = _sample(None)
    first = [g[0] for g in grouping.groups]
    assert first == [0, 1, 2, 3]  # one game per agent with a neighbour, in index order
    pairs = dict(grouping.groups)
    assert pairs[0] == 1 and pairs[2] == 1 and pairs[3] == 1  # a single neighbour is drawn
    assert pairs[1] in (0, 2, 3)
    assert grouping.sitting_out == (4,)


def test_the_drawn_neighbour_is_uniform() -> None:
    counts = Counter(dict(_sample(1, seed).groups)[1] for seed in range(3000))
    assert set(counts) == {0, 2, 3}
    assert all(900 <= n <= 1100 for n in counts.values()), counts  # 1000 +- 3.2 sd


def test_k_neighbours_are_distinct_and_capped_at_the_degree() -> None:
    two = _sample(2)
    assert [g for g in two.groups if g[0] != 1] == [(0, 1), (2, 1), (3, 1)]
    drawn = [g[1] for g in two.groups if g[0] == 1]
    assert len(drawn) == 2 and len(set(drawn)) == 2 and set(drawn) <= {0, 2, 3}
    assert drawn == sorted(drawn)
    everyone = _sample(5)
    assert everyone.groups == ((0, 1), (1, 0), (1, 2), (1, 3), (2, 1), (3, 1))
    assert everyone.sitting_out == (4,)


def test_the_same_stream_gives_the_same_draws() -> None:
    assert _sample(1, 7) == _sample(1, 7)
    assert len({tuple(_sample(1, s).groups) for s in range(20)}) == 3


def test_ego_groups_are_an_agent_and_its_neighbours() -> None:
    grouping = form_groups(GroupingSpec(by="ego"), 5, _graph(), np.random.default_rng(0))
    assert grouping.groups == ((0, 1), (1, 0, 2, 3), (2, 1), (3, 1))
    assert grouping.sitting_out == (4,)


def _scenario(stages: list[dict[str, Any]], *, rounds: int = 2,
              cohorts: list[dict[str, Any]] | None = None) -> ScenarioSpec:
    return ScenarioSpec.model_validate({
        "name": "net", "rounds": rounds,
        "population": {"size": 5, "cohorts": cohorts or []},
        "network": {"edges": EDGES}, "stages": stages,
    })


def _pd(groups: dict[str, Any]) -> ScenarioSpec:
    always = [{"count": 1, "policy": {"name": "always", "option": "cooperate"}},
              {"count": 4, "policy": {"name": "always", "option": "defect"}}]
    return _scenario([{"id": "play", "kind": "choice", "groups": groups,
                       "prompt": "You meet {partner.name}.", "options": ["cooperate", "defect"],
                       "payoff": {"matrix": [[3, 0], [5, 1]]}}], cohorts=always)


def test_pairwise_games_pay_the_sum_over_partners(tmp_path: Path) -> None:
    run = load_run(run_scenario(_pd({"by": "neighbour_sample", "k": 3}),
                                RunConfig(backend="scripted", out=tmp_path)).path)
    assert run.agents.sort("index")["policy"].to_list()[:2] == ["always", "always"]
    choice = run.events.filter(pl.col("kind") == "choice")
    assert choice.filter(pl.col("agent") == "a000")["choice"].unique().to_list() == ["cooperate"]
    # games (0,1) (1,0) (1,2) (1,3) (2,1) (3,1): agent 1 defects against the cooperator
    # twice (5 + 5) and against two defectors twice each (4 x 1)
    per_round = choice.group_by("agent", "round").agg(pl.col("payoff").sum(), pl.len())
    expected = {"a000": (0.0, 2), "a001": (14.0, 6), "a002": (2.0, 2), "a003": (2.0, 2)}
    for row in per_round.iter_rows(named=True):
        assert (row["payoff"], row["len"]) == expected[row["agent"]], row
    out = run.events.filter(pl.col("kind") == "sit_out")
    assert out["agent"].to_list() == ["a004", "a004"]
    final = run.events.sort("step").group_by("agent").agg(pl.col("score").last())
    assert dict(final.iter_rows())["a001"] == 28.0


def test_same_seed_same_pairs(tmp_path: Path) -> None:
    spec = _pd({"by": "neighbour_sample"})
    frames = [load_run(run_scenario(spec, RunConfig(backend="scripted", seed=seed,
                                                    out=tmp_path / f"{seed}-{i}")).path).events
              .select("round", "group", "agent", "partners", "payoff")
              for i, seed in enumerate([4, 4, 5])]
    assert frames[0].equals(frames[1])
    assert frames[0].filter(pl.col("agent") == "a001")["partners"].len() >= 2


def test_ego_broadcast_reaches_the_neighbours_only(tmp_path: Path) -> None:
    spec = _scenario([{"id": "tell", "kind": "broadcast", "groups": {"by": "ego"},
                       "prompt": "Tell your neighbours what you plan."}], rounds=1)
    engine = Engine(spec, RunConfig(backend="scripted"), LocalExecutor(ScriptedBackend()))
    report = engine.step()
    rows = {r["agent"]: r for r in report.rows}
    assert {a: rows[a]["partners"] for a in ("a000", "a001", "a002", "a003")} == {
        "a000": ["a001"], "a001": ["a000", "a002", "a003"], "a002": ["a001"],
        "a003": ["a001"]}
    assert rows["a004"]["kind"] == "sit_out"
    agents = engine.replicas[0].population
    heard = agents[2].memory.moments  # groups in ego order: 1 speaks to 2, then 2 to 1
    assert [m.partners for m in heard] == [(agents[1].name,), (agents[1].name,)]
    assert heard[0].heard == (rows["a001"]["text"],) and heard[0].said == ""
    assert heard[1].said == rows["a002"]["text"] and heard[1].heard == ()
    hub = agents[1].memory.moments  # 0 speaks to it, it speaks to 0, 2, 3; then 2 and 3
    assert [m.partners for m in hub] == [(agents[0].name,),
                                         tuple(agents[i].name for i in (0, 2, 3)),
                                         (agents[2].name,), (agents[3].name,)]


class _Cut:
    """Generates a fixed text and says the token limit stopped it (or not)."""

    def __init__(self, text: str, finish: str) -> None:
        self.text, self.finish = text, finish

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(backend="cut", model_id="none")

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return [GenerateResult(text=self.text, num_new_tokens=8,
                               finish_reason=self.finish)  # type: ignore[arg-type]
                for _ in requests]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        return [ScoreResult(logprobs=(0.0,) * len(r.options)) for r in requests]


@pytest.mark.parametrize(("text", "finish", "said", "trimmed"), [
    ("We should cooperate. I think we sho", "length", "We should cooperate.", True),
    ('He said "no!" Then we', "length", 'He said "no!"', True),
    ("Price 3.5 is fair. Or 4.", "length", "Price 3.5 is fair. Or 4.", False),
    ("We should cooperate. I think we sho", "stop", "We should cooperate. I think we sho",
     False),
    ("no sentence end at all and cut", "length", "no sentence end at all and cut", False),
])
def test_stop_at_sentence_trims_cut_messages(tmp_path: Path, text: str, finish: str,
                                             said: str, trimmed: bool) -> None:
    spec = _scenario([{"id": "chat", "kind": "dialogue", "turns": 2, "stop_at": "sentence",
                       "groups": {"by": "neighbour_sample"}, "prompt": "Talk."}], rounds=1)
    run = load_run(run_scenario(spec, RunConfig(out=tmp_path), backend=_Cut(text, finish)).path)
    messages = run.events.filter(pl.col("kind") == "message")
    assert messages["text"].unique().to_list() == [said]
    assert messages["trimmed"].unique().to_list() == [trimmed]


def test_without_a_stop_rule_messages_are_kept_and_trimmed_is_null(tmp_path: Path) -> None:
    spec = _scenario([{"id": "chat", "kind": "dialogue", "turns": 1,
                       "groups": {"by": "ego"}, "prompt": "Talk."}], rounds=1)
    run = load_run(run_scenario(spec, RunConfig(out=tmp_path),
                                backend=_Cut("Yes. And th", "length")).path)
    messages = run.events.filter(pl.col("kind") == "message")
    assert messages["text"].unique().to_list() == ["Yes. And th"]
    assert messages["trimmed"].null_count() == messages.height


def test_trim_to_sentence_keeps_closing_quotes_and_brackets() -> None:
    assert trim_to_sentence("Fine.\u201d Then") == ("Fine.\u201d", True)
    assert trim_to_sentence("Really?! (Yes.) And") == ("Really?! (Yes.)", True)
    assert trim_to_sentence("Wait...") == ("Wait...", False)


def test_a_restored_replica_continues_with_the_same_draws() -> None:
    """Chat and play share one round's neighbour draw; a checkpoint between them keeps it."""
    spec = _scenario([
        {"id": "chat", "kind": "dialogue", "turns": 1, "groups": {"by": "neighbour_sample"},
         "prompt": "Talk."},
        {"id": "play", "kind": "choice", "groups": {"by": "neighbour_sample"},
         "prompt": "You meet {partner.name}.", "options": ["cooperate", "defect"]}],
        rounds=3)

    def engine() -> Engine:
        return Engine(spec, RunConfig(backend="scripted", seed=2),
                      LocalExecutor(ScriptedBackend()))

    whole = engine()
    rows = [whole.step().rows for _ in range(6)]
    first = engine()
    first.step()
    later = engine()
    later.load_state_dict(first.state_dict())
    resumed = [later.step().rows for _ in range(5)]
    assert resumed == rows[1:]
    chat, play = rows[0], rows[1]
    assert [r["partners"] for r in chat if r["kind"] == "message"][:1] == \
        [r["partners"] for r in play if r["kind"] == "choice"][:1]


def test_shards_written_before_the_trimmed_column_load_with_nulls(tmp_path: Path) -> None:
    run_dir = run_scenario(_pd({"by": "ego"}), RunConfig(backend="scripted", out=tmp_path)).path
    first = sorted((run_dir / "events").glob("step-*.parquet"))[0]
    pl.read_parquet(first).drop("trimmed").write_parquet(first)  # as an older version wrote it
    events = load_run(run_dir).events
    assert events.height > 0 and events["trimmed"].null_count() == events.height


HUB_EGO = """\
name: hub
rounds: 1
population: {size: 1200}
network: {generator: wheel_graph}   # agent 0 is every other agent's neighbour
stages:
  - id: play
    kind: choice
    groups: {by: ego}
    prompt: Cooperate or defect?
    options: [cooperate, defect]
    payoff: {formula: value}
"""


def test_an_ego_group_over_the_group_limit_is_refused_before_anything_is_recorded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A wheel's hub neighbours every other agent: refused when the file loads."""
    from sim.cli.main import main

    path = tmp_path / "hub.yaml"
    path.write_text(HUB_EGO)
    out = tmp_path / "runs"
    assert main(["run", str(path), "--backend", "scripted", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: {path}:8:18: field 'stages.0.groups.by': stage 'play': groups.by 'ego' makes "
        "one group of each agent and its neighbours; some agent has at least 1,199 neighbours "
        "in wheel_graph of 1,200 agents, a group of 1,200, over the limit of 1,000 agents per "
        "group. Fix: group by neighbours (one pair per edge) or neighbour_sample, or use a "
        "network in which every agent has at most 999 neighbours."], err
    assert not out.exists() or not any(out.iterdir())


def test_a_sparse_generator_is_not_refused_for_its_tiny_probes() -> None:
    # wheel_graph makes 1 then 3 edges at 2 and 3 nodes, which looks quadratic; at 100,000
    # agents it makes 199,998 edges, far within the limit.
    from sim.scenario.loader import parse_scenario

    text = HUB_EGO.replace("1200", "100000").replace("by: ego", "by: neighbours")
    assert parse_scenario(text).spec.population.size == 100_000
