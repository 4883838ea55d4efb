"""Option order of choice stages: fixed, shuffled (alias shuffle_options), balanced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim.backends.scripted import ScriptedBackend
from sim.engine.loop import Engine
from sim.errors import ScenarioError
from sim.executors.local import LocalExecutor
from sim.scenario.loader import load_scenario
from sim.scenario.spec import RunConfig, ScenarioSpec
from tests.support.position_backend import PositionBackend

OPTIONS = ["cooperate", "defect"]


def pd_spec(order: dict[str, Any], *, size: int = 8, rounds: int = 2,
            options: list[str] = OPTIONS, cohorts: list[dict[str, Any]] | None = None
            ) -> ScenarioSpec:
    """A pairwise choice stage with the given order fields."""
    k = len(options)
    return ScenarioSpec.model_validate({
        "name": "test-order", "rounds": rounds,
        "population": {"size": size, "cohorts": cohorts or []},
        "stages": [{"id": "play", "kind": "choice", "prompt": "Pick one of {options}.",
                    "options": options, "groups": {"by": "random_pairs"},
                    "payoff": {"matrix": [[float(i == j) for j in range(k)]
                                          for i in range(k)]}, **order}],
    })


def choice_rows(spec: ScenarioSpec, backend: Any, seed: int = 0) -> list[dict[str, Any]]:
    engine = Engine(spec, RunConfig(backend="scripted", seed=seed), LocalExecutor(backend))
    rows: list[dict[str, Any]] = []
    while engine.running:
        rows += [r for r in engine.step().rows if r["kind"] == "choice"]
    return rows


@pytest.mark.parametrize(("fields", "order"), [
    ({}, "fixed"), ({"shuffle_options": True}, "shuffled"),
    ({"shuffle_options": False}, "fixed"), ({"option_order": "balanced"}, "balanced"),
    ({"option_order": "shuffled", "shuffle_options": True}, "shuffled"),
])
def test_effective_order(fields, order):
    assert pd_spec(fields).stages[0].order == order


@pytest.mark.parametrize(("old", "new"), [("true", "balanced"), ("true", "fixed"),
                                          ("false", "shuffled"), ("false", "balanced")])
def test_contradicting_alias_is_refused_in_one_line(tmp_path: Path, old: str, new: str):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nrounds: 1\npopulation: {size: 2}\nstages:\n  - id: play\n    kind: choice\n"
        "    prompt: Pick.\n    options: [a, b]\n"
        f"    shuffle_options: {old}\n    option_order: {new}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    text = str(err.value)
    assert "s.yaml:9" in text and "shuffle_options" in text and f"option_order: {new}" in text
    assert "Fix" in text or "fix" in text


def test_balanced_scores_every_option_in_every_position():
    rows = choice_rows(pd_spec({"option_order": "balanced"}, options=["a", "b", "c"]),
                       ScriptedBackend())
    assert rows
    for r in rows:
        orders = r["shown_orders"]
        assert len(orders) == 3 and r["shown_order"] == orders[0]
        for pos in range(3):  # a Latin square: each option once in each position
            assert sorted(o[pos] for o in orders) == [0, 1, 2]
        assert len(r["order_probs"]) == 3


def test_balanced_cancels_a_planted_position_bonus():
    backend = PositionBackend({"cooperate": 0.6, "defect": 0.4}, bonus=0.3)
    for r in choice_rows(pd_spec({"option_order": "balanced"}), backend):
        assert r["option_probs"] == pytest.approx([0.6, 0.4], abs=1e-12)
        by_first = {o[0]: p for o, p in zip(r["shown_orders"], r["order_probs"], strict=True)}
        assert by_first[0][0] == pytest.approx(0.75)  # cooperate shown first
        assert by_first[1][0] == pytest.approx(0.45)  # cooperate shown second


def test_fixed_order_keeps_the_bias_and_records_no_orders():
    backend = PositionBackend({"cooperate": 0.6, "defect": 0.4}, bonus=0.3)
    for r in choice_rows(pd_spec({}), backend):
        assert r["option_probs"] == pytest.approx([0.75, 0.25])
        assert "shown_orders" not in r and r["shown_order"] is None


def test_scripted_policies_play_the_same_under_every_order():
    cohorts = [{"count": 4, "policy": {"name": "tit_for_tat"}},
               {"count": 4, "policy": {"name": "random"}}]
    plays = {}
    for order in ("fixed", "balanced"):
        rows = choice_rows(pd_spec({"option_order": order}, rounds=4, cohorts=cohorts),
                           ScriptedBackend())
        plays[order] = [(r["agent"], r["choice"], r["option_probs"], r["payoff"]) for r in rows]
    assert plays["fixed"] == plays["balanced"]
