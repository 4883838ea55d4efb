"""Alignment on interventions: a measure before and after each intervention, per replica.

An intervention is recorded as an event row of ``kind == "intervention"`` with its id in the
``intervention`` column and the ``round`` from which it acts (the same round in every
replica for ``at: {round: k}``; the round a condition first held for a conditional one).
Definitions: ``docs/measurement.md`` ("World state").
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy import stats as sps

from analysis.stats import RUN_KEYS

__all__ = ["intervention_rounds", "intervention_shifts", "summarize_shifts"]


def intervention_rounds(events: pl.DataFrame) -> pl.DataFrame:
    """The first round of every intervention in every replica.

    Returns:
        ``run_id, replica, intervention, round`` (empty without intervention rows).
    """
    schema = {"run_id": pl.String, "replica": pl.Int32, "intervention": pl.String,
              "round": pl.Int32}
    if "intervention" not in events.columns:
        return pl.DataFrame(schema=schema)
    rows = events.filter(pl.col("kind") == "intervention")
    return (rows.group_by(*RUN_KEYS, "intervention").agg(pl.col("round").min())
            .select(*schema).cast(schema).sort(*RUN_KEYS, "round", "intervention"))


def intervention_shifts(measure: pl.DataFrame, events: pl.DataFrame, *,
                        window: int | None = None) -> pl.DataFrame:
    """A per-round measure's mean before and after each intervention, per replica.

    Args:
        measure: ``run_id, replica, round, value`` (one value per round, e.g. the stock at
            the round's end or the over-use ratio; several per round are averaged first).
        events: the run's events (for the intervention rows).
        window: rounds on each side (``None``: all). For an intervention acting from round
            ``k``: before = rounds ``k - window .. k - 1``, after = ``k .. k + window - 1``.

    Returns:
        ``intervention, run_id, replica, round, before, after, difference, n_before,
        n_after`` (``difference`` = after - before; null when a side has no rounds).
    """
    at = intervention_rounds(events).rename({"round": "at"})
    per = measure.group_by(*RUN_KEYS, "round").agg(pl.col("value").mean())
    rows = per.join(at, on=list(RUN_KEYS), how="inner")
    side = pl.when(pl.col("round") < pl.col("at")).then(pl.lit("before")).otherwise(
        pl.lit("after"))
    if window is not None:
        rows = rows.filter((pl.col("round") >= pl.col("at") - window)
                           & (pl.col("round") < pl.col("at") + window))
    sides = rows.with_columns(side=side).group_by("intervention", *RUN_KEYS, "at", "side").agg(
        mean=pl.col("value").mean(), n=pl.len().cast(pl.Int64))
    wide = at.select("intervention", *RUN_KEYS, "at")
    for name in ("before", "after"):
        one = sides.filter(pl.col("side") == name).select(
            "intervention", *RUN_KEYS, pl.col("mean").alias(name), pl.col("n").alias(f"n_{name}"))
        wide = wide.join(one, on=["intervention", *RUN_KEYS], how="left")
    return wide.with_columns(
        difference=pl.col("after") - pl.col("before"),
        n_before=pl.col("n_before").fill_null(0), n_after=pl.col("n_after").fill_null(0),
    ).rename({"at": "round"}).select(
        "intervention", *RUN_KEYS, "round", "before", "after", "difference", "n_before",
        "n_after").sort("intervention", *RUN_KEYS)


def summarize_shifts(shifts: pl.DataFrame, *, level: float = 0.95) -> pl.DataFrame:
    """Mean difference (after - before) over replicas with a t interval, per intervention.

    Returns:
        ``intervention, mean_before, mean_after, difference, ci_low, ci_high, n_replicas``
        (the interval is ``mean +- t_{n-1} sd / sqrt(n)``; null with fewer than two
        replicas).
    """
    rows = []
    for (name,), group in shifts.filter(pl.col("difference").is_not_null()).group_by(
            "intervention", maintain_order=True):
        d = group["difference"].to_numpy()
        n, mean = d.size, float(np.mean(d))
        low = high = None
        if n > 1:
            half = float(sps.t.ppf((1 + level) / 2, n - 1)) * float(np.std(d, ddof=1)) \
                / math.sqrt(n)
            low, high = mean - half, mean + half
        rows.append({"intervention": name, "mean_before": float(group["before"].mean()),
                     "mean_after": float(group["after"].mean()), "difference": mean,
                     "ci_low": low, "ci_high": high, "n_replicas": n})
    return pl.DataFrame(rows, schema={
        "intervention": pl.String, "mean_before": pl.Float64, "mean_after": pl.Float64,
        "difference": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
        "n_replicas": pl.Int64}).sort("intervention")
