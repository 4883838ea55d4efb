"""Position bias of choice stages: P(option | shown position) and how much position moves it.

Language models prefer options by where they are listed. A choice stage with
``option_order: balanced`` scores every option in every position and records each order's
probabilities (``shown_orders``, ``order_probs``); ``shuffled`` records one order per choice.
From these, :func:`position_cells` gives, for every stage, option and shown position, the mean
probability the option received when shown there (or, for records with an order but no
per-order probabilities, the share of choices that picked it), with a cluster-bootstrap
interval over runs. :func:`position_bias` summarises a stage by the **position spread**: for
each option the largest minus the smallest P(option | position) across positions, maximised
over options. It is 0 when position does not matter and equals the planted difference for a
pure position bonus (P(option | first) - P(option | second) for two options).

With ``option_order: fixed`` every option always stands in one position, so position and
preference are confounded: the spread is undefined and the stage is reported as not measurable.
The warning threshold :data:`SPREAD_THRESHOLD` is justified in ``docs/measurement.md``.

Example:
    >>> import numpy as np
    >>> from analysis.io import load_run                                   # doctest: +SKIP
    >>> cells = position_cells(load_run(path).events, np.random.default_rng(0))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from analysis.stats import RUN_KEYS, as_frame, cluster_bootstrap

__all__ = ["SPREAD_THRESHOLD", "position_bias", "position_cells", "position_long",
           "position_sections"]

SPREAD_THRESHOLD = 0.10
"""Warn when position moves an option's probability by more than this (see measurement.md)."""

_LONG_SCHEMA: dict[str, Any] = {
    "run_id": pl.String, "replica": pl.Int32, "stage": pl.String, "option": pl.String,
    "position": pl.Int32, "p": pl.Float64, "source": pl.String,
}


def position_long(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """One row per choice, shown order and position: the option there and what it got.

    ``source`` says where ``p`` comes from: ``probabilities`` (the order's recorded
    probability of that option), ``choices`` (1 if the option was chosen, else 0: records
    with ``shown_order`` but no ``order_probs``) or ``fixed`` (the stage's own order; position
    and option confounded).
    """
    df = as_frame(events)
    if "run_id" not in df.columns:
        df = df.with_columns(pl.lit("run").alias("run_id"))
    for col in ("shown_orders", "order_probs"):
        if col not in df.columns:
            df = df.with_columns(pl.lit(None).alias(col))
    df = df.filter((pl.col("kind") == "choice") & (pl.col("status") == "ok"))
    rows: list[dict[str, Any]] = []
    for r in df.select("run_id", "replica", "stage", "options", "option_probs", "choice_index",
                       "shown_order", "shown_orders", "order_probs").iter_rows(named=True):
        key = {"run_id": r["run_id"], "replica": r["replica"], "stage": r["stage"]}
        options = r["options"] or []
        if r["shown_orders"] and r["order_probs"]:
            for order, probs in zip(r["shown_orders"], r["order_probs"], strict=True):
                rows += [{**key, "option": options[o], "position": j, "p": probs[o],
                          "source": "probabilities"} for j, o in enumerate(order)]
        elif r["shown_order"]:
            rows += [{**key, "option": options[o], "position": j,
                      "p": float(o == r["choice_index"]), "source": "choices"}
                     for j, o in enumerate(r["shown_order"])]
        elif r["option_probs"]:
            rows += [{**key, "option": o, "position": j, "p": p, "source": "fixed"}
                     for j, (o, p) in enumerate(zip(options, r["option_probs"], strict=True))]
    return pl.DataFrame(rows, schema=_LONG_SCHEMA)


def position_cells(events: pl.DataFrame | pl.LazyFrame, rng: np.random.Generator, *,
                   n_boot: int = 1000, level: float = 0.95) -> pl.DataFrame:
    """P(option | shown position) per stage, with ``n`` and a cluster-bootstrap interval.

    Clusters are runs (``run_id`` + ``replica``). Returns the columns ``stage, option,
    position, source, estimate, ci_low, ci_high, n, n_clusters`` (``n``: choice-orders in
    the cell), sorted by stage, option and position.
    """
    long = position_long(events)
    if long.is_empty():
        return pl.DataFrame(schema={"stage": pl.String, "option": pl.String,
                                    "position": pl.Int32, "source": pl.String,
                                    "estimate": pl.Float64, "ci_low": pl.Float64,
                                    "ci_high": pl.Float64, "n": pl.Int64,
                                    "n_clusters": pl.Int64})
    cells = cluster_bootstrap(long, "p", rng, cluster=RUN_KEYS,
                              by=("stage", "option", "position", "source"),
                              n_boot=n_boot, level=level)
    return cells.rename({"n_rows": "n"}).select(
        "stage", "option", "position", "source", "estimate", "ci_low", "ci_high",
        pl.col("n").cast(pl.Int64), pl.col("n_clusters").cast(pl.Int64),
    ).sort("stage", "option", "position")


def _spread(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Max over options of (max - min over positions) of sums / counts; last two axes."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)
    spread = np.nanmax(p, axis=-1) - np.nanmin(p, axis=-1)
    return np.nanmax(spread, axis=-1)


def position_bias(events: pl.DataFrame | pl.LazyFrame, rng: np.random.Generator, *,
                  n_boot: int = 1000, level: float = 0.95,
                  threshold: float = SPREAD_THRESHOLD) -> pl.DataFrame:
    """The position spread of every choice stage, with a cluster-bootstrap interval.

    Returns one row per stage: ``stage, source, spread, ci_low, ci_high, n, n_clusters,
    flagged`` (``spread > threshold``). Stages shown in a fixed order get a null spread
    (not identifiable) and ``flagged`` false.
    """
    long = position_long(events)
    rows: list[dict[str, Any]] = []
    for (stage,), g in sorted(long.partition_by("stage", as_dict=True).items()):
        source = str(g["source"][0])
        row: dict[str, Any] = {"stage": stage, "source": source, "spread": None,
                               "ci_low": None, "ci_high": None, "n": g.height,
                               "n_clusters": g.select(RUN_KEYS).n_unique(), "flagged": False}
        if source != "fixed":
            row.update(_bootstrap_spread(g, rng, n_boot, level))
            row["flagged"] = bool(row["spread"] > threshold)
        rows.append(row)
    return pl.DataFrame(rows, schema={
        "stage": pl.String, "source": pl.String, "spread": pl.Float64, "ci_low": pl.Float64,
        "ci_high": pl.Float64, "n": pl.Int64, "n_clusters": pl.Int64, "flagged": pl.Boolean})


def _bootstrap_spread(g: pl.DataFrame, rng: np.random.Generator, n_boot: int,
                      level: float) -> dict[str, float]:
    """Point spread and a percentile interval resampling whole runs of one stage."""
    per = g.group_by([*RUN_KEYS, "option", "position"]).agg(
        pl.col("p").sum().alias("s"), pl.len().alias("n"))
    clusters = per.select(RUN_KEYS).unique().sort(RUN_KEYS)
    options = sorted(per["option"].unique().to_list())
    positions = sorted(per["position"].unique().to_list())
    cid = {k: i for i, k in enumerate(clusters.iter_rows())}
    sums = np.zeros((len(cid), len(options), len(positions)))
    counts = np.zeros_like(sums)
    for r in per.iter_rows(named=True):
        at = (cid[(r["run_id"], r["replica"])], options.index(r["option"]),
              positions.index(r["position"]))
        sums[at] += r["s"]
        counts[at] += r["n"]
    point = float(_spread(sums.sum(0), counts.sum(0)))
    if len(cid) < 2:
        return {"spread": point, "ci_low": float("nan"), "ci_high": float("nan")}
    idx = rng.integers(len(cid), size=(n_boot, len(cid)))
    boot = _spread(sums[idx].sum(1), counts[idx].sum(1))
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(boot, [alpha, 1 - alpha])
    return {"spread": point, "ci_low": float(lo), "ci_high": float(hi)}


def position_sections(events: pl.DataFrame | pl.LazyFrame, rng: np.random.Generator, *,
                      n_boot: int = 200) -> list[tuple[str, pl.DataFrame, str]]:
    """The report's sections (title, table, note): the cells and the flagged spreads.

    Empty without choice rows. The bias table's ``warning`` column says ``WARNING: ...``
    where the spread crosses :data:`SPREAD_THRESHOLD`, so a terminal report shows it.
    """
    cells = position_cells(events, rng, n_boot=n_boot)
    if cells.is_empty():
        return []
    bias = position_bias(events, rng, n_boot=n_boot)
    sections = [
        ("Choice by shown position", cells,
         "P(option | shown position): the mean probability (or share of choices) an option "
         "got when listed at that position (0 = first), with a 95% bootstrap interval over "
         "runs. Source `fixed`: one order only, so position and preference are confounded."),
        ("Position bias", bias,
         f"spread: the largest change of an option's probability across shown positions "
         f"(max over options), 95% bootstrap interval over runs; flagged above "
         f"{SPREAD_THRESHOLD} (docs/measurement.md). Null for a fixed order: not measurable "
         f"(option_order: balanced measures it)."),
    ]
    flagged = bias.filter(pl.col("flagged"))
    if not flagged.is_empty():
        sections.append(("Position bias warning", flagged.select(
            "stage", pl.format("WARNING: listing position moves an option's probability by "
                               "{} (threshold {}); the stage's rates may be mostly order. "
                               "Use option_order: balanced.", pl.col("spread").round(2),
                               pl.lit(SPREAD_THRESHOLD)).alias("warning")),
            "Position explains more of the choices than the threshold allows."))
    return sections
