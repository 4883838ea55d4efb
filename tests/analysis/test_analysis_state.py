"""World-state analyzers on hand-made frames with hand-computed answers."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest

from analysis.interventions import intervention_rounds, intervention_shifts, summarize_shifts
from analysis.state import (
    collapse_times,
    gini,
    inequality,
    kaplan_meier,
    overuse,
    sustainability,
    sustainable_from_update,
    trajectories,
)
from sim.records.schemas import STATE_SCHEMA


def _state(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """State rows (``step`` doubles as ``round``; one stage ``fish``) with ``run_id``."""
    full = [{"run_id": "r", "stage": "fish", "scope": "global", "agent": None, "text": None,
             "refused": False, **row} for row in rows]
    full = [{"round": row["step"], **row} for row in full]
    return pl.DataFrame(full, schema={**STATE_SCHEMA, "run_id": pl.String})


def _lakes(series: dict[int, list[float]]) -> pl.DataFrame:
    return _state([{"replica": r, "step": i + 1, "name": "lake", "value": v}
                   for r, values in series.items() for i, v in enumerate(values)])


def test_gini_is_pinned_to_hand_computed_values():
    assert gini([1, 2, 3, 4]) == pytest.approx(0.25)  # sum |xi - xj| = 20; 20 / (2 16 2.5)
    assert gini([5, 5, 5]) == 0.0
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)  # (n - 1) / n: one holds everything
    assert gini([]) is None and gini([0, 0]) is None and gini([-1, 3]) is None


def test_inequality_of_per_agent_state_per_round():
    rows = [{"replica": 0, "step": s, "scope": "agent", "agent": f"a{i}", "name": "wealth",
             "value": v * s} for s in (1, 2) for i, v in enumerate([1, 2, 3, 4])]
    out = inequality(_state(rows))
    assert out["gini"].to_list() == pytest.approx([0.25, 0.25])  # scaling keeps the Gini
    assert out["n_agents"].to_list() == [4, 4]


def test_trajectories_give_the_mean_and_a_percentile_band_across_replicas():
    # Round 1: 10, 20, 40 -> mean 70/3; 10% at position 0.2 -> 12; 90% at 1.8 -> 36.
    out = trajectories(_lakes({0: [10, 5], 1: [20, 5], 2: [40]}))
    first, second = out.row(0, named=True), out.row(1, named=True)
    assert (first["mean"], first["low"], first["high"], first["n"]) == pytest.approx(
        (70 / 3, 12.0, 36.0, 3))
    assert (second["mean"], second["low"], second["high"], second["n"]) == (5.0, 5.0, 5.0, 2)


def test_collapse_times_are_censored_when_the_condition_never_held():
    state = _lakes({0: [80, 40, 4], 1: [100, 100, 100, 100], 2: [3]})
    out = collapse_times(state, "state.lake < collapse", params={"collapse": 5}).sort("replica")
    assert out["collapsed"].to_list() == [True, False, True]
    assert out["collapse_round"].to_list() == [3, None, 1]
    assert out["rounds_survived"].to_list() == [2, 4, 0]
    assert out["rounds_observed"].to_list() == [3, 4, 1]
    kept = sustainability(state, out, name="lake")
    assert kept["mean_stock"].to_list() == pytest.approx([124 / 3, 100.0, 3.0])
    assert kept["final_stock"].to_list() == [4.0, 100.0, 3.0]


def test_kaplan_meier_with_greenwood_errors_by_hand():
    """Times (collapse round, collapsed): (2, y), (3, n), (3, y), (5, y), (5, n).

    t = 2: 5 at risk, 1 collapses: S = 4/5 = 0.8; Greenwood sum 1 / (5 * 4) = 0.05.
    t = 3: 4 at risk, 1 collapses, 1 censored: S = 0.8 * 3/4 = 0.6; sum + 1 / (4 * 3).
    t = 5: 2 at risk, 1 collapses, 1 censored: S = 0.6 * 1/2 = 0.3; sum + 1 / (2 * 1).
    """
    times = pl.DataFrame({"collapsed": [True, False, True, True, False],
                          "collapse_round": [2, None, 3, 5, None],
                          "rounds_observed": [2, 3, 3, 5, 5]})
    km = kaplan_meier(times)
    assert km["round"].to_list() == [2, 3, 5]
    assert km["at_risk"].to_list() == [5, 4, 2]
    assert km["censored"].to_list() == [0, 1, 1]
    assert km["survival"].to_list() == pytest.approx([0.8, 0.6, 0.3])
    assert km["se"].to_list() == pytest.approx(
        [0.8 * math.sqrt(0.05), 0.6 * math.sqrt(0.05 + 1 / 12),
         0.3 * math.sqrt(0.05 + 1 / 12 + 1 / 2)])
    # log-log at t = 2: w = 1.96 sqrt(0.05) / |ln 0.8| = 1.9640; 0.8^exp(+-w)
    assert (km["ci_low"][0], km["ci_high"][0]) == pytest.approx((0.2038, 0.9692), abs=1e-4)


def test_sustainable_catch_of_the_scenarios_own_update():
    doubling = sustainable_from_update("min(cap, 2 * (state.lake - total_value))", "lake",
                                       {"cap": 100, "n_agents": 5})
    assert [doubling(x) for x in (100, 60, 7)] == pytest.approx([50, 30, 3.5])
    slower = sustainable_from_update("min(cap, 1.5 * (state.lake - total_value))", "lake",
                                     {"cap": 100})
    assert slower(90) == pytest.approx(30)  # L (1 - 1 / 1.5)
    assert sustainable_from_update("state.lake - 1 - total_value", "lake", {})(10) == 0.0


def test_overuse_relative_to_the_sustainable_catch():
    """Stock 100 then 40 (initial 100): catches 20, 20, 20, 10, 10 (80 of a sustainable 50:
    ratio 1.6, 3 of 5 above 50 / 5) then 2, 2, 2, 2, 2 (10 of 20: 0.5, none above 4)."""
    state = _lakes({0: [40, 20]})
    catches = [20, 20, 20, 10, 10, 2, 2, 2, 2, 2]
    events = pl.DataFrame({"run_id": "r", "replica": 0, "stage": "fish", "kind": "choice",
                           "step": [1] * 5 + [2] * 5, "round": [1] * 5 + [2] * 5,
                           "value": [float(c) for c in catches]})
    out = overuse(events, state, stage="fish", name="lake", initial=100)
    assert out["stock"].to_list() == [100.0, 40.0]
    assert out["sustainable_catch"].to_list() == [50.0, 20.0]
    assert out["ratio"].to_list() == pytest.approx([1.6, 0.5])
    assert out["over_share"].to_list() == pytest.approx([0.6, 0.0])


def _interventions(rounds: dict[int, int]) -> pl.DataFrame:
    rows = [{"run_id": "r", "replica": r, "kind": "intervention", "intervention": "quota",
             "round": k, "step": 2 * k - 1} for r, k in rounds.items()]
    rows.append({"run_id": "r", "replica": 0, "kind": "choice", "intervention": None,
                 "round": 1, "step": 1})
    return pl.DataFrame(rows)


def test_measures_align_on_interventions_per_replica():
    """Quota from round 3. Replica 0: 10, 20 | 30, 50 -> 15 | 40, +25. Replica 1: 0, 10 |
    10, 20 -> 5 | 15, +10. Over replicas: mean 17.5, sd sqrt(112.5), t(0.975, 1) =
    12.7062: 17.5 +- 12.7062 * sqrt(112.5) / sqrt(2) = 17.5 +- 95.30."""
    measure = pl.DataFrame({"run_id": "r", "replica": [0] * 4 + [1] * 4,
                            "round": [1, 2, 3, 4] * 2,
                            "value": [10.0, 20, 30, 50, 0, 10, 10, 20]})
    events = _interventions({0: 3, 1: 3})
    assert intervention_rounds(events)["round"].to_list() == [3, 3]
    shifts = intervention_shifts(measure, events)
    assert shifts["before"].to_list() == [15.0, 5.0]
    assert shifts["after"].to_list() == [40.0, 15.0]
    assert shifts["difference"].to_list() == [25.0, 10.0]
    summary = summarize_shifts(shifts).row(0, named=True)
    half = 12.7062047 * math.sqrt(112.5) / math.sqrt(2)
    assert (summary["difference"], summary["ci_low"], summary["ci_high"]) == pytest.approx(
        (17.5, 17.5 - half, 17.5 + half))
    assert summary["n_replicas"] == 2
    near = intervention_shifts(measure, events, window=1)
    assert near["difference"].to_list() == [10.0, 0.0]  # round 2 vs round 3


def test_no_intervention_rows_give_empty_frames():
    measure = pl.DataFrame({"run_id": "r", "replica": [0], "round": [1], "value": [1.0]})
    events = pl.DataFrame({"run_id": "r", "replica": [0], "kind": ["choice"], "round": [1]})
    assert intervention_shifts(measure, events).is_empty()
    assert summarize_shifts(intervention_shifts(measure, events)).is_empty()
