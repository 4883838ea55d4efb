"""Rich console output for the CLI: live progress, closing summary, transcripts."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from analysis.io import Run
from analysis.summary import choice_rates_by_round, payoff_by_trait
from sim.cli.terminal import safe_text
from sim.engine.loop import StepReport

__all__ = ["RunProgress", "print_summary", "print_transcript"]

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
        table = Table(title="mean payoff per decision, agents high (>0.5) vs low on each trait")
        for col in ("trait", "high", "low", "difference"):
            table.add_column(col, justify="left" if col == "trait" else "right")
        for row in payoffs.iter_rows(named=True):
            table.add_row(safe_text(row["trait"]), *(f"{row[c]:.2f}" if row[c] is not None else "-"
                                          for c in ("high", "low", "difference")))
        console.print(table)
    console.print(f"run directory: {safe_text(run.path)}")


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


def _transcript_line(row: dict[str, Any], names: dict[str, str]) -> str:
    """One event as rich markup; every piece of run text escaped."""
    def name(agent: str) -> str:
        return safe_text(names.get(agent, agent))

    who = name(row["agent"])
    partners = ", ".join(name(p) for p in row["partners"] or ())
    pay = f" payoff {row['payoff']:g}" if row["payoff"] is not None else ""
    if row["status"] != "ok":
        return f"[red]{who}: failed ({safe_text(row['error'])})[/red]"
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
