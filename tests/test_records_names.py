"""Records never depend on agents' names: sanction picks carry their option index, names are
made unique by a stated rule, and a self-loop never hides an agent from the events."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
import pytest

from agents.persona import BigFive, Persona
from agents.population import unique_names
from sim.engine.groups import form_groups
from sim.run.runner import run_scenario
from sim.scenario.spec import GroupingSpec, RunConfig


def test_sanction_rows_carry_the_picked_option_index(tmp_path):
    outcome = run_scenario("scenarios/public_goods.yaml",
                           RunConfig(backend="scripted", out=tmp_path, steps=4))
    events = pl.read_parquet(outcome.path / "events")
    sanctions = events.filter(pl.col("kind") == "sanction", pl.col("status") == "ok")
    assert sanctions.height > 0
    assert sanctions["choice_index"].null_count() == 0
    for row in sanctions.iter_rows(named=True):
        assert row["options"][row["choice_index"]] == row["choice"]
        assert (row["choice_index"] == 0) == (row["choice"] == "nobody")


def _persona(name: str) -> Persona:
    return Persona(name=name, big_five=BigFive.from_dict(dict.fromkeys(
        ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"), 0.5)))


@pytest.mark.parametrize(("names", "expected"), [
    (["Alex", "Blake"], ["Alex", "Blake"]),
    (["Alex", "Alex", "Alex"], ["Alex", "Alex 2", "Alex 3"]),
    (["Alex", "alex ", "Alex 2"], ["Alex", "alex 2", "Alex 2 2"]),
    (["nobody", "Nobody"], ["nobody 2", "Nobody 3"]),
])
def test_names_are_made_unique_by_the_stated_rule(names, expected):
    assert [p.name for p in unique_names([_persona(n) for n in names])] == expected


def test_a_profile_name_meeting_a_default_name_is_made_unique(tmp_path):
    from sim.scenario.loader import parse_scenario

    text = Path("scenarios/prisoners_dilemma.yaml").read_text().replace(
        "  personality: {model: big_five, sample: uniform}",
        "  personality: {model: big_five, sample: uniform}\n  profiles:\n"
        "    - {name: Blake, big_five: {openness: 0.5, conscientiousness: 0.5, "
        "extraversion: 0.5, agreeableness: 0.5, neuroticism: 0.5}}")
    outcome = run_scenario(parse_scenario(text), RunConfig(backend="scripted", out=tmp_path,
                                                           steps=1))
    names = pl.read_parquet(outcome.path / "agents.parquet")["name"].to_list()
    assert len(set(names)) == len(names) and names[:2] == ["Blake", "Blake 2"]


def test_an_agent_with_only_a_self_loop_sits_out():
    network = nx.Graph([(0, 1), (2, 2), (2, 3), (4, 4)])
    network.add_nodes_from(range(5))
    grouping = form_groups(GroupingSpec(by="neighbours"), 5, network, np.random.default_rng(0))
    grouped = {a for g in grouping.groups for a in g}
    assert grouped | set(grouping.sitting_out) == set(range(5))  # nobody vanishes
    assert 4 in grouping.sitting_out and (2, 2) not in grouping.groups
