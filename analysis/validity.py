"""Does the personality take? Assigned traits, self-reports and behaviour, linked per trait.

Three links per Big Five trait: assigned -> self-report (the run's survey stages),
assigned -> behaviour and self-report -> behaviour (every measure of
:mod:`analysis.behaviour`). Each link is Pearson's r between agents (one row per agent in
one run), with an interval that treats runs as clusters: the slope of an OLS regression of
the standardised outcome on the standardised predictor (which equals r) with a
cluster-robust (CR1) standard error and a t interval on G - 1 degrees of freedom, G the
number of runs (statsmodels). A multitrait-multimethod summary sets each convergent
correlation against the heterotrait ones, and published human effects stand beside the
links where they exist (``analysis/references/validity.json``). Definitions and the choice of
interval: ``docs/measurement.md`` (*Personality validity*).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from agents.persona import TRAITS
from analysis.behaviour import AGENT_KEYS, behaviour_measures
from analysis.io import Run, load_run, load_sweep
from analysis.psychometrics import survey_scores
from analysis.stats import as_frame
from sim.errors import RunError

__all__ = [
    "LINKS",
    "ValidityResult",
    "assigned_traits",
    "correlation_interval",
    "load_runs",
    "mtmm_summary",
    "references",
    "self_reports",
    "validity",
    "validity_links",
]

LINKS: tuple[str, str, str] = ("assigned -> self-report", "assigned -> behaviour",
                               "self-report -> behaviour")
"""The three links of a trait, in print order."""

Method = Literal["cluster", "bootstrap"]
_REFERENCES = Path(__file__).with_name("references") / "validity.json"
_PERSONA_POLICIES = (None, "trait_linked")  # scripted rules that ignore the persona are left out


@dataclass(frozen=True, slots=True)
class ValidityResult:
    """What :func:`validity` returns.

    Attributes:
        links: one row per trait, link and behaviour measure (see :func:`validity_links`).
        mtmm: the multitrait-multimethod summary (see :func:`mtmm_summary`).
        behaviour: the behaviour measures per agent (see
            :func:`analysis.behaviour.behaviour_measures`).
    """

    links: pl.DataFrame
    mtmm: pl.DataFrame
    behaviour: pl.DataFrame


def assigned_traits(agents: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Assigned Big Five per agent: ``run_id, replica, agent, trait, value``.

    Agents run by a scripted rule that ignores the persona (any policy but ``trait_linked``)
    are left out: their behaviour cannot follow their traits.
    """
    df = as_frame(agents)
    if "policy" in df.columns:
        df = df.filter(pl.col("policy").is_null() | pl.col("policy").is_in(["trait_linked"]))
    return (df.unpivot(index=list(AGENT_KEYS), on=list(TRAITS), variable_name="trait",
                       value_name="value").drop_nulls("value").sort(*AGENT_KEYS, "trait"))


def self_reports(surveys: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Self-reported Big Five per agent: the mean trait score over the run's administrations.

    Returns:
        ``run_id, replica, agent, trait, value`` (Big Five traits only; empty without surveys).
    """
    df = as_frame(surveys)
    empty = pl.DataFrame(schema={"run_id": pl.String, "replica": pl.Int32, "agent": pl.String,
                                 "trait": pl.String, "value": pl.Float64})
    if df.is_empty():
        return empty
    scores = survey_scores(df).filter(pl.col("trait").is_in(list(TRAITS)))
    return (scores.group_by(*AGENT_KEYS, "trait").agg(pl.col("score").mean().alias("value"))
            .select(empty.columns).cast(empty.schema).sort(*AGENT_KEYS, "trait"))  # type: ignore[arg-type]


def correlation_interval(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
                         clusters: Sequence[Any] | np.ndarray, *, method: Method = "cluster",
                         level: float = 0.95, rng: np.random.Generator | None = None,
                         n_boot: int = 1000) -> dict[str, Any]:
    """Pearson r of ``x`` and ``y`` with an interval that resamples or clusters by ``clusters``.

    ``method="cluster"``: the OLS slope of standardised y on standardised x (= r) with a
    CR1 cluster-robust standard error, t interval on G - 1 df; with a single cluster, HC1
    (agents as independent units) and the interval is labelled so. The interval is clipped
    to [-1, 1]. ``"bootstrap"``: the
    percentile interval of r over ``n_boot`` resamples of whole clusters (needs ``rng``).

    Returns:
        ``r, ci_low, ci_high, n, n_clusters, interval`` (NaN where r is undefined).
    """
    x, y, g = np.asarray(x, float), np.asarray(y, float), np.asarray(clusters)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, g = x[ok], y[ok], g[ok]
    codes = np.unique(g, return_inverse=True)[1]
    n_clusters = int(codes.max() + 1) if codes.size else 0
    out: dict[str, Any] = {"r": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": int(x.size),
                           "n_clusters": n_clusters, "interval": "undefined (no spread)"}
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    xz, yz = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
    out["r"] = float(np.mean(xz * yz))
    if method == "bootstrap":
        if rng is None:
            raise ValueError("correlation_interval(method='bootstrap') needs rng")
        lo, hi = _bootstrap_r(x, y, codes, n_clusters, level, rng, n_boot)
        out.update(ci_low=lo, ci_high=hi, interval=f"cluster bootstrap, {n_clusters} runs")
        return out
    import statsmodels.api as sm

    design = sm.add_constant(xz)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n_clusters >= 2:
            fit = sm.OLS(yz, design).fit(cov_type="cluster", cov_kwds={"groups": codes},
                                         use_t=True)
            label = f"cluster-robust, {n_clusters} runs"
        else:
            fit = sm.OLS(yz, design).fit(cov_type="HC1", use_t=True)
            label = "HC1, 1 run: agents as units"
    lo, hi = np.clip(np.asarray(fit.conf_int(alpha=1 - level))[1], -1.0, 1.0)
    out.update(ci_low=float(lo), ci_high=float(hi), interval=label)
    return out


def _bootstrap_r(x: np.ndarray, y: np.ndarray, codes: np.ndarray, n_clusters: int,
                 level: float, rng: np.random.Generator, n_boot: int) -> tuple[float, float]:
    members = [np.flatnonzero(codes == c) for c in range(n_clusters)]
    rs = np.empty(n_boot)
    for b in range(n_boot):
        rows = np.concatenate([members[c] for c in rng.integers(0, n_clusters, n_clusters)])
        xb, yb = x[rows], y[rows]
        rs[b] = np.corrcoef(xb, yb)[0, 1] if np.ptp(xb) > 0 and np.ptp(yb) > 0 else np.nan
    rs = rs[np.isfinite(rs)]
    if rs.size == 0:
        return np.nan, np.nan
    tail = (1 - level) / 2 * 100
    return float(np.percentile(rs, tail)), float(np.percentile(rs, 100 - tail))


def references(path: str | Path = _REFERENCES) -> list[dict[str, Any]]:
    """The published human trait-behaviour effects (``analysis/references/validity.json``)."""
    return list(json.loads(Path(path).read_text())["references"])


def _reference(trait: str, kind: str | None, refs: Sequence[Mapping[str, Any]]) -> str | None:
    for ref in refs:
        if ref["trait"] == trait and kind in ref["kinds"]:
            mark = "" if ref.get("verified") else ", unverified"
            author = str(ref["source"]).split(",")[0].split(" (")[0]
            year = str(ref["source"]).split("(")[1].split(")")[0]
            return f"{ref['r_low']:.2f} to {ref['r_high']:.2f} ({author} {year}{mark})"
    return None


def _pairs(left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
    return left.join(right, on=list(AGENT_KEYS), suffix="_y").with_columns(
        pl.concat_str([pl.col("run_id"), pl.col("replica").cast(pl.String)], separator="/")
        .alias("_cluster"))


def validity_links(assigned: pl.DataFrame, selfreport: pl.DataFrame, behaviour: pl.DataFrame,
                   *, method: Method = "cluster", level: float = 0.95,
                   rng: np.random.Generator | None = None, n_boot: int = 1000,
                   refs: Sequence[Mapping[str, Any]] | None = None) -> pl.DataFrame:
    """Every trait's three links, one row per trait, link and behaviour measure.

    Args:
        assigned: :func:`assigned_traits`.
        selfreport: :func:`self_reports` (may be empty: the self-report links are left out).
        behaviour: :func:`analysis.behaviour.behaviour_measures`.
        method: ``"cluster"`` (CR1 OLS) or ``"bootstrap"``; see :func:`correlation_interval`.
        level: confidence level of the intervals.
        rng: seeded generator of the cluster bootstrap.
        n_boot: bootstrap resamples.
        refs: human reference effects (default: :func:`references`).

    Returns:
        ``trait, link, measure, kind, r, ci_low, ci_high, n, n_clusters, interval, flagged``
        (the interval excludes 0) ``, human`` (published effect, or null).
    """
    refs = references() if refs is None else refs
    rows: list[dict[str, Any]] = []
    beh = behaviour.select(*AGENT_KEYS, "measure", "kind", "value")
    measures = beh.select("measure", "kind").unique(maintain_order=True).sort("measure")
    for trait in TRAITS:
        a = assigned.filter(pl.col("trait") == trait).select(*AGENT_KEYS, "value")
        s = selfreport.filter(pl.col("trait") == trait).select(*AGENT_KEYS, "value")
        todo: list[tuple[str, pl.DataFrame, str | None, str | None]] = []
        if not s.is_empty():
            todo.append((LINKS[0], _pairs(a, s), None, None))
        for measure, kind in measures.iter_rows():
            b = beh.filter(pl.col("measure") == measure).select(*AGENT_KEYS, "value")
            todo.append((LINKS[1], _pairs(a, b), measure, kind))
            if not s.is_empty():
                todo.append((LINKS[2], _pairs(s, b), measure, kind))
        for link, pairs, measure, kind in todo:
            stats = correlation_interval(pairs["value"], pairs["value_y"], pairs["_cluster"],
                                         method=method, level=level, rng=rng, n_boot=n_boot)
            flagged = bool(stats["ci_low"] > 0 or stats["ci_high"] < 0)
            rows.append({"trait": trait, "link": link, "measure": measure, "kind": kind,
                         **stats, "flagged": flagged,
                         "human": _reference(trait, kind, refs) if kind else None})
    schema = {"trait": pl.String, "link": pl.String, "measure": pl.String, "kind": pl.String,
              "r": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.Int64,
              "n_clusters": pl.Int64, "interval": pl.String, "flagged": pl.Boolean,
              "human": pl.String}
    return pl.DataFrame(rows, schema=schema)


def _wide(frame: pl.DataFrame, prefix: str, column: str) -> pl.DataFrame:
    if frame.is_empty():
        return pl.DataFrame(schema={k: pl.String for k in AGENT_KEYS})
    return frame.with_columns((pl.lit(prefix) + pl.col(column)).alias("_var")).pivot(
        on="_var", index=list(AGENT_KEYS), values="value", aggregate_function="first")


def mtmm_summary(assigned: pl.DataFrame, selfreport: pl.DataFrame, behaviour: pl.DataFrame
                 ) -> pl.DataFrame:
    """Multitrait-multimethod summary (Campbell & Fiske 1959), one row per trait and method pair.

    For methods M1 (assigned, or self-report) and M2 (self-report, or a behaviour measure):
    ``convergent`` = r(M1 trait t, M2 of t) (for behaviour: the measure itself) and
    ``discriminant`` = mean |r| of M2 with M1's other traits. ``gap`` = |convergent| minus
    discriminant: positive when trait t, not its neighbours, goes with the measure.

    Returns:
        ``trait, methods, convergent, discriminant, gap, n``.
    """
    a, s = _wide(assigned, "A:", "trait"), _wide(selfreport, "S:", "trait")
    b = _wide(behaviour, "B:", "measure")
    table = a.join(s, on=list(AGENT_KEYS), how="left") if s.width > 3 else a
    table = table.join(b, on=list(AGENT_KEYS), how="left") if b.width > 3 else table
    rows = []
    targets = [("self-report", f"S:{t}") for t in TRAITS if f"S:{t}" in table.columns]
    targets += [(c[2:], c) for c in b.columns if c.startswith("B:")]
    for trait in TRAITS:
        for name, col in targets:
            if col.startswith("S:") and col != f"S:{trait}":
                continue
            rs = {u: _r(table, f"A:{u}", col) for u in TRAITS if f"A:{u}" in table.columns}
            others = [abs(v) for u, v in rs.items() if u != trait and np.isfinite(v)]
            conv = rs.get(trait, np.nan)
            disc = float(np.mean(others)) if others else np.nan
            rows.append({"trait": trait, "methods": f"assigned x {name}", "convergent": conv,
                         "discriminant": disc, "gap": abs(conv) - disc,
                         "n": int(table.select(col).drop_nulls().height)})
    return pl.DataFrame(rows, schema={"trait": pl.String, "methods": pl.String,
                                      "convergent": pl.Float64, "discriminant": pl.Float64,
                                      "gap": pl.Float64, "n": pl.Int64})


def _r(table: pl.DataFrame, x: str, y: str) -> float:
    pair = table.select(x, y).drop_nulls().to_numpy().astype(float)
    if len(pair) < 3 or np.ptp(pair[:, 0]) == 0 or np.ptp(pair[:, 1]) == 0:
        return float("nan")
    return float(np.corrcoef(pair.T)[0, 1])


def load_runs(path: str | Path) -> list[Run]:
    """A run directory, a sweep directory, or every run directory below a folder."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        return [load_run(path)]
    if (path / "sweep.json").is_file():
        sweep = load_sweep(path)
        done = sweep.cells.filter(pl.col("status") == "complete")["cell_id"].to_list()
        return [load_run(path / cell) for cell in done]
    runs = sorted(p.parent for p in path.rglob("manifest.json")) if path.is_dir() else []
    if not runs:
        raise RunError(f"{path}: neither a run nor a sweep directory (no manifest.json or "
                       "sweep.json below it). Fix: pass runs/<scenario>/<time>-<id>/ or the "
                       "folder 'traitlab sweep' wrote.")
    return [load_run(p) for p in runs]


def validity(runs: Sequence[Run], *, method: Method = "cluster", seed: int = 0,
             level: float = 0.95, n_boot: int = 1000) -> ValidityResult:
    """Links, MTMM summary and behaviour measures of loaded runs (pooled; runs are clusters)."""
    if not runs:
        raise RunError("validity: no runs to analyse.")
    events = pl.concat([r.events for r in runs], how="diagonal_relaxed")
    agents = pl.concat([r.agents for r in runs], how="diagonal_relaxed")
    surveys = pl.concat([r.surveys for r in runs], how="diagonal_relaxed")
    stages = {s["id"]: s for r in runs for s in r.scenario.get("stages", [])}
    beh = behaviour_measures(events, stages)
    assigned, selfrep = assigned_traits(agents), self_reports(surveys)
    beh = beh.join(assigned.select(AGENT_KEYS).unique(), on=list(AGENT_KEYS), how="semi")
    links = validity_links(assigned, selfrep, beh, method=method, level=level,
                           rng=np.random.default_rng(seed), n_boot=n_boot)
    return ValidityResult(links=links, mtmm=mtmm_summary(assigned, selfrep, beh), behaviour=beh)

