"""The replication scorecard: a model's behaviour against published human results.

For every benchmark of :mod:`sim.sweep.suite` it reads the suite folder's cells and scores:

- a **level**: the statistic (the mean of ``value / scale``, or the share of rows choosing
  ``option``, over a stage's choice rows) with a 95% interval that resamples whole replicas
  (:func:`analysis.stats.cluster_bootstrap`), against the human value and range: ``within``
  when the estimate lies in the range, ``outside`` otherwise;
- a **direction**: the difference ``b - a`` of two statistics with a 95% percentile interval
  (replicas resampled together when both sides read the same cell, independently when they
  read two cells): ``reproduced`` when the interval excludes zero on the human side,
  ``reversed`` when it excludes zero on the other side, else ``not distinguishable``;
- a **trait link**: the Pearson correlation between an agent's trait and its mean statistic,
  pooled over replicas, with replicas resampled; classified like a direction.

An interval needs two replicas or more; with one, the verdict of a direction or trait link is
``no interval``. Every resampling stream is seeded from the scorecard seed and the item's id,
so the same records and seed give the same scorecard. Definitions: ``docs/measurement.md``.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analysis.io import load_run
from analysis.stats import cluster_bootstrap
from sim.sweep.suite import Source, StatSpec, Suite

__all__ = ["Scorecard", "classify", "direction_effect", "score_suite", "stat_rows"]

N_BOOT = 2000
_ND = 6  # estimates are compared with ranges at this many decimals (0.4 is 0.4)


@dataclass(frozen=True, slots=True)
class Scorecard:
    """The three tables of a scorecard (one row per level, direction and trait link)."""

    levels: pl.DataFrame
    directions: pl.DataFrame
    traits: pl.DataFrame

    def to_json(self) -> str:
        """The scorecard as JSON (floats rounded to 6 decimals; no time stamps)."""
        def rows(df: pl.DataFrame) -> list[dict[str, Any]]:
            return [{k: round(v, _ND) if isinstance(v, float) and np.isfinite(v) else
                     (None if isinstance(v, float) else v) for k, v in r.items()}
                    for r in df.iter_rows(named=True)]
        return json.dumps({"levels": rows(self.levels), "directions": rows(self.directions),
                           "traits": rows(self.traits)}, indent=2) + "\n"


def _rng(seed: int, item: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(item.encode())]))


def stat_rows(events: pl.DataFrame, stat: StatSpec) -> pl.DataFrame:
    """One row per choice of ``stat.stage``: ``replica, agent, x`` (the measured number).

    ``partner`` keeps the rows whose group chose a value within ``[min, max]`` in another
    stage of the same round (the offer a responder answered).
    """
    rows = events.filter((pl.col("stage") == stat.stage) & (pl.col("kind") == "choice")
                         & (pl.col("status") == "ok"))
    if stat.rounds is not None:
        rows = rows.filter(pl.col("round").is_in(stat.rounds))
    if stat.partner is not None:
        other = events.filter((pl.col("stage") == stat.partner.stage)
                              & (pl.col("kind") == "choice")).select(
            "replica", "round", "group", pl.col("value").alias("_other"))
        rows = rows.join(other, on=["replica", "round", "group"], how="inner")
        if stat.partner.min is not None:
            rows = rows.filter(pl.col("_other") >= stat.partner.min)
        if stat.partner.max is not None:
            rows = rows.filter(pl.col("_other") <= stat.partner.max)
    x = ((pl.col("choice") == stat.option).cast(pl.Float64) if stat.measure == "share"
         else pl.col("value") / stat.scale)
    return rows.select("replica", "agent", x.alias("x"))


def classify(low: float, high: float, sign: str) -> str:
    """``reproduced``, ``reversed`` or ``not distinguishable`` for an interval of ``b - a``.

    A NaN bound gives ``no interval``.
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no interval"
    low, high = round(low, _ND), round(high, _ND)
    if low > 0 or high < 0:
        return "reproduced" if (low > 0) == (sign == "positive") else "reversed"
    return "not distinguishable"


def _sums(rows: pl.DataFrame) -> dict[int, tuple[float, int]]:
    per = rows.group_by("replica").agg(pl.col("x").sum(), pl.len()).sort("replica")
    return {r: (s, n) for r, s, n in per.iter_rows()}


def direction_effect(a: pl.DataFrame, b: pl.DataFrame, rng: np.random.Generator, *,
                     paired: bool, n_boot: int = N_BOOT) -> tuple[float, float, float]:
    """``mean(b.x) - mean(a.x)`` pooled over rows, with a 95% percentile interval.

    Replicas are resampled: the same draw for both sides when ``paired`` (one cell), one
    draw per side otherwise. Fewer than two replicas on a side: NaN bounds.
    """
    sa, sb = _sums(a), _sums(b)
    if not sa or not sb:
        return float("nan"), float("nan"), float("nan")
    if paired:
        keys = sorted(set(sa) & set(sb))
        sa, sb = {k: sa[k] for k in keys}, {k: sb[k] for k in keys}
    arr_a, arr_b = np.array(list(sa.values()), float), np.array(list(sb.values()), float)
    est = arr_b[:, 0].sum() / arr_b[:, 1].sum() - arr_a[:, 0].sum() / arr_a[:, 1].sum()
    if len(arr_a) < 2 or len(arr_b) < 2:
        return float(est), float("nan"), float("nan")
    ia = rng.integers(0, len(arr_a), size=(n_boot, len(arr_a)))
    ib = ia if paired else rng.integers(0, len(arr_b), size=(n_boot, len(arr_b)))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (arr_b[ib, 0].sum(1) / arr_b[ib, 1].sum(1)
                - arr_a[ia, 0].sum(1) / arr_a[ia, 1].sum(1))
    boot = boot[np.isfinite(boot)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(est), float(lo), float(hi)


def _trait_r(rows: pl.DataFrame, agents: pl.DataFrame, trait: str,
             rng: np.random.Generator, n_boot: int = N_BOOT) -> tuple[float, float, float, int]:
    per = (rows.group_by("replica", "agent").agg(pl.col("x").mean())
           .join(agents.select("replica", "agent", pl.col(trait).alias("t")),
                 on=["replica", "agent"]).drop_nulls().sort("replica", "agent"))

    def r(df: pl.DataFrame) -> float:
        if df.height < 3 or df["x"].std() == 0 or df["t"].std() == 0:
            return float("nan")
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.corrcoef(df["x"].to_numpy(), df["t"].to_numpy())[0, 1])

    est = r(per)
    replicas = per.partition_by("replica", maintain_order=True)
    if len(replicas) < 2 or not np.isfinite(est):
        return est, float("nan"), float("nan"), per.height
    draws = [r(pl.concat([replicas[i] for i in rng.integers(0, len(replicas), len(replicas))]))
             for _ in range(n_boot // 4)]  # a correlation per draw: fewer draws, same seed
    boot = np.array([d for d in draws if np.isfinite(d)])
    if boot.size == 0:
        return est, float("nan"), float("nan"), per.height
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return est, float(lo), float(hi), per.height


def _source(source: Source) -> dict[str, Any]:
    return {"source": source.citation, "where": source.where, "verified": source.verified}


def _cell_data(root: Path, cell: str, cache: dict[str, Any]) -> Any:
    if cell not in cache:
        path = root / "cells" / cell
        cache[cell] = load_run(path) if (path / "manifest.json").is_file() else None
    return cache[cell]


def score_suite(path: str | Path, suite: Suite, *, seed: int = 0,
                n_boot: int = N_BOOT) -> Scorecard:
    """The scorecard of a suite folder written by :func:`sim.sweep.replicate.run_suite`.

    A cell that is missing (not run, or failed) gives ``no data`` for what reads it.
    """
    root, cache = Path(path), {}
    levels, directions, traits = [], [], []
    for bench in suite.benchmarks:
        for lv in bench.levels:
            run = _cell_data(root, lv.cell, cache)
            row: dict[str, Any] = {"benchmark": bench.name, "level": lv.id, "label": lv.label,
                                   "human": lv.human.value, "human_low": lv.human.low,
                                   "human_high": lv.human.high}
            rows = stat_rows(run.events, lv.stat) if run is not None else None
            if rows is None or rows.height == 0:
                row.update(model=float("nan"), ci_low=float("nan"), ci_high=float("nan"),
                           n=0, replicas=0, verdict="no data")
            else:
                ci = cluster_bootstrap(rows, "x", _rng(seed, lv.id), cluster=("replica",),
                                       n_boot=n_boot).row(0, named=True)
                est = round(ci["estimate"], _ND)
                inside = lv.human.low <= est <= lv.human.high
                row.update(model=ci["estimate"], ci_low=ci["ci_low"], ci_high=ci["ci_high"],
                           n=ci["n_rows"], replicas=ci["n_clusters"],
                           verdict="within" if inside else "outside")
            levels.append({**row, **_source(lv.source)})
        for d in bench.directions:
            ra, rb = _cell_data(root, d.a.cell, cache), _cell_data(root, d.b.cell, cache)
            row = {"benchmark": bench.name, "direction": d.id, "label": d.label,
                   "human_sign": d.sign}
            xa = stat_rows(ra.events, d.a.stat) if ra is not None else None
            xb = stat_rows(rb.events, d.b.stat) if rb is not None else None
            if xa is None or xb is None or xa.height == 0 or xb.height == 0:
                row.update(effect=float("nan"), ci_low=float("nan"), ci_high=float("nan"),
                           verdict="no data")
            else:
                est, lo, hi = direction_effect(xa, xb, _rng(seed, d.id),
                                               paired=d.a.cell == d.b.cell, n_boot=n_boot)
                row.update(effect=est, ci_low=lo, ci_high=hi, verdict=classify(lo, hi, d.sign))
            directions.append({**row, **_source(d.source)})
        for t in bench.traits:
            run = _cell_data(root, t.cell, cache)
            row = {"benchmark": bench.name, "link": t.id, "label": t.label, "trait": t.trait,
                   "human_sign": t.sign}
            est, lo, hi, n = (float("nan"),) * 3 + (0,)
            if run is not None:
                est, lo, hi, n = _trait_r(stat_rows(run.events, t.stat), run.agents, t.trait,
                                          _rng(seed, t.id), n_boot)
            verdict = "no data" if not np.isfinite(est) else classify(lo, hi, t.sign)
            row.update(r=est, ci_low=lo, ci_high=hi, agents=n, verdict=verdict)
            traits.append({**row, **_source(t.source)})
    return Scorecard(_frame(levels), _frame(directions), _frame(traits))


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
