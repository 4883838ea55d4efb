"""World-state analyzers: trajectories, collapse, sustainability, over-use, inequality.

Every function reads :attr:`analysis.io.Run.state` (one row per variable and step: ``run_id,
replica, step, round, stage, scope, agent, name, value, text, refused``) and, for catches,
:attr:`analysis.io.Run.events`. The replica (``run_id, replica``) is the unit: bands and
intervals are taken across replicas. A replica whose run stopped (``stop:``) has no rows
after its last step, so later rounds are summarised over the replicas still running (the
``n`` column). Definitions and references: ``docs/measurement.md`` ("World state").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from analysis.stats import RUN_KEYS
from sim.scenario.formula import Formula

__all__ = ["collapse_times", "doubling", "gini", "inequality", "kaplan_meier", "overuse",
           "round_values", "sustainability", "sustainable_from_update", "trajectories"]


def round_values(state: pl.DataFrame, *, by: str = "round") -> pl.DataFrame:
    """Each numeric variable's value at the end of every round (or after every step).

    Args:
        state: a run's ``state`` frame.
        by: ``round`` (the value after the round's last step) or ``step``.

    Returns:
        ``run_id, replica, <by>, scope, agent, name, value`` (categorical variables dropped).
    """
    if by not in ("round", "step"):
        raise ValueError(f"by must be 'round' or 'step', got {by!r}")
    rows = state.filter(pl.col("value").is_not_null())
    keys = [*RUN_KEYS, by, "scope", "agent", "name"]
    return (rows.sort("step").group_by(keys, maintain_order=True)
            .agg(pl.col("value").last()).sort(keys, nulls_last=False))


def trajectories(state: pl.DataFrame, *, by: str = "round",
                 q: tuple[float, float] = (0.1, 0.9)) -> pl.DataFrame:
    """Mean and percentile band of every numeric variable across replicas, per round or step.

    A per-agent variable is first averaged over the agents of each replica.

    Returns:
        ``name, scope, <by>, mean, low, high, n`` (``low``/``high``: the ``q`` quantiles,
        linear interpolation; ``n``: replicas with a value).
    """
    per = (round_values(state, by=by).group_by([*RUN_KEYS, by, "scope", "name"])
           .agg(pl.col("value").mean()))
    return (per.group_by("name", "scope", by)
            .agg(mean=pl.col("value").mean(),
                 low=pl.col("value").quantile(q[0], interpolation="linear"),
                 high=pl.col("value").quantile(q[1], interpolation="linear"),
                 n=pl.len().cast(pl.Int64))
            .sort("scope", "name", by))


def gini(values: Sequence[float]) -> float | None:
    """Gini coefficient ``sum_ij |x_i - x_j| / (2 n^2 mean)`` of non-negative values.

    ``None`` for no values, a mean of 0 or a negative value (the measure needs shares of a
    positive total). Gini of ``[1, 2, 3, 4]`` is 0.25.
    """
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0 or (x < 0).any() or x.sum() <= 0:
        return None
    n = x.size
    ranks = np.arange(1, n + 1)  # sum_ij |x_i - x_j| = 2 sum_i (2i - n - 1) x_(i)
    return float(np.sum((2 * ranks - n - 1) * x) / (n * x.sum()))


def inequality(state: pl.DataFrame, *, by: str = "round") -> pl.DataFrame:
    """Gini of every per-agent numeric variable across the agents of a replica, over time.

    Returns:
        ``run_id, replica, <by>, name, gini, n_agents`` (``gini`` null where undefined).
    """
    rows = round_values(state.filter(pl.col("scope") == "agent"), by=by)
    out = [{"run_id": key[0], "replica": key[1], by: key[2], "name": key[3],
            "gini": gini(group["value"].to_list()), "n_agents": group.height}
           for key, group in rows.group_by([*RUN_KEYS, by, "name"])]
    return pl.DataFrame(out, schema={"run_id": pl.String, "replica": pl.Int32, by: pl.Int32,
                                     "name": pl.String, "gini": pl.Float64,
                                     "n_agents": pl.Int64}).sort([*RUN_KEYS, "name", by])


def collapse_times(state: pl.DataFrame, condition: str, *,
                   params: Mapping[str, float] | None = None,
                   rounds: int | None = None) -> pl.DataFrame:
    """When each replica's collapse ``condition`` (a formula over ``state.X``) first held.

    The condition is evaluated on the global state after every step, with ``params``,
    ``round``, ``rounds`` and the ``state.X`` names, like a scenario's ``stop:``.

    Returns:
        ``run_id, replica, rounds_observed, collapsed, collapse_round, rounds_survived``:
        a collapsed replica survived ``collapse_round - 1`` rounds; one that never collapsed
        is right-censored at its last observed round (``collapsed`` false).
    """
    formula = Formula.parse(condition, texts=None)
    rows = []
    shared = state.filter(pl.col("scope") == "global").sort("step")
    for key, steps in shared.group_by(RUN_KEYS, maintain_order=True):
        last, hit = 0, None
        for (_step, round_), names in steps.group_by("step", "round", maintain_order=True):
            values: dict[str, float | str] = {**(params or {}), "round": float(round_),
                                              "rounds": float(rounds or 0)}
            values.update({f"state.{n}": v if v is not None else t
                           for n, v, t in names.select("name", "value", "text").iter_rows()})
            last = max(last, int(round_))
            if hit is None and formula.evaluate(values):
                hit = int(round_)
        rows.append({"run_id": key[0], "replica": key[1], "rounds_observed": last,
                     "collapsed": hit is not None, "collapse_round": hit,
                     "rounds_survived": hit - 1 if hit is not None else last})
    return pl.DataFrame(rows, schema={"run_id": pl.String, "replica": pl.Int32,
                                      "rounds_observed": pl.Int64, "collapsed": pl.Boolean,
                                      "collapse_round": pl.Int64, "rounds_survived": pl.Int64})


def kaplan_meier(times: pl.DataFrame, *, z: float = 1.959964) -> pl.DataFrame:
    """Kaplan-Meier survival of the commons over rounds, from :func:`collapse_times`.

    A replica's time is its ``collapse_round`` (an event) or ``rounds_observed`` (censored:
    it was seen intact through that round). At every time ``t`` with an event or a
    censoring: ``at_risk`` (replicas with time ``>= t``), ``collapsed``, ``censored``,
    ``survival`` ``S(t) = prod (1 - d_i / n_i)``, Greenwood's ``se`` ``S sqrt(sum d_i /
    (n_i (n_i - d_i)))`` and a log-log interval (``ci_low``, ``ci_high``; null where ``S``
    is 0 or 1).
    """
    time = pl.when(pl.col("collapsed")).then(pl.col("collapse_round")) \
        .otherwise(pl.col("rounds_observed"))
    data = times.select(t=time, e=pl.col("collapsed"))
    rows, s, var = [], 1.0, 0.0
    for t in sorted(set(data["t"].to_list())):
        at_risk = data.filter(pl.col("t") >= t).height
        d = data.filter((pl.col("t") == t) & pl.col("e")).height
        c = data.filter((pl.col("t") == t) & ~pl.col("e")).height
        s *= 1 - d / at_risk
        var = var + d / (at_risk * (at_risk - d)) if at_risk > d else math.inf
        low = high = None
        if 0 < s < 1 and math.isfinite(var):
            width = z * math.sqrt(var) / abs(math.log(s))
            low, high = s ** math.exp(width), s ** math.exp(-width)
        rows.append({"round": t, "at_risk": at_risk, "collapsed": d, "censored": c,
                     "survival": s, "se": s * math.sqrt(var) if math.isfinite(var) else None,
                     "ci_low": low, "ci_high": high})
    return pl.DataFrame(rows, schema={"round": pl.Int64, "at_risk": pl.Int64,
                                      "collapsed": pl.Int64, "censored": pl.Int64,
                                      "survival": pl.Float64, "se": pl.Float64,
                                      "ci_low": pl.Float64, "ci_high": pl.Float64})


def sustainability(state: pl.DataFrame, times: pl.DataFrame, *, name: str) -> pl.DataFrame:
    """Rounds survived and the stock ``name`` (a global variable) kept, per replica.

    Returns:
        ``run_id, replica, collapsed, rounds_survived, mean_stock, final_stock``:
        ``mean_stock`` is the mean over the replica's rounds of the stock at the round's end.
    """
    stock = round_values(state.filter(pl.col("scope") == "global", pl.col("name") == name))
    per = stock.group_by(RUN_KEYS).agg(mean_stock=pl.col("value").mean(),
                                       final_stock=pl.col("value").sort_by("round").last())
    return times.select(*RUN_KEYS, "collapsed", "rounds_survived").join(
        per, on=list(RUN_KEYS), how="left").sort(RUN_KEYS)


def doubling(stock: float) -> float:
    """Sustainable total catch when the stock left doubles (up to a cap at or above it): half."""
    return stock / 2


def sustainable_from_update(update: str, name: str, values: Mapping[str, Any],
                            *, iterations: int = 60) -> Callable[[float], float]:
    """The sustainable catch of a scenario's own stock update, found by bisection.

    ``update`` is the formula of ``state.<name>`` after the catch stage (it may read
    ``state.<name>``, ``total_value``, ``mean_value``, ``n_actors`` and ``values``: params,
    ``round``, ``rounds``, ``n_agents``). The returned function gives, for a stock ``L``, the
    largest total catch ``T`` in ``[0, L]`` after which the update leaves at least ``L``
    (0 if even no catch keeps it), assuming the update falls as ``T`` grows. For
    ``min(cap, 2 * (state.lake - total_value))`` it is ``L / 2``.
    """
    formula = Formula.parse(update, texts=None)
    n = float(values.get("n_agents", 1.0)) or 1.0

    def after(stock: float, total: float) -> float:
        return formula.evaluate({**values, f"state.{name}": stock, "total_value": total,
                                 "mean_value": total / n, "n_actors": n})

    def sustainable(stock: float) -> float:
        if after(stock, 0.0) < stock - 1e-9:
            return 0.0
        low, high = 0.0, stock
        for _ in range(iterations):
            mid = (low + high) / 2
            low, high = (mid, high) if after(stock, mid) >= stock - 1e-9 else (low, mid)
        return round(low, 6)
    return sustainable


def overuse(events: pl.DataFrame, state: pl.DataFrame, *, stage: str, name: str,
            initial: float, sustainable: Callable[[float], float] = doubling) -> pl.DataFrame:
    """Total catch relative to the sustainable catch, per replica and round.

    The stock before a catch is the value of ``name`` after the replica's previous step
    (``initial`` before its first). ``sustainable(stock)`` is the total catch that keeps the
    stock where it is (:func:`doubling`: half of it).

    Returns:
        ``run_id, replica, round, stock, total_catch, sustainable_catch, ratio, over_share``:
        ``ratio`` = total / sustainable (null where the sustainable catch is 0; above 1 the
        stock falls); ``over_share``: the share of the round's catches above the sustainable
        catch divided among the catchers (GovSim's over-usage).
    """
    stock = (state.filter(pl.col("scope") == "global", pl.col("name") == name)
             .sort("step").with_columns(
                 stock=pl.col("value").shift(1, fill_value=initial).over(RUN_KEYS))
             .select(*RUN_KEYS, "step", "stock"))
    catches = events.filter(pl.col("stage") == stage, pl.col("kind") == "choice",
                            pl.col("value").is_not_null())
    per = catches.group_by(*RUN_KEYS, "step", "round").agg(
        total_catch=pl.col("value").sum(), catches=pl.col("value"))
    out = per.join(stock, on=[*RUN_KEYS, "step"], how="inner").sort(*RUN_KEYS, "round")
    fair = [sustainable(x) for x in out["stock"].to_list()]
    over = [sum(c > f / len(cs) + 1e-9 for c in cs) / len(cs)
            for f, cs in zip(fair, out["catches"].to_list(), strict=True)]
    return out.with_columns(sustainable_catch=pl.Series(fair, dtype=pl.Float64),
                            over_share=pl.Series(over, dtype=pl.Float64)).with_columns(
        ratio=pl.when(pl.col("sustainable_catch") > 0)
        .then(pl.col("total_catch") / pl.col("sustainable_catch"))).select(
        *RUN_KEYS, "round", "stock", "total_catch", "sustainable_catch", "ratio", "over_share")
