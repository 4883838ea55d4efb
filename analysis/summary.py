"""Small run summaries for the CLI's closing table and ``traitlab show``."""

from __future__ import annotations

import polars as pl

from agents.persona import TRAITS

__all__ = ["choice_rates_by_round", "payoff_by_trait"]


def choice_rates_by_round(events: pl.DataFrame) -> pl.DataFrame:
    """Share of each stage's first option per round (e.g. the cooperation rate).

    Returns:
        Columns ``stage, round, option, rate, n``.
    """
    choices = events.filter((pl.col("kind") == "choice") & (pl.col("status") == "ok"))
    if choices.is_empty():
        return pl.DataFrame(schema={"stage": pl.String, "round": pl.Int32, "option": pl.String,
                                    "rate": pl.Float64, "n": pl.UInt32})
    return (
        choices.with_columns(pl.col("options").list.first().alias("option"))
        .group_by("stage", "round", "option")
        .agg((pl.col("choice") == pl.col("option")).mean().alias("rate"), pl.len().alias("n"))
        .sort("stage", "round")
    )


def payoff_by_trait(events: pl.DataFrame, agents: pl.DataFrame) -> pl.DataFrame:
    """Mean payoff per decision of agents high (> 0.5) vs low (<= 0.5) on each trait.

    Returns:
        Columns ``trait, high, low, difference`` (one row per trait), empty without payoffs.
    """
    paid = events.filter(pl.col("payoff").is_not_null())
    if paid.is_empty():
        return pl.DataFrame(schema={"trait": pl.String, "high": pl.Float64, "low": pl.Float64,
                                    "difference": pl.Float64})
    joined = paid.join(agents.select("replica", "agent", *TRAITS), on=["replica", "agent"])
    rows = []
    for trait in TRAITS:
        high = joined.filter(pl.col(trait) > 0.5)["payoff"].mean()
        low = joined.filter(pl.col(trait) <= 0.5)["payoff"].mean()
        rows.append({"trait": trait, "high": high, "low": low,
                     "difference": (high - low) if high is not None and low is not None
                     else None})
    return pl.DataFrame(rows, schema={"trait": pl.String, "high": pl.Float64,
                                      "low": pl.Float64, "difference": pl.Float64})
