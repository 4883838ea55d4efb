"""The commons library scenario (``scenarios/commons.yaml``) on scripted fishers.

Five fishers, a lake of 100 (the capacity), catches of whole tonnes from 0 up to
``floor(lake / 5)`` (at most 20), the lake after the catch ``min(100, 2 * (lake - total))``,
the run stopping once the lake is below 5. Each variant only swaps the cohorts' policies and
runs through the normal loader and runner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from analysis.io import Run, load_run
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig
from tests.conftest import SCENARIOS
from tests.support.library_checks import check_commons

COMMONS = SCENARIOS / "commons.yaml"


def _fleet(tmp_path: Path, *cohorts: tuple[int, str]) -> Run:
    raw: dict[str, Any] = yaml.safe_load(COMMONS.read_text())
    raw["population"]["cohorts"] = [{"count": n, "policy": {"name": p}} for n, p in cohorts]
    path = tmp_path / "commons.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    run = load_run(run_scenario(path, RunConfig(backend="scripted", seed=0,
                                                out=tmp_path / "runs")).path)
    assert run.manifest["status"] == "complete"
    assert check_commons(run.events, run.agents, run.scenario, state=run.state) == []
    return run


def _lake(run: Run) -> list[float]:
    """The lake after every catch."""
    rows = run.state.filter(pl.col("name") == "lake", pl.col("stage") == "fish")
    return rows.sort("step")["value"].to_list()


def _catches(run: Run) -> list[list[float]]:
    fish = run.events.filter(pl.col("stage") == "fish", pl.col("kind") == "choice")
    return [g.sort("agent")["value"].to_list()
            for _, g in fish.group_by("round", maintain_order=True)]


def test_sustainable_fishers_never_collapse_the_lake(tmp_path):
    """Each is offered 0..20 (100 / 5) and takes the largest level at or below 20 / 2 = 10:
    together 50, and 2 * (100 - 50) = 100. The lake stays full all 12 months (24 steps)."""
    run = _fleet(tmp_path, (5, "sustainable"))
    assert run.manifest["steps_completed"] == 24
    assert _lake(run) == [100.0] * 12
    assert _catches(run) == [[10.0] * 5] * 12
    wealth = run.state.filter(pl.col("name") == "wealth", pl.col("step") == 24)
    assert wealth["value"].to_list() == [120.0] * 5
    smaller = {**run.scenario, "params": {"capacity": 90, "collapse": 5}}  # the check can fail
    assert check_commons(run.events, run.agents, smaller, state=run.state)[0].startswith(
        "replica 0 step 2: lake 100.0 != 90")


def test_greedy_fishers_empty_the_lake_in_month_one(tmp_path):
    """Each takes the largest offered catch, 100 / 5 = 20: together 100, and
    2 * (100 - 100) = 0 < 5. The run stops after the first month's catch (step 2)."""
    run = _fleet(tmp_path, (5, "greedy"))
    assert run.manifest["steps_completed"] == 2
    assert _lake(run) == [0.0]
    assert _catches(run) == [[20.0] * 5]


def test_three_greedy_and_two_sustainable_collapse_in_month_four(tmp_path):
    """h = floor(lake / 5) is the highest offer; greedy takes h, sustainable floor(h / 2).

    ===== ===== == ============== ============= =====================
    month lake  h  greedy (x 3)   sustain (x 2) lake after
    ===== ===== == ============== ============= =====================
    1     100   20 20 = 60        10 = 20       2 * (100 - 80) = 40
    2     40    8  8 = 24         4 = 8         2 * (40 - 32) = 16
    3     16    3  3 = 9          1 = 2         2 * (16 - 11) = 10
    4     10    2  2 = 6          1 = 2         2 * (10 - 8) = 4 < 5
    ===== ===== == ============== ============= =====================
    """
    run = _fleet(tmp_path, (3, "greedy"), (2, "sustainable"))
    assert run.manifest["steps_completed"] == 8
    assert _lake(run) == [40.0, 16.0, 10.0, 4.0]
    assert _catches(run) == [[20.0] * 3 + [10.0] * 2, [8.0] * 3 + [4.0] * 2,
                             [3.0] * 3 + [1.0] * 2, [2.0] * 3 + [1.0] * 2]
    wealth = run.state.filter(pl.col("name") == "wealth", pl.col("step") == 8).sort("agent")
    assert wealth["value"].to_list() == [33.0] * 3 + [16.0] * 2


def test_prompts_show_the_stock_and_the_fishers_wealth(tmp_path):
    run = _fleet(tmp_path, (3, "greedy"), (2, "sustainable"))
    texts = [json.loads(m)[-1]["content"] for m in run.prompts["messages"]]
    assert any(t.startswith("Month 2 of 12. The lake holds 40 tonnes. You have caught 20 "
                            "tonnes so far.") for t in texts)
    assert any(t.startswith("Month 4 of 12. The lake holds 10 tonnes. You have caught 15 "
                            "tonnes so far.") for t in texts)  # sustainable: 10 + 4 + 1
    assert any("Month 3 of 12. The lake now holds 16 tonnes of fish." in t for t in texts)


def test_report_has_state_sections_with_the_hand_computed_collapse(tmp_path):
    from analysis.report import analyze_run

    report = analyze_run(_fleet(tmp_path, (3, "greedy"), (2, "sustainable")))
    km = report.tables["Time to collapse"]
    assert km.select("round", "at_risk", "collapsed", "survival").rows() == [(4, 1, 1, 0.0)]
    kept = report.tables["Sustainability · lake"].row(0, named=True)
    assert (kept["rounds_survived"], kept["mean_stock"]) == (3, (40 + 16 + 10 + 4) / 4)
    over = report.tables["Over-use · fish on lake"]
    # month 1: 80 of 50; month 2: 32 of 20; month 3: 11 of 8; month 4: 8 of 5.
    assert over["ratio"].to_list() == pytest.approx([1.6, 1.6, 11 / 8, 1.6])
    assert over["over_share"].to_list() == [0.6] * 4
    gini = report.tables["Inequality of per-agent state (Gini)"]["mean"].to_list()
    # month 1 wealth 20, 20, 20, 10, 10: sum |xi - xj| = 2 * 6 * 10 = 120; / (2 * 25 * 16)
    assert gini[0] == pytest.approx(0.15)
    assert "World state trajectories" in report.tables


def test_report_of_a_run_without_state_has_no_state_sections(tmp_path):
    from analysis.report import analyze_run

    run = load_run(run_scenario(SCENARIOS / "trust.yaml", RunConfig(
        backend="scripted", seed=0, out=tmp_path, steps=2)).path)
    assert not any(k.startswith(("World state", "Time to", "Over-use"))
                   for k in analyze_run(run).tables)
