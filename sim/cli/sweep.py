"""``traitlab sweep SWEEP.yaml``: validate everything, run the cells on Ray, show them live."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from sim.cli.terminal import safe_text, visible

__all__ = ["SWEEP_EXAMPLE", "add_parser", "main", "out_dir"]

SWEEP_EXAMPLE = """example:
  traitlab sweep scenarios/sweeps/pd_agreeableness.yaml            # local Ray
  traitlab sweep scenarios/sweeps/pd_agreeableness.yaml --resume   # after Ctrl-C or failures
  traitlab sweep my_sweep.yaml --ray-address 10.0.0.5:6379 --out /shared/runs
"""


def out_dir(text: str) -> Path:
    """An ``--out`` folder; an empty one would silently mean the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is empty; name an output folder such as "
                                         "runs (use . for the current directory)")
    return Path(text)


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add the ``sweep`` sub-command to the CLI's sub-parsers."""
    sweep = sub.add_parser("sweep", help="run a parameter sweep of a scenario on Ray",
                           epilog=SWEEP_EXAMPLE, formatter_class=formatter)
    sweep.add_argument("sweep_file", type=Path, metavar="SWEEP.yaml")
    sweep.add_argument("--resume", action="store_true",
                       help="continue the sweep in the output directory (complete cells "
                            "are skipped)")
    sweep.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="join this Ray cluster (host:port); default: local Ray")
    sweep.add_argument("--out", type=out_dir, default=Path("runs"),
                       help="output root; cells go to OUT/<sweep name>/<cell-id>/ (runs/)")
    sweep.add_argument("--max-retries", type=int, default=None,
                       help="retries per failing cell (default: the sweep file's, else 2)")
    sweep.add_argument("--validate", action="store_true",
                       help="only check the sweep file and list its cells")
    sweep.add_argument("--quiet", action="store_true", help="no live view")


class _LiveView:
    """Cells done / running / failed / pending, throughput and the latest errors."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total = name, total
        self.started = time.perf_counter()
        self.done_at_start: int | None = None
        self.manifest: dict[str, Any] = {}
        self.live = Live(self._table(), console=Console(stderr=True), refresh_per_second=4)

    def update(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest
        self.live.update(self._table())

    def _table(self) -> Table:
        cells = self.manifest.get("cells", [])
        count = {s: sum(1 for c in cells if c["status"] == s)
                 for s in ("complete", "running", "failed", "pending")}
        if self.done_at_start is None and cells:
            self.done_at_start = count["complete"]
        elapsed = time.perf_counter() - self.started
        new = count["complete"] - (self.done_at_start or 0)
        events = sum(c.get("events") or 0 for c in cells if c["status"] == "complete")
        nodes = {c["node"] for c in cells if c["status"] in ("complete", "running")
                 and c["node"]}
        table = Table(title=f"sweep {safe_text(self.name)}: {len(cells) or self.total} cells",
                      show_header=True, header_style="bold")
        for column in ("done", "running", "failed", "pending", "cells/min", "events",
                       "nodes", "elapsed"):
            table.add_column(column, justify="right")
        table.add_row(f"[green]{count['complete']}", f"[cyan]{count['running']}",
                      f"[red]{count['failed']}", str(count["pending"]),
                      f"{60 * new / elapsed:.1f}" if elapsed > 0 else "-", str(events),
                      str(len(nodes)), f"{elapsed:.0f}s")
        return table


def main(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the ``sweep`` command; returns the exit code (1 if any cell failed)."""
    from sim.errors import RunError
    from sim.sweep.runner import run_sweep
    from sim.sweep.spec import load_sweep_spec

    sweep = load_sweep_spec(args.sweep_file)  # everything is checked before anything runs
    if args.max_retries is not None and not 0 <= args.max_retries <= 20:
        raise RunError(f"--max-retries {args.max_retries}: use a number from 0 to 20.")
    if args.validate:
        for cell in sweep.cells:
            print(visible(f"{cell.id}  seed={cell.seed}  {cell.params}"))
        print(visible(f"ok  {args.sweep_file}  ({len(sweep.cells)} cells of "
                      f"{sweep.base.spec.name})"))
        return 0
    command = ["traitlab", *argv]
    if args.quiet:
        result = run_sweep(sweep, out=args.out, resume=args.resume,
                           max_retries=args.max_retries, ray_address=args.ray_address,
                           command=command)
    else:
        view = _LiveView(sweep.spec.name, len(sweep.cells))
        with view.live:
            result = run_sweep(sweep, out=args.out, resume=args.resume,
                               max_retries=args.max_retries, ray_address=args.ray_address,
                               on_update=view.update, command=command)
    failed = result.count("failed")
    print(visible(f"{result.path}  {result.count('complete')} complete, {failed} failed "
          f"({result.status})"))
    for cell in result.manifest["cells"]:
        if cell["status"] == "failed":
            last = cell["errors"][-1]["error"] if cell["errors"] else "unknown"
            print(visible(f"failed  {cell['id']}  after {cell['attempts']} attempts: {last}"))
    return 1 if failed else 0
