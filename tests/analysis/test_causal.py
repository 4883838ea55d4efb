"""analysis.causal on scripted public-goods forks with a planted effect, computed by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from analysis.causal import fork_pairs, mean_value, paired_effects
from analysis.report import analyze_path
from sim.run.fork import fork_run, fork_set
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig
from tests.conftest import SCENARIOS

AT = 4
# Cohort "low" plays `random` on 4 with p = 0.5, else one of the 10 other levels of 0..20
# (step 2) with 0.05 each: mean 0.5 * 4 + 0.05 * (110 - 4) = 7.3. Swapped to 10 at the fork:
# 0.5 * 10 + 0.05 * (110 - 10) = 10. Per low agent +2.7; half the agents are low: +1.35.
# Cohort "steady" plays `random` on 10 throughout: the same draws in both arms, effect 0.
LOW_EFFECT = 2.7
AGGREGATE = LOW_EFFECT * 8 / 16
SWAP = """interventions:
  - id: raise
    policy: {cohort: low, policy: {name: random, option: "10", p: 0.5}}
"""


def _scenario(tmp_path: Path) -> Path:
    raw: dict[str, Any] = yaml.safe_load((SCENARIOS / "public_goods_gated.yaml").read_text())
    raw["rounds"] = 12
    raw["population"]["cohorts"] = [
        {"name": "steady", "count": 8, "policy": {"name": "random", "option": "10", "p": 0.5}},
        {"name": "low", "count": 8, "policy": {"name": "random", "option": "4", "p": 0.5}}]
    path = tmp_path / "pg.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("causal")
    parent = run_scenario(_scenario(tmp), RunConfig(backend="scripted", seed=3, replicas=2,
                                                    out=tmp / "runs")).path
    swap = tmp / "swap.yaml"
    swap.write_text(SWAP)
    forks = fork_set(parent, AT, replicas=8, interventions=swap, seed="new")
    return parent, forks.path


def test_the_planted_effect_is_recovered_within_its_interval(runs: tuple[Path, Path]):
    _parent, forkset = runs
    pairs = fork_pairs(forkset)
    assert pairs is not None and pairs.baseline == "unchanged" and len(pairs.pairs) == 8
    aggregate, per_agent = paired_effects(pairs, [mean_value("contribute")])
    row = aggregate.row(0, named=True)
    assert row["n"] == 16  # 8 continuations x 2 replicas
    assert row["ci_low"] < AGGREGATE < row["ci_high"]
    assert row["ci_high"] - row["ci_low"] < 2.0  # informative, not vacuous
    steady = per_agent.filter(pl.col("agent") < "a008")
    assert (steady["effect"] == 0).all() and (steady["ci_low"] == 0).all()
    low = per_agent.filter(pl.col("agent") >= "a008")
    assert low["effect"].mean() == pytest.approx(LOW_EFFECT, abs=0.6)


def test_the_intervention_row_is_at_the_fork_point(runs: tuple[Path, Path]):
    from analysis.io import load_run

    _parent, forkset = runs
    changed = load_run(forkset / "changed-00")
    rows = changed.events.filter(pl.col("kind") == "intervention")
    assert rows["intervention"].to_list() == ["raise", "raise"]
    assert rows["step"].to_list() == [AT + 1] * 2
    unchanged = load_run(forkset / "unchanged-00")
    assert unchanged.events.filter(pl.col("kind") == "intervention").is_empty()


def test_an_unchanged_fork_has_effect_zero_exactly(runs: tuple[Path, Path]):
    parent, _forkset = runs
    fork = fork_run(parent, AT).path
    pairs = fork_pairs(fork)
    assert pairs is not None and pairs.baseline == "parent"
    aggregate, per_agent = paired_effects(pairs)
    assert set(aggregate["measure"]) == {"mean value · contribute", "payoff · contribute"}
    assert (aggregate["effect"] == 0).all() and (aggregate["n"] == 2).all()
    assert (aggregate["ci_low"] == 0).all() and (aggregate["ci_high"] == 0).all()
    assert (per_agent["effect"] == 0).all()


def test_the_report_has_a_fork_effects_section(runs: tuple[Path, Path]):
    _parent, forkset = runs
    report = analyze_path(forkset)
    table = report.tables["Fork effects"]
    assert table.filter(pl.col("measure") == "mean value · contribute")["n"].item() == 16
    assert "Fork effects per agent" in report.tables
