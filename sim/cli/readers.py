"""Commands that read and never write: ``validate``, ``show``, ``analyze``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["analyze", "show", "validate"]


def validate(files: Sequence[Path]) -> int:
    """Check scenario files; print one line per valid file (errors raise)."""
    from sim.cli.terminal import visible
    from sim.scenario.loader import load_scenario

    for file in files:
        loaded = load_scenario(file)
        print(visible(f"ok  {file}  ({loaded.spec.name}: {len(loaded.spec.stages)} stages, "
                      f"{loaded.spec.population.size} agents)"))
    return 0


def show(run_dir: Path, limit: int, *, prompts: bool = False) -> int:
    """Print a run's transcript, or with ``prompts`` the prompts its agents saw."""
    from analysis.io import load_run
    from sim.cli.progress import print_prompts, print_transcript

    run = load_run(run_dir)
    (print_prompts if prompts else print_transcript)(run, limit)
    return 0


def analyze(path: Path, html: Path | None, seed: int) -> int:
    """Print a run's or a folder's report; with ``html`` also write the page."""
    from analysis.report import analyze_path, print_report, render_html
    from sim.cli.terminal import inert_report

    report = analyze_path(path, seed=seed)
    print_report(inert_report(report))
    if html is not None:
        print(f"wrote {render_html(report, html)}")
    return 0
