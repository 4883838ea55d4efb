"""Report sections of world state: shown only for runs whose scenario declares state.

:func:`state_sections` adds, from :mod:`analysis.state` and :mod:`analysis.interventions`:
trajectories of every numeric variable with a replicate band; the Gini of every per-agent
variable over rounds; with a ``stop:`` condition, time to collapse (Kaplan-Meier, censored)
and sustainability of the variables it reads; for a choice stage whose ``update:`` moves a
global stock by the catch (``total_value``), over-use against the sustainable catch of that
very update; and, when interventions are recorded, each global variable's mean before and
after every intervention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from analysis import charts, interventions
from analysis import state as st
from analysis.io import Run
from analysis.stats import RUN_KEYS
from sim.scenario.formula import Formula

if TYPE_CHECKING:
    from analysis.report import Report

__all__ = ["state_sections"]

_UPDATE_NAMES = {"total_value", "mean_value", "n_actors", "rounds", "n_agents"}


def state_sections(report: Report, runs: Sequence[Run]) -> None:
    """Add the world-state sections of ``runs`` (nothing if no run recorded state)."""
    frames = [r.state for r in runs if not r.state.is_empty()]
    if not frames:
        return
    state = pl.concat(frames, how="diagonal_relaxed")
    events = pl.concat([r.events for r in runs], how="diagonal_relaxed")
    scenario = runs[0].scenario
    _trajectories(report, state)
    _inequality(report, state)
    if scenario.get("stop"):
        _collapse(report, state, scenario)
    _overuse(report, events, state, scenario)
    _interventions(report, events, state)


def _trajectories(report: Report, state: pl.DataFrame) -> None:
    traj = st.trajectories(state)
    if traj.is_empty():
        return
    lines = traj.with_columns(variable=pl.col("scope") + ":" + pl.col("name"))
    report.add("World state trajectories", traj,
               "Per round, each numeric variable at the round's end: mean over replicas and "
               "the 10%..90% band (per-agent variables averaged over agents first); n = "
               "replicas still running (a stopped replica leaves no later rounds).",
               charts.line_chart(lines, x="round", y="mean", series="variable", low="low",
                                 high="high", title="world state", y_title="value"))


def _inequality(report: Report, state: pl.DataFrame) -> None:
    per = st.inequality(state)
    if per.is_empty():
        return
    band = per.filter(pl.col("gini").is_not_null()).group_by("name", "round").agg(
        mean=pl.col("gini").mean(), low=pl.col("gini").quantile(0.1, interpolation="linear"),
        high=pl.col("gini").quantile(0.9, interpolation="linear"),
        n=pl.len().cast(pl.Int64)).sort("name", "round")
    if band.is_empty():
        return
    report.add("Inequality of per-agent state (Gini)", band,
               "Gini of each per-agent variable across a replica's agents at each round's "
               "end (0: equal, (n-1)/n: one holds all; undefined for negative values), mean "
               "and 10%..90% band over replicas.",
               charts.line_chart(band, x="round", y="mean", series="name", low="low",
                                 high="high", y_domain=(0, 1), title="Gini over rounds",
                                 y_title="Gini"))


def _collapse(report: Report, state: pl.DataFrame, scenario: dict[str, Any]) -> None:
    stop = str(scenario["stop"])
    times = st.collapse_times(state, stop, params=scenario.get("params", {}),
                              rounds=scenario.get("rounds"))
    report.add("Time to collapse", st.kaplan_meier(times),
               f"Collapse: the scenario's stop condition ({stop}) held after a step. "
               "Kaplan-Meier survival over rounds; a replica that never collapsed is "
               "censored at its last round. se: Greenwood; interval: log-log, 95%.")
    stocks = sorted(n.removeprefix("state.") for n in Formula.parse(stop, texts=None).names
                    if n.startswith("state."))
    numeric = set(state.filter(pl.col("value").is_not_null())["name"].to_list())
    for name in (s for s in stocks if s in numeric):
        report.add(f"Sustainability · {name}", st.sustainability(state, times, name=name),
                   "Per replica: collapsed, rounds survived (collapse round - 1, or all "
                   f"observed rounds), mean and final {name} at the rounds' ends.")


def _overuse(report: Report, events: pl.DataFrame, state: pl.DataFrame,
             scenario: dict[str, Any]) -> None:
    params = {k: float(v) for k, v in (scenario.get("params") or {}).items()}
    declared = scenario.get("state") or {}
    n_agents = float((scenario.get("population") or {}).get("size", 1))
    for stage in scenario.get("stages", []):
        if stage.get("kind") != "choice":
            continue
        for target, source in (stage.get("update") or {}).items():
            name = str(target).removeprefix("state.")
            if not str(target).startswith("state.") or name not in declared:
                continue
            names = Formula.parse(str(source), texts=None).names
            if "total_value" not in names or names - _UPDATE_NAMES - set(params) \
                    - {str(target)}:
                continue
            rule = st.sustainable_from_update(str(source), name,
                                              {**params, "n_agents": n_agents,
                                               "rounds": float(scenario.get("rounds", 0))})
            table = st.overuse(events, state, stage=stage["id"], name=name,
                               initial=float(declared[name]["initial"]), sustainable=rule)
            if table.is_empty():
                continue
            report.add(f"Over-use · {stage['id']} on {name}", table,
                       "Per replica and round: total catch / sustainable catch (the largest "
                       f"total after which the update {source} leaves {name} where it was; "
                       "half the stock when it doubles). Above 1 the stock falls. over_share: "
                       "share of catches above the sustainable catch per catcher (GovSim's "
                       "over-usage).")


def _interventions(report: Report, events: pl.DataFrame, state: pl.DataFrame) -> None:
    if interventions.intervention_rounds(events).is_empty():
        return
    values = st.round_values(state.filter(pl.col("scope") == "global"))
    for name in sorted(set(values["name"].to_list())):
        measure = values.filter(pl.col("name") == name).select(*RUN_KEYS, "round", "value")
        shifts = interventions.intervention_shifts(measure, events)
        report.add(f"Interventions · {name}", interventions.summarize_shifts(shifts),
                   f"Mean {name} at the rounds' ends before each intervention's round and "
                   "from it on, per replica; difference = after - before, with a 95% t "
                   "interval over replicas.")
