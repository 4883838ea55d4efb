"""One report per run (or sweep of runs): the analyzers that apply, as tables, charts and HTML.

:func:`analyze_run` reads the scenario's stages and runs what applies:

- choice stage with a 2x2 payoff: cooperation rate per round (first option = cooperate),
  conditional cooperation and forgiveness (:mod:`analysis.norms`), payoff by trait
  (:mod:`analysis.summary`);
- every choice stage: choice entropy and consensus per round;
- dialogue stage: alignment effects against shuffle and cross surrogates
  (:mod:`analysis.alignment`);
- surveys present: trait trajectories and drift tests (:mod:`analysis.drift`).

A sweep (a directory whose subdirectories hold run directories) is analysed as one data set:
frames are concatenated (every row keeps its ``run_id``) and bootstrap intervals resample runs.

Example:
    >>> report = analyze_path("runs/prisoners-dilemma")        # doctest: +SKIP
    >>> render_html(report, "report.html")                       # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analysis import alignment, drift, naming, norms, summary
from analysis.io import Run, load_run
from analysis.oejts import oejts_types
from analysis.stats import RUN_KEYS, cluster_bootstrap
from analysis.svg import Series, bar_chart, interval_chart, line_chart
from sim.errors import RunError

__all__ = ["Figure", "Report", "analyze_path", "analyze_run", "analyze_runs", "find_runs",
           "print_report", "render_html"]

_MAX_LINES = 6  # per-run lines drawn before falling back to the mean with its band


@dataclass(frozen=True, slots=True)
class Figure:
    """A chart of a report section.

    Attributes:
        section: Title of the section the chart belongs to.
        svg: The ``<svg>`` element.
    """

    section: str
    svg: str


@dataclass(slots=True)
class Report:
    """Named tables and figures of one run or a sweep.

    Attributes:
        title: Heading (scenario name and run count).
        run_ids: The runs analysed.
        tables: Section title -> table, in display order.
        figures: Charts, each attached to a section.
        notes: Section title -> a sentence explaining the section.
    """

    title: str
    run_ids: list[str]
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, section: str, table: pl.DataFrame, note: str = "", svg: str | None = None
            ) -> None:
        """Add a section (table, optional note and chart)."""
        self.tables[section] = table
        if note:
            self.notes[section] = note
        if svg:
            self.figures.append(Figure(section, svg))


def find_runs(path: str | Path) -> list[Path]:
    """The run directories at ``path``: itself, or every directory below it with a manifest.

    Raises:
        RunError: if there is none.
    """
    path = Path(path)
    if (path / "manifest.json").is_file():
        return [path]
    runs = sorted(p.parent for p in path.rglob("manifest.json")) if path.is_dir() else []
    if not runs:
        raise RunError(f"{path} is neither a run directory nor a folder of runs (no "
                       "manifest.json found). Fix: pass runs/<scenario>/<time>-<id>/ or a "
                       "sweep folder containing such directories.")
    return runs


def analyze_path(path: str | Path, *, seed: int = 0, n_boot: int = 200) -> Report:
    """Load one run or every run below a sweep folder and analyse them together."""
    return analyze_runs([load_run(p) for p in find_runs(path)], seed=seed, n_boot=n_boot)


def analyze_run(run: Run, *, seed: int = 0, n_boot: int = 200) -> Report:
    """Analyse one run with the analyzers that apply to its stages.

    Args:
        run: A loaded run.
        seed: Seed of the numpy Generator used for surrogates and bootstraps.
        n_boot: Bootstrap resamples (small by default, to stay fast).

    Returns:
        The report.
    """
    return analyze_runs([run], seed=seed, n_boot=n_boot)


def _stages(runs: Sequence[Run]) -> dict[str, dict[str, Any]]:
    stages: dict[str, dict[str, Any]] = {}
    for run in runs:
        for stage in run.scenario.get("stages", []):
            stages.setdefault(stage["id"], stage)
    return stages


def _is_2x2(stage: dict[str, Any]) -> bool:
    matrix = (stage.get("payoff") or {}).get("matrix")
    return (len(stage.get("options") or []) == 2 and isinstance(matrix, list)
            and len(matrix) == 2 and all(len(row) == 2 for row in matrix))


def _lines(df: pl.DataFrame, value: str, rng: np.random.Generator, n_boot: int,
           name: str = "") -> list[Series]:
    """Per-run lines, or the mean over runs with a run-cluster bootstrap band."""
    keys = df.select(RUN_KEYS).unique(maintain_order=True)
    if keys.height <= _MAX_LINES:
        out = []
        for run_id, replica in keys.iter_rows():
            d = df.filter((pl.col("run_id") == run_id) & (pl.col("replica") == replica))
            label = name or (run_id[-6:] if keys.height > 1 else value)
            if keys.height > 1 and replica:
                label += f"/{replica}"
            out.append(Series(label, d["round"].to_list(), d[value].to_list()))
        return out
    ci = cluster_bootstrap(df, value, rng, by=("round",), n_boot=n_boot).sort("round")
    return [Series(name or f"mean of {keys.height} runs", ci["round"].to_list(),
                   ci["estimate"].to_list(), ci["ci_low"].to_list(), ci["ci_high"].to_list())]


def _per_run(runs: Sequence[Run], events: pl.DataFrame, stage: str) -> pl.DataFrame:
    frames = [summary.payoff_by_trait(
        events.filter((pl.col("run_id") == r.run_id) & (pl.col("stage") == stage)), r.agents
    ).with_columns(pl.lit(r.run_id).alias("run_id")) for r in runs]
    return pl.concat(frames).select("run_id", "trait", "high", "low", "difference")


def _cooperation(report: Report, runs: Sequence[Run], events: pl.DataFrame, sid: str,
                 stage: dict[str, Any], rng: np.random.Generator, n_boot: int) -> None:
    coop = stage["options"][0]
    rate = norms.cooperation_rate(events, stage=sid, cooperate=coop)
    report.add(f"Cooperation rate · {sid}", rate,
               f"Share of '{coop}' choices per round (first option of a 2x2 payoff stage).",
               line_chart(_lines(rate, "cooperation", rng, n_boot), title=f"cooperation · {sid}",
                          y_label=f"share '{coop}'", y_range=(0.0, 1.0)))
    report.add(f"Conditional cooperation · {sid}",
               norms.conditional_cooperation(events, stage=sid, cooperate=coop),
               "P(C | partner C last round) - P(C | partner D) = cc; forgiveness = "
               "P(C | partner D then C); grim_share = never cooperated after a defection.")
    pay = _per_run(runs, events, sid)
    mean = pay.group_by("trait", maintain_order=True).agg(pl.col("high", "low").mean())
    report.add(f"Payoff by trait · {sid}", pay,
               "Mean payoff per decision of agents high (> 0.5) vs low (<= 0.5) on each trait.",
               bar_chart(mean["trait"].to_list(), {"high": mean["high"].to_list(),
                                                   "low": mean["low"].to_list()},
                         title=f"payoff by trait · {sid}", y_label="mean payoff")
               if not mean.is_empty() else None)


def _choice_dynamics(report: Report, events: pl.DataFrame, sid: str,
                     rng: np.random.Generator, n_boot: int) -> None:
    ent = norms.choice_entropy(events, stage=sid)
    con = naming.consensus(events, stage=sid)
    if con.is_empty():
        return
    table = con.join(ent.select(*RUN_KEYS, "round", "entropy", "entropy_norm"),
                     on=[*RUN_KEYS, "round"], how="left")
    series = [*_lines(table, "consensus", rng, n_boot, "consensus"),
              *_lines(table, "entropy_norm", rng, n_boot, "entropy (norm.)")]
    if table.select(RUN_KEYS).n_unique() > 1:
        series = _lines(table, "consensus", rng, n_boot)
    report.add(f"Choice consensus and entropy · {sid}", table,
               "Consensus = share of the round's choices on the most common option; entropy "
               "in nats, entropy_norm = entropy / ln K.",
               line_chart(series, title=f"consensus · {sid}", y_label="share",
                          y_range=(0.0, 1.0)))


def _alignment(report: Report, events: pl.DataFrame, sid: str, rng: np.random.Generator,
               n_boot: int) -> None:
    msgs = events.filter((pl.col("stage") == sid) & (pl.col("kind") == "message")
                         & (pl.col("status") == "ok"))
    if msgs.select(alignment.CONV_KEYS).n_unique() < 2:
        return
    several = msgs.select(RUN_KEYS).n_unique() > 1
    with warnings.catch_warnings():  # all-NaN measures (e.g. convergence of 2-turn chats)
        warnings.simplefilter("ignore", RuntimeWarning)
        eff = alignment.alignment_effects(
            msgs, rng, n_surrogates=5, n_boot=n_boot, n_components=10,
            cluster=RUN_KEYS if several else alignment.CONV_KEYS)
    unit = "runs" if several else "conversations"
    measures = list(dict.fromkeys(eff["measure"].to_list()))
    real = eff.group_by("measure").agg(pl.col("real").first())
    real_of = dict(real.iter_rows())
    bands: dict[str, tuple[list[float | None], list[float | None]]] = {}
    for base in dict.fromkeys(eff["baseline"].to_list()):
        b = {m: (lo, hi) for m, lo, hi in eff.filter(pl.col("baseline") == base).select(
            "measure", "ci_low", "ci_high").iter_rows()}
        bands[f"surrogate: {base}"] = (
            [real_of[m] - b[m][1] if m in b else None for m in measures],
            [real_of[m] - b[m][0] if m in b else None for m in measures])
    report.add(f"Alignment vs surrogates · {sid}", eff,
               f"Real alignment minus surrogate (shuffle: within-speaker turn shuffle; cross: "
               f"partners who never met); 95% CI resamples {unit}. The band is real - CI of "
               "the effect: a dot above its band means alignment beyond that baseline.",
               interval_chart(measures, {"real": [real_of[m] for m in measures]}, bands,
                              title=f"alignment real vs surrogate · {sid}", y_label="value"))


def _drift(report: Report, surveys: pl.DataFrame) -> None:
    scores = drift.trait_scores(surveys)
    if scores.is_empty():
        return
    traj = scores.group_by("round", "trait").agg(pl.col("score").mean()).sort("trait", "round")
    series = [Series(t, d["round"].to_list(), d["score"].to_list())
              for (t,), d in traj.partition_by("trait", as_dict=True,
                                               maintain_order=True).items()]
    acq = scores.unique([*RUN_KEYS, "agent", "round"]).group_by("round").agg(
        pl.col("acquiescence").mean())
    table = traj.pivot("trait", index="round", values="score").join(acq, on="round",
                                                                    how="left")
    report.add("Trait trajectories", table,
               "Mean trait score (1..5, after reverse keying) over agents, per survey round, "
               "beside the mean acquiescence index (yea-saying: > 0 agrees regardless of "
               "content; with unbalanced keying it moves Emotional Stability and Intellect).",
               line_chart(series, title="trait score over rounds", y_label="mean score"))
    report.add("Drift tests", drift.detect_drift(scores),
               "Per run and trait: mean of per-agent slopes of score on round, Holm-adjusted "
               "one-sample t-test across traits.")


def _oejts(report: Report, surveys: pl.DataFrame) -> None:
    if "oejts" not in set(surveys["instrument"].to_list()):
        return
    report.add("OEJTS types", oejts_types(surveys),
               "Axis scores (8..40, continuous from the answer distributions) beside the type; "
               "margin = axis - 24, the cut-off (positive: E, N, T, P).")


def analyze_runs(runs: Sequence[Run], *, seed: int = 0, n_boot: int = 200) -> Report:
    """Analyse several runs as one data set (rows keep ``run_id``; intervals resample runs).

    Args:
        runs: Loaded runs (a sweep), at least one.
        seed: Seed of the numpy Generator.
        n_boot: Bootstrap resamples.

    Returns:
        The report.
    """
    if not runs:
        raise RunError("no runs to analyse. Fix: pass a run directory or a sweep folder.")
    rng = np.random.default_rng(seed)
    name = runs[0].manifest.get("scenario") or runs[0].scenario.get("name", "run")
    title = f"{name} · {len(runs)} run" + ("s" if len(runs) > 1 else "")
    report = Report(title=title, run_ids=[r.run_id for r in runs])
    events = pl.concat([r.events for r in runs], how="diagonal_relaxed")
    report.add("Runs", pl.DataFrame([{
        "run_id": r.run_id, "status": r.manifest.get("status"), "seed": r.manifest.get("seed"),
        "replicas": r.manifest.get("replicas"), "events": r.events.height,
        "agents": r.agents.height, "survey_answers": r.surveys.height} for r in runs]))
    for sid, stage in _stages(runs).items():
        if stage.get("kind") == "choice":
            if _is_2x2(stage):
                _cooperation(report, runs, events, sid, stage, rng, n_boot)
            _choice_dynamics(report, events, sid, rng, n_boot)
        elif stage.get("kind") == "dialogue":
            _alignment(report, events, sid, rng, n_boot)
    _position(report, events, rng, n_boot)
    surveys = [r.surveys for r in runs if not r.surveys.is_empty()]
    if surveys:
        all_surveys = pl.concat(surveys, how="diagonal_relaxed")
        _drift(report, all_surveys)
        _oejts(report, all_surveys)
    return report


def _position(report: Report, events: pl.DataFrame, rng: np.random.Generator,
              n_boot: int) -> None:
    """P(option | shown position) of every choice stage, and a warning where position matters."""
    from analysis.position import position_sections

    for title, table, note in position_sections(events, rng, n_boot=n_boot):
        report.add(title, table, note)


def _cell(v: object) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if v == 0:
            return "0"
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) >= 1e-4 else f"{v:.2e}"
    if v is None:
        return "–"
    return str(v)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px 32px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:0 0 6px}
.meta{color:#57606a;margin-bottom:20px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;
margin:16px 0}
.note{color:#57606a;margin:0 0 10px;font-size:14px}
.wrap{overflow-x:auto;max-height:360px;overflow-y:auto}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}
th{background:#f6f8fa;position:sticky;top:0}
td:first-child,th:first-child{text-align:left}
figure{margin:6px 0 12px}
"""


def _html_table(df: pl.DataFrame, max_rows: int = 500) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in df.head(max_rows).iter_rows())
    more = (f"<p class='note'>{df.height - max_rows} more rows not shown.</p>"
            if df.height > max_rows else "")
    return f"<div class='wrap'><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>" \
           f"</table></div>{more}"


def render_html(report: Report, path: str | Path) -> Path:
    """Write the report as one self-contained HTML file (inline CSS and SVG, no URLs).

    Args:
        report: The report.
        path: Output file.

    Returns:
        The written path.
    """
    path = Path(path)
    figures: dict[str, list[str]] = {}
    for fig in report.figures:
        figures.setdefault(fig.section, []).append(fig.svg)
    sections = []
    for title, table in report.tables.items():
        note = report.notes.get(title)
        sections.append(
            f"<section id='{_slug(title)}'><h2>{escape(title)}</h2>"
            + (f"<p class='note'>{escape(note)}</p>" if note else "")
            + "".join(f"<figure>{svg}</figure>" for svg in figures.get(title, []))
            + _html_table(table) + "</section>")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body><main>"
            f"<h1>TraitLab report: {escape(report.title)}</h1>"
            f"<div class='meta'>runs: {escape(', '.join(report.run_ids[:12]))}"
            f"{' …' if len(report.run_ids) > 12 else ''} · generated {stamp}</div>"
            + "\n".join(sections) + "</main></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def print_report(report: Report, max_rows: int = 20) -> None:
    """Print the report's tables to the terminal with rich (figures are HTML-only)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{report.title}[/bold]")
    for title, df in report.tables.items():
        table = Table(title=title, title_justify="left")
        for col in df.columns:
            numeric = df[col].dtype.is_numeric()
            table.add_column(col, justify="right" if numeric else "left")
        for row in df.head(max_rows).iter_rows():
            table.add_row(*(_cell(v) for v in row))
        console.print(table)
        if df.height > max_rows:
            console.print(f"... {df.height - max_rows} more rows (see --html)")
