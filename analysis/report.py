"""One report per run (or sweep of runs): the analyzers that apply, as tables, charts and HTML.

:func:`analyze_run` reads the scenario's stages and runs what applies:

- choice stage with a 2x2 payoff: cooperation rate per round (first option = cooperate),
  conditional cooperation and forgiveness (:mod:`analysis.norms`), each with its n and a
  cluster bootstrap interval;
- every choice stage with payoffs: payoff regressed on each trait, cluster-robust
  (:mod:`analysis.regression`); ``levels`` stages: mean choice and the distribution;
  every stage with ``outcomes``: the mean of each named outcome (:mod:`analysis.sections`);
- every choice stage: choice entropy and consensus per round; in a sweep, the stage's
  measure per cell, named by the swept parameter values;
- dialogue stage: alignment effects against shuffle and cross surrogates
  (:mod:`analysis.alignment`), degenerate surrogates flagged instead of drawn;
- surveys present: trait trajectories and drift tests (:mod:`analysis.drift`);
- world state recorded: trajectories, inequality, collapse, sustainability, over-use and
  intervention alignment (:mod:`analysis.state_report`).

A sweep (a directory whose subdirectories hold run directories) is analysed as one data set:
frames are concatenated (every row keeps its ``run_id``) and bootstrap intervals resample runs.
The header (:mod:`analysis.provenance`) names model, dtype, conditioning, temperature,
decision rule, seeds and commit from the runs' manifests; charts are interactive Vega-Lite
(:mod:`analysis.charts`) in one self-contained page (:mod:`analysis.report_html`).

Example:
    >>> report = analyze_path("runs/prisoners-dilemma")        # doctest: +SKIP
    >>> render_html(report, "report.html")                       # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analysis import alignment, charts, drift, naming, norms, sections
from analysis.io import Run, load_run, read_cell
from analysis.oejts import oejts_types
from analysis.provenance import header
from analysis.report_html import print_report, render_html
from analysis.state_report import state_sections
from analysis.stats import RUN_KEYS
from sim.errors import RunError

__all__ = ["Figure", "Report", "analyze_path", "analyze_run", "analyze_runs", "find_runs",
           "print_report", "render_html"]

_MAX_LINES = 6  # per-run lines drawn before falling back to the mean with its band
_DEGENERATE = 1e-9  # |real - surrogate| below this: the surrogate reproduced the real data


@dataclass(frozen=True, slots=True)
class Figure:
    """A chart of a report section.

    Attributes:
        section: Title of the section the chart belongs to.
        spec: The chart's Vega-Lite specification (:mod:`analysis.charts`).
    """

    section: str
    spec: dict[str, Any]


@dataclass(slots=True)
class Report:
    """Named tables and figures of one run or a sweep.

    Attributes:
        title: Heading (scenario name and run count).
        run_ids: The runs analysed.
        tables: Section title -> table, in display order.
        figures: Charts, each attached to a section.
        notes: Section title -> a sentence explaining the section.
        header: ``(field, value)`` pairs naming what produced the runs
            (:func:`analysis.provenance.header`).
        flags: Section title -> warnings a reader must see (e.g. a degenerate baseline).
    """

    title: str
    run_ids: list[str]
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    header: list[tuple[str, str]] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=dict)

    def add(self, section: str, table: pl.DataFrame, note: str = "",
            chart: dict[str, Any] | None = None) -> None:
        """Add a section (table, optional note and Vega-Lite chart)."""
        self.tables[section] = table
        if note:
            self.notes[section] = note
        if chart:
            self.figures.append(Figure(section, chart))

    def flag(self, section: str, text: str) -> None:
        """Attach a warning to a section, shown beside its table."""
        self.flags.setdefault(section, []).append(text)


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
    """Load one run or every run below a sweep folder and analyse them together.

    A fork or a fork set (``traitlab fork``) also gets its "Fork effects"
    (:mod:`analysis.causal`).
    """
    from analysis.causal import fork_section

    report = analyze_runs([load_run(p) for p in find_runs(path)], seed=seed, n_boot=n_boot)
    fork_section(report, path)
    return report


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


def _cooperation(report: Report, runs: Sequence[Run], events: pl.DataFrame, sid: str,
                 stage: dict[str, Any], rng: np.random.Generator, n_boot: int) -> None:
    coop = stage["options"][0]
    sections.cooperation(report, events, sid, coop, sections.cell_labels(runs), rng, n_boot)
    sections.conditional_cooperation(report, events, sid, coop, rng, n_boot)
    sections.swept_cells(report, runs, events, sid, pl.col("choice") == coop,
                         f"share '{coop}'", rng, n_boot)


def _choice_measures(report: Report, runs: Sequence[Run], events: pl.DataFrame, sid: str,
                     stage: dict[str, Any], rng: np.random.Generator, n_boot: int) -> None:
    """Payoff by trait, numeric levels and named outcomes of one choice stage."""
    if stage.get("payoff"):
        agents = pl.concat([r.agents for r in runs], how="diagonal_relaxed")
        sections.payoff_by_trait(report, events, agents, sid)
    if stage.get("levels"):
        sections.levels(report, events, sid, rng, n_boot)
        sections.swept_cells(report, runs, events, sid, pl.col("value"), "mean level", rng,
                             n_boot)
    sections.outcomes(report, events, sid, rng, n_boot)


def _choice_dynamics(report: Report, events: pl.DataFrame, sid: str,
                     rng: np.random.Generator, n_boot: int) -> None:
    ent = norms.choice_entropy(events, stage=sid)
    con = naming.consensus(events, stage=sid)
    if con.is_empty():
        return
    table = con.join(ent.select(*RUN_KEYS, "round", "entropy", "entropy_norm"),
                     on=[*RUN_KEYS, "round"], how="left")
    long = table.unpivot(["consensus", "entropy_norm"], index=[*RUN_KEYS, "round"],
                         variable_name="measure", value_name="value")
    if table.select(RUN_KEYS).n_unique() > 1:
        band = sections.pooled(long, "value", rng, n_boot, by=("measure", "round"))
        chart = charts.line_chart(band, x="round", y="estimate", series="measure",
                                  low="ci_low", high="ci_high", y_domain=(0, 1),
                                  title=f"consensus and entropy · {sid}", y_title="share",
                                  tooltip=["measure", "round", "estimate", "ci_low",
                                           "ci_high", "n_clusters"])
    else:
        chart = charts.line_chart(long, x="round", y="value", series="measure",
                                  y_domain=(0, 1), title=f"consensus and entropy · {sid}",
                                  y_title="share")
    report.add(f"Choice consensus and entropy · {sid}", table,
               "Per run and round: consensus = share of the round's n choices on the most "
               "common option; entropy in nats, entropy_norm = entropy / ln K. With several "
               "runs the chart shows the mean over runs with a 95% CI resampling runs.", chart)


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
    eff = eff.with_columns(
        ((pl.col("real") - pl.col("surrogate")).abs() < _DEGENERATE).alias("degenerate"))
    title = f"Alignment vs surrogates · {sid}"
    report.add(title, eff,
               f"Real alignment minus surrogate (shuffle: within-speaker turn shuffle; cross: "
               f"partners who never met); 95% CI resamples {unit}. The chart shows each "
               "effect with its interval: above 0 means alignment beyond that baseline.",
               charts.dot_interval_chart(
                   eff.filter(~pl.col("degenerate")), label="measure", y="effect",
                   low="ci_low", high="ci_high", color="baseline",
                   title=f"alignment effect (real - surrogate) · {sid}", y_title="effect"))
    for base, group in eff.filter(pl.col("degenerate")).group_by(
            "baseline", maintain_order=True):
        names = ", ".join(group["measure"].to_list())
        report.flag(title, f"Degenerate {base[0]} baseline for {names}: the surrogate equals "
                    "the real value (e.g. chats of 2 turns give each speaker one turn, so a "
                    "shuffle changes nothing). Its effect of 0 is no finding and is not drawn.")


def _drift(report: Report, surveys: pl.DataFrame) -> None:
    scores = drift.trait_scores(surveys)
    if scores.is_empty():
        return
    traj = scores.group_by("round", "trait").agg(pl.col("score").mean()).sort("trait", "round")
    acq = scores.unique([*RUN_KEYS, "agent", "round"]).group_by("round").agg(
        pl.col("acquiescence").mean())
    table = traj.pivot("trait", index="round", values="score").join(acq, on="round",
                                                                    how="left")
    report.add("Trait trajectories", table,
               "Mean trait score (1..5, after reverse keying) over agents, per survey round, "
               "beside the mean acquiescence index (yea-saying: > 0 agrees regardless of "
               "content; with unbalanced keying it moves Emotional Stability and Intellect).",
               charts.line_chart(traj, x="round", y="score", series="trait",
                                 title="trait score over rounds", y_title="mean score"))
    report.add("Drift tests", drift.detect_drift(scores),
               "Per run and trait: mean of per-agent slopes of score on round, Holm-adjusted "
               "one-sample t-test across traits.")


def _oejts(report: Report, surveys: pl.DataFrame) -> None:
    if "oejts" not in set(surveys["instrument"].to_list()):
        return
    report.add("OEJTS types", oejts_types(surveys),
               "Axis scores (8..40, continuous from the answer distributions) beside the type; "
               "margin = axis - 24, the cut-off (positive: E, N, T, P).")


def _runs_table(runs: Sequence[Run]) -> pl.DataFrame:
    """One row per run: id, swept parameter values (sweeps), seed, status and sizes."""
    rows = []
    for r in runs:
        params = {k.rsplit(".", 1)[-1]: str(v)
                  for k, v in sorted(read_cell(r.path).get("params", {}).items())}
        rows.append({"run_id": r.run_id, **params, "seed": r.manifest.get("seed"),
                     "status": r.manifest.get("status"), "replicas": r.manifest.get("replicas"),
                     "events": r.events.height, "agents": r.agents.height,
                     "survey_answers": r.surveys.height})
    return pl.DataFrame(rows, infer_schema_length=None)


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
    report.header = header(runs)
    report.add("Runs", _runs_table(runs))
    for sid, stage in _stages(runs).items():
        if stage.get("kind") == "choice":
            _choice_measures(report, runs, events, sid, stage, rng, n_boot)
            if _is_2x2(stage):
                _cooperation(report, runs, events, sid, stage, rng, n_boot)
            _choice_dynamics(report, events, sid, rng, n_boot)
        elif stage.get("kind") == "dialogue":
            _alignment(report, events, sid, rng, n_boot)
            sections.outcomes(report, events, sid, rng, n_boot)
    _position(report, events, rng, n_boot)
    state_sections(report, runs)
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
