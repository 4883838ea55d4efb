"""Rich console output for the CLI: live progress, closing summary, transcripts."""

from __future__ import annotations

import json
import math
from types import TracebackType
from typing import Any

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from analysis.io import Run
from analysis.regression import payoff_by_trait
from analysis.summary import choice_rates_by_round
from sim.cli.terminal import safe_text
from sim.engine.loop import StepReport

__all__ = ["RunProgress", "decided_by_line", "print_prompts", "print_summary", "print_transcript"]

_console = Console(stderr=True)


class RunProgress:
    """A progress bar over steps showing agent-turns/s and tokens/s; a step callback."""

    def __init__(self, *, total: int, title: str, completed: int = 0) -> None:
        title = safe_text(title)  # the scenario's name, formatted into markup below
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stage]}"), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), console=_console)
        self._task = self._progress.add_task(title, total=total, completed=completed, stage="",
                                             rate="")
        self._turns = 0
        self._tokens = 0
        self._seconds = 0.0

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def status(self, text: str) -> None:
        """Show a status word before the first step."""
        self._progress.update(self._task, stage=text)

    def update(self, report: StepReport) -> None:
        """Step callback: advance the bar and refresh the rates."""
        self._turns += sum(1 for r in report.rows if r["kind"] != "sit_out")
        self._tokens += sum(r.get("new_tokens") or 0 for r in report.rows)
        self._seconds += report.seconds
        rate = (f"{self._turns / self._seconds:.1f} agent-turns/s  "
                f"{self._tokens / self._seconds:.0f} tok/s") if self._seconds else ""
        stages = safe_text(",".join(sorted(set(report.stages))))
        self._progress.update(self._task, advance=1, stage=stages, rate=rate)


def print_summary(run: Run, seconds: float) -> None:
    """Closing summary: where the run is, choice rates per round, payoff by trait."""
    console = Console(emoji=False)
    m = run.manifest
    console.print(f"[bold]{safe_text(m['scenario'])}[/bold] {m['status']} in {seconds:.1f} s: "
                  f"{m['steps_completed']} steps, {m['events']} events, "
                  f"{m['tokens']['new']} tokens generated, {m['failures']} failed requests")
    if m.get("cost_usd") is not None:
        console.print(f"estimated cost ${m['cost_usd']:.4f} at the given prices")
    decided = decided_by_line(run)
    if decided:
        console.print(decided, markup=False)
    rates = choice_rates_by_round(run.events)
    if not rates.is_empty():
        table = Table(title="first-option rate per round (e.g. cooperation)")
        for col in ("stage", "round", "option", "rate", "n"):
            table.add_column(col, justify="right" if col in ("round", "rate", "n") else "left")
        for row in rates.iter_rows(named=True):
            table.add_row(safe_text(row["stage"]), str(row["round"]), safe_text(row["option"]),
                          f"{row['rate']:.2f}", str(row["n"]))
        console.print(table)
    payoffs = payoff_by_trait(run.events, run.agents)
    if not payoffs.is_empty():
        unit = payoffs["cluster"][0]
        table = Table(title=f"payoff per decision regressed on each trait (0..1); 95% CI "
                            f"clustered by {unit}")
        for col in ("trait", "slope", "95% CI", "n"):
            table.add_column(col, justify="left" if col == "trait" else "right")
        for row in payoffs.iter_rows(named=True):
            ci = ("-" if row["ci_low"] is None or math.isnan(row["ci_low"])
                  else f"{row['ci_low']:.2f} to {row['ci_high']:.2f}")
            slope = "-" if row["slope"] is None or math.isnan(row["slope"]) else \
                f"{row['slope']:+.2f}"
            table.add_row(safe_text(row["trait"]), slope, ci, str(row["n_obs"]))
        console.print(table)
    console.print(f"run directory: {safe_text(run.path)}")


def decided_by_line(run: Run) -> str | None:
    """How choices and survey items were decided, when any was not by log-likelihoods.

    Counts the ``decided_by`` column of events and surveys; the failures are the parse
    failures and failed requests a server backend left. ``None`` when every answer came from
    log-likelihoods or policies (nothing to report).
    """
    frames = [df.select("decided_by") for df in (run.events, run.surveys)
              if df is not None and "decided_by" in df.columns]
    if not frames:
        return None
    counts = pl.concat(frames).drop_nulls()["decided_by"].value_counts()
    found = dict(zip(counts["decided_by"], counts["count"], strict=True))
    if not set(found) - {"logprobs", "policy"}:
        return None
    parts = ", ".join(f"{found[k]} {k}" for k in ("logprobs", "constrained", "parsed",
                                                  "policy", "failed") if found.get(k))
    return f"decided by: {parts} ({found.get('failed', 0)} parse or request failures)"


def print_transcript(run: Run, limit: int) -> None:
    """A readable transcript: messages, choices with probabilities, outcomes with payoffs.

    Every name and text is shown inert (:func:`safe_text`).
    """
    console = Console(emoji=False, highlight=False)
    names = dict(zip(run.agents["agent"], run.agents["name"], strict=True))
    events = run.events.filter(pl.col("kind") != "sit_out").sort(
        "replica", "step", "group", "turn", "agent").head(limit)
    current = None
    for row in events.iter_rows(named=True):
        header = (row["replica"], row["step"])
        if header != current:
            current = header
            console.rule(f"replica {row['replica']} · step {row['step']} · round {row['round']}"
                         f" · {safe_text(row['stage'])}")
        console.print(_transcript_line(row, names))
    total = run.events.height
    if total > limit:
        console.print(f"... {total - limit} more events (use --limit)")


def print_prompts(run: Run, limit: int) -> None:
    """Every distinct prompt of a run (what agents were told), in order of first use.

    Each is headed by its hash, its kind and how many events it is linked from.
    """
    console = Console(emoji=False, highlight=False)
    if run.prompts.is_empty():
        console.print("this run stored no prompts (recorded before prompts were kept)")
        return
    uses = dict(run.events.group_by("prompt_hash").len().drop_nulls().iter_rows())
    for row in run.prompts.head(limit).iter_rows(named=True):
        console.rule(f"prompt {row['prompt_hash']} · {row['kind']} · "
                     f"{uses.get(row['prompt_hash'], 0)} event(s)")
        for message in json.loads(row["messages"]):
            console.print(f"[bold]{safe_text(message['role'])}[/bold]")
            console.print(safe_text(message["content"]))
        if row["options"] is not None:
            console.print(f"[bold]options[/bold] {safe_text(', '.join(row['options']))}")
    if run.prompts.height > limit:
        console.print(f"... {run.prompts.height - limit} more prompts (use --limit)")


def _transcript_line(row: dict[str, Any], names: dict[str, str]) -> str:
    """One event as rich markup; every piece of run text escaped."""
    def name(agent: str) -> str:
        return safe_text(names.get(agent, agent))

    who = name(row["agent"])
    partners = ", ".join(name(p) for p in row["partners"] or ())
    pay = f" payoff {row['payoff']:g}" if row["payoff"] is not None else ""
    if row["status"] != "ok":
        return f"[red]{who}: failed ({safe_text(row['error'])})[/red]"
    if row["kind"] == "intervention":  # no agent: the game master's change to the world
        said = f': "{safe_text(row["text"])}"' if row["text"] else ""
        return f"[magenta]intervention {safe_text(row['intervention'])}[/magenta]{said}"
    if row["kind"] in ("message", "broadcast"):
        return f"[bold]{who}[/bold] → {partners}: {safe_text(row['text'])}"
    if row["kind"] == "outcome":
        details = f" {safe_text(row['outcomes'])}" if row["outcomes"] else ""
        return f"[bold]{who}[/bold] with {partners}: outcome{details}{pay}"
    probs = " ".join(f"{safe_text(o)}={p:.2f}" for o, p in
                     zip(row["options"] or (), row["option_probs"] or (), strict=False))
    shown = f" ({probs})" if probs else ""
    return (f"[bold]{who}[/bold] vs {partners}: [cyan]{safe_text(row['choice'])}[/cyan]"
            f"{shown}{pay}")
