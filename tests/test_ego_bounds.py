"""Bounds of ``groups: {by: ego}`` where the degree is known only once the network is built.

``turan_graph(20, r=4)`` splits 20 agents into 4 parts of 5 and joins every pair of agents
of different parts: every agent has 20 - 5 = 15 neighbours, so every ego group has 16
members, over the 12 of a dialogue (and within the 1,000 of a broadcast). Load time cannot
know this (the generator is not one whose parameters fix a degree); the run refuses it when
the network is built, before step 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.cli.main import main
from sim.errors import RunError, ScenarioError
from sim.run.runner import run_scenario
from sim.scenario.loader import load_scenario
from sim.scenario.spec import RunConfig

TURAN = """\
name: gossip
rounds: 2
population:
  size: 20
network: {{generator: turan_graph, r: 4}}
stages:
  - id: {stage}
    kind: {kind}
    groups: {{by: ego}}
    prompt: Tell your neighbours what you plan.
"""


def _file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(TURAN.format(stage="chat" if kind == "dialogue" else "tell", kind=kind))
    return path


def test_a_built_network_too_dense_for_ego_dialogues_is_refused_before_step_one(
        tmp_path: Path, capsys):
    path = _file(tmp_path, "dialogue")
    load_scenario(path)  # nothing known at load time
    with pytest.raises(RunError) as caught:
        run_scenario(path, RunConfig(backend="scripted", seed=0, out=tmp_path / "a"))
    assert str(caught.value) == (
        "before step 1: stage 'chat': groups.by 'ego' makes one group of each agent and its "
        "neighbours; agent 0 has 15 neighbours in the turan_graph network built for this run, "
        "a group of 16, over the limit of 12 agents per dialogue group. Fix: group by "
        "neighbours (one pair per edge) or neighbour_sample, or use a network in which every "
        "agent has at most 11 neighbours.")
    (run_dir,) = (tmp_path / "a" / "gossip").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["steps_completed"] == 0
    assert not (run_dir / "events").exists() or not any((run_dir / "events").iterdir())
    assert main(["run", str(path), "--backend", "scripted", "--quiet",
                 "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "agent 0 has 15 neighbours" in err


def test_the_same_network_takes_ego_broadcasts(tmp_path: Path):
    outcome = run_scenario(_file(tmp_path, "broadcast"),
                           RunConfig(backend="scripted", seed=0, out=tmp_path))
    assert outcome.status == "complete"


def test_edges_an_intervention_adds_count_at_load_time(tmp_path: Path):
    """Agent 0 has 11 listed neighbours (a group of 12, the dialogue bound); an intervention
    adding [0, 12] would make it 13."""
    edges = ", ".join(f"[0, {i}]" for i in range(1, 12))
    text = TURAN.format(stage="chat", kind="dialogue").replace(
        "network: {generator: turan_graph, r: 4}", f"network: {{edges: [{edges}]}}")
    path = tmp_path / "star.yaml"
    path.write_text(text)
    load_scenario(path)
    path.write_text(text + "interventions:\n  - id: link\n    at: {round: 2}\n"
                           "    edges: {add: [[0, 12]]}\n")
    with pytest.raises(ScenarioError, match=r"agent 0 has 12 neighbours in network\.edges "
                                            r"\(with the edges interventions add\), a group of "
                                            r"13, over the limit of 12"):
        load_scenario(path)
