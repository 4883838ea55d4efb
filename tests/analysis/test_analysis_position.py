"""Position bias analysis: P(option | shown position) and the position spread."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from analysis.position import SPREAD_THRESHOLD, position_bias, position_cells
from sim.backends.scripted import ScriptedBackend
from sim.engine.loop import Engine
from sim.executors.local import LocalExecutor
from sim.records.schemas import EVENT_SCHEMA, frame
from sim.scenario.spec import RunConfig, ScenarioSpec
from tests.support.position_backend import PositionBackend


def spec(order: str, *, size: int = 16, rounds: int = 6) -> ScenarioSpec:
    return ScenarioSpec.model_validate({
        "name": "test-position", "rounds": rounds, "population": {"size": size},
        "stages": [{"id": "play", "kind": "choice", "prompt": "Pick one of {options}.",
                    "options": ["cooperate", "defect"], "groups": {"by": "random_pairs"},
                    "option_order": order, "payoff": {"matrix": [[3, 0], [5, 1]]}}],
    })


def events(order: str, backend: Any, *, replicas: int = 8, seed: int = 0) -> pl.DataFrame:
    engine = Engine(spec(order), RunConfig(backend="scripted", seed=seed, replicas=replicas),
                    LocalExecutor(backend))
    rows: list[dict[str, Any]] = []
    while engine.running:
        rows += engine.step().rows
    return frame(rows, EVENT_SCHEMA).with_columns(pl.lit("r1").alias("run_id"))


def cell(cells: pl.DataFrame, option: str, position: int) -> dict[str, Any]:
    return cells.filter((pl.col("option") == option)
                        & (pl.col("position") == position)).row(0, named=True)


PLANTED = PositionBackend({"cooperate": 0.6, "defect": 0.4}, bonus=0.3)


def test_hand_computed_cells_from_recorded_orders():
    # Two runs, one balanced choice each: P(a | first) = (0.9 + 0.7) / 2, P(a | second)
    # = (0.5 + 0.3) / 2, so the spread is 0.8 - 0.4 = 0.4.
    base = {"kind": "choice", "status": "ok", "stage": "s", "options": ["a", "b"],
            "choice_index": 0, "shown_order": [0, 1], "shown_orders": [[0, 1], [1, 0]]}
    rows = [{**base, "replica": 0, "order_probs": [[0.9, 0.1], [0.5, 0.5]]},
            {**base, "replica": 1, "order_probs": [[0.7, 0.3], [0.3, 0.7]]}]
    ev = frame(rows, EVENT_SCHEMA).with_columns(pl.lit("x").alias("run_id"))
    cells = position_cells(ev, np.random.default_rng(0), n_boot=200)
    assert cell(cells, "a", 0)["estimate"] == pytest.approx(0.8)
    assert cell(cells, "a", 1)["estimate"] == pytest.approx(0.4)
    assert cell(cells, "b", 1)["estimate"] == pytest.approx(0.2)  # b shown second: 0.1, 0.3
    assert cell(cells, "a", 0)["n"] == 2 and cell(cells, "a", 0)["n_clusters"] == 2
    bias = position_bias(ev, np.random.default_rng(0), n_boot=200).row(0, named=True)
    assert bias["spread"] == pytest.approx(0.4) and bias["flagged"]


def test_planted_first_position_bonus_is_recovered_from_balanced_probabilities():
    ev = events("balanced", PLANTED)
    cells = position_cells(ev, np.random.default_rng(0), n_boot=200)
    for option, position, truth in [("cooperate", 0, 0.75), ("cooperate", 1, 0.45),
                                    ("defect", 0, 0.55), ("defect", 1, 0.25)]:
        c = cell(cells, option, position)
        assert c["ci_low"] - 1e-9 <= truth <= c["ci_high"] + 1e-9
        assert c["estimate"] == pytest.approx(truth)
    bias = position_bias(ev, np.random.default_rng(0), n_boot=200).row(0, named=True)
    assert bias["spread"] == pytest.approx(0.3) and bias["flagged"]
    assert bias["source"] == "probabilities"


def test_planted_bonus_is_recovered_from_shuffled_choices_alone():
    # Without per-order probabilities only the sampled choices remain: noisy 95% intervals,
    # so over four seeds most planted cells lie inside them and the bonus is always flagged.
    covered = 0
    for seed in range(4):
        ev = events("shuffled", PLANTED, replicas=16, seed=seed).with_columns(
            pl.lit(None, dtype=EVENT_SCHEMA["order_probs"]).alias("order_probs"))
        cells = position_cells(ev, np.random.default_rng(1), n_boot=500)
        for option, position, truth in [("cooperate", 0, 0.75), ("cooperate", 1, 0.45)]:
            c = cell(cells, option, position)
            assert c["source"] == "choices" and abs(c["estimate"] - truth) < 0.06
            covered += c["ci_low"] <= truth <= c["ci_high"]
        bias = position_bias(ev, np.random.default_rng(1), n_boot=500).row(0, named=True)
        assert abs(bias["spread"] - 0.3) < 0.08 and bias["flagged"]
    assert covered >= 6


@pytest.mark.parametrize("order", ["balanced", "shuffled"])
def test_a_run_without_position_bias_is_not_flagged(order):
    no_bias = PositionBackend({"cooperate": 0.6, "defect": 0.4}, bonus=0.0)
    ev = events(order, no_bias, replicas=16)
    if order == "shuffled":  # the noisier, choices-only path
        ev = ev.with_columns(pl.lit(None, dtype=EVENT_SCHEMA["order_probs"]).alias("order_probs"))
    bias = position_bias(ev, np.random.default_rng(0), n_boot=200).row(0, named=True)
    assert bias["spread"] < SPREAD_THRESHOLD and not bias["flagged"]


def test_fixed_order_is_reported_as_not_identifiable():
    ev = events("fixed", ScriptedBackend(), replicas=2)
    bias = position_bias(ev, np.random.default_rng(0), n_boot=50).row(0, named=True)
    assert bias["source"] == "fixed" and bias["spread"] is None and not bias["flagged"]


def test_analyze_prints_the_cells_and_warns_on_a_planted_bias(capsys):
    from pathlib import Path

    from analysis.io import Run
    from analysis.report import analyze_runs, print_report
    from sim.records.schemas import AGENT_SCHEMA, NETWORK_SCHEMA, SURVEY_SCHEMA

    def run(ev: pl.DataFrame) -> Run:
        return Run(path=Path("r1"), manifest={"scenario": "t", "seed": 0, "status": "complete"},
                   scenario=spec("balanced").model_dump(mode="json"), events=ev,
                   agents=pl.DataFrame(schema={"run_id": pl.String, **AGENT_SCHEMA}),
                   network=pl.DataFrame(schema=NETWORK_SCHEMA),
                   surveys=pl.DataFrame(schema=SURVEY_SCHEMA))

    biased = analyze_runs([run(events("balanced", PLANTED, replicas=2))], n_boot=50)
    assert biased.tables["Choice by shown position"].height == 4
    print_report(biased)
    out = capsys.readouterr().out
    assert "WARNING: listing" in out and "balanced" in out.split("WARNING")[-1]
    clean = analyze_runs([run(events("balanced", ScriptedBackend(), replicas=2))], n_boot=50)
    assert clean.tables["Position bias"]["flagged"].to_list() == [False]
    assert "Position bias warning" not in clean.tables
