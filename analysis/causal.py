"""Effects of a fork: the same agents, the same history, one change (``traitlab fork``).

A fork continues its parent from a step with a change. Its effect on a behaviour measure is
the paired difference between the changed arm and a control arm after the fork step:

- a single fork (``traitlab fork RUN --at k``) against its parent's own continuation: with
  ``--seed keep`` both draw from the same seed streams, so a difference is the change's;
- a fork set (``--replicas N``) pairs continuation i of the changed arm with continuation i
  of the unchanged arm (same draws), so sampled decoding gives N paired differences.

The unit of pairing is (continuation, replica): each is one world seen with and without the
change. For each unit the measure's mean over rows after the fork step (agents and rounds;
the rounds both arms have) is taken in both arms; the effect is the mean of the unit
differences, with a t interval over units (``mean +- t_{n-1} sd / sqrt(n)``; none with one
unit, exact when every unit differs by the same amount). Per agent, the same over
continuations. Definitions and references: ``docs/measurement.md`` ("Fork effects").
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from scipy import stats as sps

from analysis.io import Run, load_run
from sim.errors import RunError

if TYPE_CHECKING:
    from analysis.report import Report

__all__ = ["ForkPairs", "Measure", "choice_rate", "fork_pairs", "fork_section", "mean_value",
           "measures_for", "paired_effects", "payoff", "state_variable"]

_ROWS = {"replica": pl.Int64, "agent": pl.String, "step": pl.Int64, "round": pl.Int64,
         "value": pl.Float64}


@dataclass(frozen=True)
class Measure:
    """A behaviour measure: a name and its rows (``replica, agent, step, round, value``)."""

    name: str
    rows: Callable[[Run], pl.DataFrame]


def _choices(run: Run, stage: str) -> pl.DataFrame:
    return run.events.filter(pl.col("stage") == stage, pl.col("kind") == "choice",
                             pl.col("status") == "ok")


def _select(df: pl.DataFrame, value: pl.Expr) -> pl.DataFrame:
    return df.select("replica", "agent", "step", "round", value.alias("value")).cast(_ROWS)


def choice_rate(stage: str, option: str) -> Measure:
    """Share of a choice stage's choices that are ``option`` (rows: 1 or 0)."""
    return Measure(f"share '{option}' · {stage}",
                   lambda run: _select(_choices(run, stage), (pl.col("choice") == option)
                                       .cast(pl.Float64)))


def mean_value(stage: str) -> Measure:
    """Mean numeric value chosen in a ``levels`` stage (a contribution, a catch, an offer)."""
    return Measure(f"mean value · {stage}",
                   lambda run: _select(_choices(run, stage), pl.col("value")))


def payoff(stage: str) -> Measure:
    """Mean payoff of a stage's choices."""
    return Measure(f"payoff · {stage}", lambda run: _select(
        _choices(run, stage).filter(pl.col("payoff").is_not_null()), pl.col("payoff")))


def state_variable(name: str) -> Measure:
    """A world-state variable after every step (global: agent null; per agent: its key)."""
    def rows(run: Run) -> pl.DataFrame:
        state = run.state.filter(pl.col("name") == name, pl.col("value").is_not_null())
        return _select(state, pl.col("value"))

    return Measure(f"state {name}", rows)


def measures_for(run: Run) -> list[Measure]:
    """The measures the analyzers compute for a run's stages and state.

    A ``levels`` stage: mean value; an ``options`` stage: the first option's share; a stage
    with a payoff: mean payoff; every numeric state variable.
    """
    out: list[Measure] = []
    for stage in run.scenario.get("stages", []):
        if stage.get("kind") != "choice":
            continue
        if stage.get("levels"):
            out.append(mean_value(stage["id"]))
        elif stage.get("options"):
            out.append(choice_rate(stage["id"], str(stage["options"][0])))
        if stage.get("payoff"):
            out.append(payoff(stage["id"]))
    names = run.state.filter(pl.col("value").is_not_null())["name"].unique(maintain_order=True)
    out.extend(state_variable(n) for n in names.to_list())
    return out


@dataclass(frozen=True)
class ForkPairs:
    """Changed and control runs, paired: ``pairs[i] = (continuation, changed, control)``.

    ``baseline``: ``"parent"`` (a single fork against its parent's continuation) or
    ``"unchanged"`` (the unchanged arm of a fork set).
    """

    step: int
    baseline: str
    pairs: list[tuple[int, Run, Run]]


def fork_pairs(path: str | Path) -> ForkPairs | None:
    """The pairs of a fork directory or a fork set (``None`` if ``path`` is neither).

    Raises:
        RunError: a fork set misses an arm of a continuation, or a parent is missing.
    """
    path = Path(path)
    index = path / "forkset.json"
    if index.is_file():
        data = json.loads(index.read_text())
        dirs = {(f["arm"], int(f["continuation"])): path / f["dir"] for f in data["forks"]}
        pairs = []
        for i in sorted({c for _, c in dirs}):
            arms = [dirs.get((arm, i)) for arm in ("changed", "unchanged")]
            if any(d is None or not (d / "manifest.json").is_file() for d in arms):
                raise RunError(f"{path}: continuation {i} lacks an arm. Fix: resume or "
                               "remake the fork set.")
            pairs.append((i, load_run(arms[0]), load_run(arms[1])))  # type: ignore[arg-type]
        return ForkPairs(step=int(data["step"]), baseline="unchanged", pairs=pairs)
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        return None
    link = json.loads(manifest_file.read_text()).get("parent")
    if link is None:
        return None
    fork = load_run(path)  # verifies the lineage: the parent exists and is unchanged
    parent = load_run((path / link["run_dir"]).resolve())
    return ForkPairs(step=int(link["step"]), baseline="parent", pairs=[(0, fork, parent)])


def _t_interval(d: np.ndarray, level: float) -> tuple[float | None, float | None]:
    if d.size < 2:
        return None, None
    half = float(sps.t.ppf((1 + level) / 2, d.size - 1)) * float(np.std(d, ddof=1)) \
        / math.sqrt(d.size)
    mean = float(np.mean(d))
    return mean - half, mean + half


def _unit_means(pairs: ForkPairs, measure: Measure, by: Sequence[str]) -> pl.DataFrame:
    """Mean of the measure after the fork step, per pair, arm and ``by`` keys."""
    frames = []
    for i, changed, control in pairs.pairs:
        arms = [(arm, measure.rows(run).filter(pl.col("step") > pairs.step))
                for arm, run in (("changed", changed), ("control", control))]
        # A change may add steps to a round (a stage switched on) or end a run sooner: the
        # arms are compared over the rounds both have after the fork step.
        common = set(arms[0][1]["round"].to_list()) & set(arms[1][1]["round"].to_list())
        for arm, rows in arms:
            rows = rows.filter(pl.col("round").is_in(sorted(common)))
            frames.append(rows.group_by(*by).agg(pl.col("value").mean()).with_columns(
                continuation=pl.lit(i), arm=pl.lit(arm)))
    if not frames:
        return pl.DataFrame()
    both = pl.concat(frames, how="vertical_relaxed")
    return both.pivot("arm", index=["continuation", *by], values="value").drop_nulls()


def paired_effects(pairs: ForkPairs, measures: Sequence[Measure] | None = None, *,
                   level: float = 0.95) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Aggregate and per-agent effects of the change on each measure, after the fork step.

    Returns:
        ``(aggregate, per_agent)``. Aggregate: ``measure, baseline, n, changed, control,
        effect, ci_low, ci_high`` with n the (continuation, replica) units. Per agent:
        ``measure, replica, agent, n, changed, control, effect, ci_low, ci_high`` with n the
        continuations.
    """
    if measures is None:
        measures = measures_for(pairs.pairs[0][1]) if pairs.pairs else []
    agg_rows, agent_rows = [], []
    for measure in measures:
        units = _unit_means(pairs, measure, ["replica"])
        if units.is_empty() or "changed" not in units.columns or "control" not in units.columns:
            continue
        d = (units["changed"] - units["control"]).to_numpy()
        low, high = _t_interval(d, level)
        agg_rows.append({"measure": measure.name, "baseline": pairs.baseline, "n": d.size,
                         "changed": float(units["changed"].mean()),
                         "control": float(units["control"].mean()),
                         "effect": float(np.mean(d)), "ci_low": low, "ci_high": high})
        per = _unit_means(pairs, measure, ["replica", "agent"])
        if per.is_empty() or per["agent"].null_count() == per.height:
            continue
        per = per.filter(pl.col("agent").is_not_null())
        for (replica, agent), group in per.group_by("replica", "agent", maintain_order=True):
            da = (group["changed"] - group["control"]).to_numpy()
            lo, hi = _t_interval(da, level)
            agent_rows.append({"measure": measure.name, "replica": replica, "agent": agent,
                               "n": da.size, "changed": float(group["changed"].mean()),
                               "control": float(group["control"].mean()),
                               "effect": float(np.mean(da)), "ci_low": lo, "ci_high": hi})
    agg_schema = {"measure": pl.String, "baseline": pl.String, "n": pl.Int64,
                  "changed": pl.Float64, "control": pl.Float64, "effect": pl.Float64,
                  "ci_low": pl.Float64, "ci_high": pl.Float64}
    agent_schema = {"measure": pl.String, "replica": pl.Int64, "agent": pl.String,
                    "n": pl.Int64, "changed": pl.Float64, "control": pl.Float64,
                    "effect": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64}
    return (pl.DataFrame(agg_rows, schema=agg_schema),
            pl.DataFrame(agent_rows, schema=agent_schema).sort("measure", "replica", "agent"))


def fork_section(report: Report, path: str | Path) -> None:
    """Add "Fork effects" (and per agent) to a report of a fork or a fork set, if it is one."""
    pairs = fork_pairs(path)
    if pairs is None or not pairs.pairs:
        return
    aggregate, per_agent = paired_effects(pairs)
    against = ("its parent's continuation (same draws)" if pairs.baseline == "parent" else
               "the unchanged arm of the same continuation (same draws)")
    report.add("Fork effects", aggregate,
               f"Changed arm minus {against}, after step {pairs.step}: per (continuation, "
               "replica) the mean of the measure over agents and rounds in each arm, then "
               "the mean of the paired differences with a 95% t interval over the n units "
               "(none for n = 1; docs/measurement.md, 'Fork effects').")
    if not per_agent.is_empty():
        report.add("Fork effects per agent", per_agent,
                   "The same per agent: its mean after the fork step in each arm, the mean "
                   "paired difference over the n continuations and its 95% t interval.")
