"""Report sections with an n and an interval for every number: rates, levels, outcomes, cells.

Intervals resample clusters (:func:`analysis.stats.cluster_bootstrap`): the runs when there
are at least two, otherwise the agents of the one run (their rows over rounds are the
dependent unit left), named in each table's ``cluster`` column. Sections add themselves to a
:class:`analysis.report.Report` through its ``add`` method.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from analysis import charts, norms, regression
from analysis.io import Run, read_cell
from analysis.stats import RUN_KEYS, cluster_bootstrap

if TYPE_CHECKING:
    from analysis.report import Report

__all__ = ["cell_labels", "clusters", "conditional_cooperation", "cooperation", "levels",
           "outcomes", "payoff_by_trait", "pooled", "swept_cells"]

_MAX_LINES = 6  # per-run lines drawn before falling back to the mean with its band


def clusters(df: pl.DataFrame) -> tuple[list[str], str]:
    """The cluster columns of ``df`` and their name: runs if at least two, else agents."""
    if df.select(RUN_KEYS).n_unique() > 1:
        return list(RUN_KEYS), "run"
    return [*RUN_KEYS, "agent"], "agent"


def pooled(df: pl.DataFrame, value: str, rng: np.random.Generator, n_boot: int,
           by: Sequence[str] = ()) -> pl.DataFrame:
    """Pooled mean of ``value`` per ``by`` group with a cluster bootstrap interval.

    Returns:
        ``*by, estimate, ci_low, ci_high, n, n_clusters, cluster``.
    """
    keys, unit = clusters(df)
    out = cluster_bootstrap(df, value, rng, cluster=keys, by=by, n_boot=n_boot)
    if out.is_empty():
        return out
    return out.rename({"n_rows": "n"}).select(
        *by, "estimate", "ci_low", "ci_high", "n", "n_clusters").with_columns(
        pl.lit(unit).alias("cluster")).sort(list(by))


def cell_labels(runs: Sequence[Run]) -> dict[str, str]:
    """Map run id -> a label naming the run's swept parameter values and seed (sweeps only)."""
    labels = {}
    for run in runs:
        cell = read_cell(run.path)
        if cell.get("params"):
            values = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}"
                               for k, v in sorted(cell["params"].items()))
            labels[run.run_id] = f"{values} · seed {cell.get('seed')}"
    return labels


def _fmt_ci(row: dict[str, Any]) -> str:
    return (f"{row['estimate']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}], "
            f"n = {row['n']} in {row['n_clusters']} {row['cluster']}s")


def _with_labels(df: pl.DataFrame, labels: dict[str, str]) -> pl.DataFrame:
    return df.with_columns(
        pl.col("run_id").replace_strict(labels, default=pl.col("run_id").str.slice(-6))
        .alias("run"))


def cooperation(report: Report, events: pl.DataFrame, sid: str, coop: str,
                labels: dict[str, str], rng: np.random.Generator, n_boot: int) -> None:
    """Share of the cooperative option per round, pooled over runs, with n and interval."""
    rows = norms.choice_rows(events, sid).with_columns(
        (pl.col("choice") == coop).cast(pl.Float64).alias("cooperation"))
    if rows.is_empty():
        return
    table = pooled(rows, "cooperation", rng, n_boot, by=("round",)).rename(
        {"estimate": "cooperation"})
    overall = pooled(rows, "cooperation", rng, n_boot).row(0, named=True)
    n_runs = rows.select(RUN_KEYS).n_unique()
    if 1 < n_runs <= _MAX_LINES:
        per_run = _with_labels(norms.cooperation_rate(events, stage=sid, cooperate=coop),
                               labels)
        spec = charts.line_chart(per_run, x="round", y="cooperation", series="run",
                                 title=f"cooperation · {sid}", y_title=f"share '{coop}'",
                                 y_domain=(0, 1), tooltip=["run", "round", "cooperation", "n"])
    else:
        spec = charts.line_chart(table, x="round", y="cooperation", series=None,
                                 low="ci_low", high="ci_high", y_domain=(0, 1),
                                 title=f"cooperation · {sid}", y_title=f"share '{coop}'",
                                 tooltip=["round", "cooperation", "ci_low", "ci_high", "n"])
    report.add(f"Cooperation rate · {sid}", table,
               f"Share of '{coop}' choices per round (first option of a 2x2 payoff stage), "
               f"pooled over runs; 95% CI resamples {overall['cluster']}s. All rounds: "
               f"{_fmt_ci(overall)}.", spec)


def _unit_counts(cc: pl.DataFrame, unit_keys: list[str]) -> pl.DataFrame:
    pairs = {"p_c_given_c": "n_after_c", "p_c_given_d": "n_after_d",
             "forgiveness": "n_forgive", "grim_share": "n_grim_eligible"}
    return cc.group_by(unit_keys).agg(
        *[(pl.col(p).fill_null(0) * pl.col(n).fill_null(0)).sum().round().alias(f"s_{p}")
          for p, n in pairs.items()],
        *[pl.col(n).fill_null(0).sum().alias(f"n_{p}") for p, n in pairs.items()],
    ).sort(unit_keys)


def conditional_cooperation(report: Report, events: pl.DataFrame, sid: str, coop: str,
                            rng: np.random.Generator, n_boot: int) -> None:
    """Conditional cooperation measures pooled over clusters, each with n and a CI."""
    per_agent = norms.conditional_cooperation(events, stage=sid, cooperate=coop,
                                              by=(*RUN_KEYS, "agent"))
    if per_agent.is_empty():
        return
    keys, unit = clusters(per_agent)
    counts = _unit_counts(per_agent, keys)
    names = ["p_c_given_c", "p_c_given_d", "forgiveness", "grim_share"]
    s = counts.select([f"s_{m}" for m in names]).to_numpy().astype(float)
    n = counts.select([f"n_{m}" for m in names]).to_numpy().astype(float)

    def ratios(si: np.ndarray, ni: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = si.sum(axis=-2) / ni.sum(axis=-2)
        return np.concatenate([r, r[..., :1] - r[..., 1:2]], axis=-1)  # + cc

    est = ratios(s, n)
    g = s.shape[0]
    lo = hi = np.full(est.shape, np.nan)
    if g >= 2:
        idx = rng.integers(0, g, size=(n_boot, g))
        draws = ratios(s[idx], n[idx])
        with np.errstate(invalid="ignore"):
            lo, hi = np.nanpercentile(draws, [2.5, 97.5], axis=0)
    totals = [*n.sum(axis=0), min(n[:, 0].sum(), n[:, 1].sum())]
    table = pl.DataFrame({
        "measure": [*names, "cc"], "estimate": est, "ci_low": lo, "ci_high": hi,
        "n": [int(t) for t in totals], "n_clusters": [g] * 5, "cluster": [unit] * 5})
    report.add(f"Conditional cooperation · {sid}", table,
               "P(C | partner C last round) - P(C | partner D) = cc; forgiveness = "
               "P(C | partner D then C); grim_share = never cooperated after a defection, "
               "among agents offered a way back. n = eligible decisions (agents for "
               f"grim_share); 95% CI resamples {unit}s (percentile).")


def payoff_by_trait(report: Report, events: pl.DataFrame, agents: pl.DataFrame,
                    sid: str) -> None:
    """Regression of payoff per decision on each assigned trait, clustered intervals."""
    table = regression.payoff_by_trait(events, agents, stage=sid)
    if table.is_empty():
        return
    unit = table["cluster"][0]
    spec = charts.dot_interval_chart(table, label="trait", y="slope", low="ci_low",
                                     high="ci_high", title=f"payoff slope per trait · {sid}",
                                     y_title="payoff change, trait 0 -> 1")
    report.add(f"Payoff by trait · {sid}", table,
               "OLS of payoff per decision on each assigned trait (0..1), one regression per "
               f"trait; slope = payoff change from trait 0 to 1. Cluster-robust SE by {unit} "
               "(statsmodels, small-sample corrected), t interval with clusters - 1 df.",
               spec)


def levels(report: Report, events: pl.DataFrame, sid: str, rng: np.random.Generator,
           n_boot: int) -> None:
    """Numeric ``levels`` choices: mean per round with interval, and their distribution."""
    rows = norms.choice_rows(events, sid).filter(pl.col("value").is_not_null())
    if rows.is_empty():
        return
    table = pooled(rows, "value", rng, n_boot, by=("round",)).rename({"estimate": "mean"})
    overall = pooled(rows, "value", rng, n_boot).row(0, named=True)
    report.add(f"Mean choice · {sid}", table,
               f"Mean chosen level per round, pooled over runs; 95% CI resamples "
               f"{overall['cluster']}s. All rounds: {_fmt_ci(overall)}.",
               charts.line_chart(table, x="round", y="mean", series=None, low="ci_low",
                                 high="ci_high", title=f"mean choice · {sid}",
                                 y_title="mean level",
                                 tooltip=["round", "mean", "ci_low", "ci_high", "n"]))
    dist = rows.group_by("value").agg(pl.len().alias("n")).sort("value").with_columns(
        (pl.col("n") / pl.col("n").sum()).alias("share"))
    report.add(f"Choice distribution · {sid}", dist,
               "Share of all choices at each level (every round and run).",
               charts.histogram(dist, value="value", title=f"choice distribution · {sid}"))


def outcomes(report: Report, events: pl.DataFrame, sid: str, rng: np.random.Generator,
             n_boot: int) -> None:
    """Mean of each named numeric outcome of a stage, with n and a cluster interval."""
    rows = events.filter((pl.col("stage") == sid) & pl.col("outcomes").is_not_null())
    if rows.is_empty():
        return
    long = []
    for key, text in zip(rows.select(*RUN_KEYS, "agent").iter_rows(), rows["outcomes"],
                         strict=True):
        for name, value in sorted(json.loads(text).items()):
            if isinstance(value, bool | int | float):
                long.append((*key, name, float(value)))
    if not long:
        return
    frame = pl.DataFrame(long, schema=["run_id", "replica", "agent", "outcome", "value"],
                         orient="row")
    table = pooled(frame, "value", rng, n_boot, by=("outcome",)).rename({"estimate": "mean"})
    report.add(f"Outcomes · {sid}", table,
               "Mean of each named outcome over the stage's rows (booleans as 0/1); 95% CI "
               f"resamples {table['cluster'][0]}s.",
               charts.dot_interval_chart(table, label="outcome", y="mean", low="ci_low",
                                         high="ci_high", title=f"outcomes · {sid}",
                                         y_title="mean"))


def _by_value(label: str) -> list[tuple[int, float, str]]:
    """Sort key of a cell label: numbers by value, other values by text."""
    key = []
    for part in label.split(", "):
        value = part.split("=", 1)[-1]
        try:
            key.append((0, float(value), ""))
        except ValueError:
            key.append((1, 0.0, value))
    return key


def swept_cells(report: Report, runs: Sequence[Run], events: pl.DataFrame, sid: str,
                value: pl.Expr, what: str, rng: np.random.Generator, n_boot: int) -> None:
    """A choice measure per sweep cell, labelled by its parameter values; CI over seeds."""
    cells = {r.run_id: read_cell(r.path) for r in runs}
    if not any(c.get("params") for c in cells.values()):
        return
    label = {rid: ", ".join(f"{k.rsplit('.', 1)[-1]}={v}"
                            for k, v in sorted(c.get("params", {}).items())) or "(none)"
             for rid, c in cells.items()}
    rows = norms.choice_rows(events, sid).with_columns(
        value.cast(pl.Float64).alias("value"),
        pl.col("run_id").replace_strict(label).alias("cell"))
    order = sorted(set(label.values()), key=_by_value)
    table = cluster_bootstrap(rows, "value", rng, by=("cell",), n_boot=n_boot).rename(
        {"n_rows": "n", "n_clusters": "n_runs"}).sort(
        pl.col("cell").replace_strict({c: i for i, c in enumerate(order)}))
    report.add(f"By swept parameter · {sid}", table,
               f"{what} per sweep cell, named by its parameter values; 95% CI resamples the "
               "cell's runs (seeds), NaN with one run.",
               charts.dot_interval_chart(table, label="cell", y="estimate", low="ci_low",
                                         high="ci_high", title=f"{what} by cell · {sid}",
                                         y_title=what))
