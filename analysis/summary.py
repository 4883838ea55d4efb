"""Small run summaries for the CLI's closing table and ``traitlab show``."""

from __future__ import annotations

import polars as pl

__all__ = ["choice_rates_by_round"]


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
