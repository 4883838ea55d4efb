"""The replication scorecard as a report: terminal tables and a self-contained HTML page.

Reuses :class:`analysis.report.Report`, so the terminal tables escape rich markup and the HTML
page (:func:`analysis.report_html.render_html`) escapes every text and carries its charts
inline: the model's estimate against the human value for each level, and each direction's
effect with its interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from analysis.charts import dot_interval_chart
from analysis.replicate import Scorecard
from analysis.report import Report
from analysis.report_html import print_report, render_html

__all__ = ["DIRECTIONS", "LEVELS", "TRAITS", "compact", "print_scorecard", "scorecard_report",
           "summary_counts", "write_scorecard_html"]

LEVELS = "Levels: model against the human value"
DIRECTIONS = "Directions: does the model move the way people do?"
TRAITS = "Trait links: does a trait move behaviour the way it does in people?"
_NOTES = {
    LEVELS: "model: the statistic over all rows, with a 95% interval resampling whole "
            "replicas; verdict 'within' when the estimate lies in the human range.",
    DIRECTIONS: "effect: b - a, with a 95% percentile interval over replicas; 'reproduced' "
                "when the interval excludes zero on the human side, 'reversed' on the other.",
    TRAITS: "r: Pearson correlation of the trait with an agent's mean statistic, pooled over "
            "replicas, with a 95% interval resampling replicas.",
}


def scorecard_report(card: Scorecard, header: list[tuple[str, str]], title: str) -> Report:
    """The scorecard's three tables (and charts) as a report."""
    report = Report(title=title, run_ids=[], header=header)
    if card.levels.height:
        lv = card.levels.select("benchmark", "level", "model", "ci_low", "ci_high", "human",
                                "human_low", "human_high", "n", "replicas", "verdict",
                                "verified", "source", "where")
        long = pl.concat([
            card.levels.select(pl.col("level"), pl.lit("model").alias("who"),
                               pl.col("model").alias("value"), pl.col("ci_low").alias("low"),
                               pl.col("ci_high").alias("high")),
            card.levels.select(pl.col("level"), pl.lit("human").alias("who"),
                               pl.col("human").alias("value"),
                               pl.col("human_low").alias("low"),
                               pl.col("human_high").alias("high"))])
        report.add(LEVELS, lv, _NOTES[LEVELS], dot_interval_chart(
            long.fill_nan(None), label="level", y="value", low="low", high="high",
            title="model and human levels", y_title="share", color="who"))
    if card.directions.height:
        dr = card.directions.select("benchmark", "direction", "human_sign", "effect", "ci_low",
                                    "ci_high", "verdict", "verified", "source", "where")
        report.add(DIRECTIONS, dr, _NOTES[DIRECTIONS], dot_interval_chart(
            dr.fill_nan(None), label="direction", y="effect", low="ci_low", high="ci_high",
            title="effects (b - a) with 95% intervals", y_title="effect"))
    if card.traits.height:
        report.add(TRAITS, card.traits.select("benchmark", "link", "trait", "human_sign", "r",
                                              "ci_low", "ci_high", "agents", "verdict",
                                              "verified", "source"), _NOTES[TRAITS])
    return report


def _interval(est: str, low: str, high: str) -> pl.Expr:
    """``0.4 [0.38, 0.42]`` (``-`` for a missing bound)."""
    def num(c: str) -> pl.Expr:
        return (pl.when(pl.col(c).is_nan() | pl.col(c).is_null()).then(pl.lit("-"))
                .otherwise(pl.col(c).round(3).cast(pl.String)))
    return pl.format("{} [{}, {}]", num(est), num(low), num(high))


def compact(card: Scorecard) -> dict[str, pl.DataFrame]:
    """The scorecard's tables narrowed for a terminal (sources stay in the JSON and HTML)."""
    tables = {}
    if card.levels.height:
        tables[LEVELS] = card.levels.select(
            "benchmark", "level", _interval("model", "ci_low", "ci_high").alias("model [95% CI]"),
            _interval("human", "human_low", "human_high").alias("human [range]"), "verdict",
            "verified")
    if card.directions.height:
        tables[DIRECTIONS] = card.directions.select(
            "benchmark", "direction", "human_sign",
            _interval("effect", "ci_low", "ci_high").alias("b - a [95% CI]"), "verdict",
            "verified")
    if card.traits.height:
        tables[TRAITS] = card.traits.select(
            "benchmark", "link", "human_sign", _interval("r", "ci_low", "ci_high")
            .alias("r [95% CI]"), "agents", "verdict", "verified")
    return tables


def print_scorecard(card: Scorecard, header: list[tuple[str, str]], title: str) -> None:
    """Print the scorecard with rich (every text escaped), one narrow table per kind."""
    report = Report(title=title, run_ids=[], header=header, tables=compact(card))
    print_report(report, max_rows=100)


def write_scorecard_html(card: Scorecard, header: list[tuple[str, str]], title: str,
                         path: str | Path) -> Path:
    """Write the scorecard as one self-contained HTML page."""
    return render_html(scorecard_report(card, header, title), path)


def summary_counts(card: Scorecard) -> dict[str, Any]:
    """How many levels fall within the human range and how many directions reproduce."""
    def count(df: pl.DataFrame, verdict: str) -> int:
        return int((df["verdict"] == verdict).sum()) if df.height else 0

    return {"levels_within": count(card.levels, "within"), "levels": card.levels.height,
            "directions_reproduced": count(card.directions, "reproduced"),
            "directions_reversed": count(card.directions, "reversed"),
            "directions": card.directions.height}
