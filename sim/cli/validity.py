"""``traitlab validity``: does the personality take? Assigned, self-reported, behaved."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "main"]

_FEW_RUNS = 10
"""Below this many clusters CR1 intervals run narrow (Cameron & Miller 2015): say so."""

_EXAMPLE = """example:
  traitlab run scenarios/pd_with_survey.yaml --replicas 4 --out runs/
  traitlab validity runs/pd-with-survey/20261123T101500Z-1a2b3c
  traitlab validity runs/my-sweep --json > validity.json     # a sweep: every cell a cluster
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               fmt: type[argparse.HelpFormatter]) -> None:
    """Add the ``validity`` sub-command."""
    parser = sub.add_parser(
        "validity", help="trait validity: assigned -> self-report -> behaviour, per trait",
        epilog=_EXAMPLE, formatter_class=fmt)
    parser.add_argument("validity_path", type=Path, metavar="RUN_OR_SWEEP",
                        help="a run directory, a sweep directory, or a folder of runs")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the cluster bootstrap (with --method bootstrap)")
    parser.add_argument("--method", choices=["cluster", "bootstrap"], default="cluster",
                        help="interval: cluster-robust OLS (default) or cluster bootstrap")
    parser.add_argument("--json", action="store_true", help="print the tables as JSON")


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def main(args: argparse.Namespace) -> int:
    """Print the validity tables of a run or sweep."""
    from analysis.validity import load_runs, validity

    result = validity(load_runs(args.validity_path), method=args.method, seed=args.seed)
    if args.json:
        print(json.dumps({name: [{k: _clean(v) for k, v in row.items()}
                                 for row in getattr(result, name).iter_rows(named=True)]
                          for name in ("links", "mtmm")}, indent=1))
        return 0
    _print(result)
    return 0


def _fmt(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:+.2f}"


def _print(result: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(emoji=False, highlight=False)
    links = Table(title="Trait validity: r between agents, 95% interval with runs as clusters")
    for col in ("trait", "link", "behaviour", "r", "interval", "n (runs)", "human r"):
        links.add_column(col, overflow="fold")
    short = {"assigned -> self-report": "A->S", "assigned -> behaviour": "A->B",
             "self-report -> behaviour": "S->B"}
    for row in result.links.iter_rows(named=True):
        mark = " *" if row["flagged"] else ""
        links.add_row(escape(row["trait"]), short.get(row["link"], escape(row["link"])),
                      escape(row["measure"] or "-"),
                      _fmt(row["r"]) + mark,
                      f"[{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]",
                      f"{row['n']} ({row['n_clusters']})", escape(row["human"] or "-"))
    console.print(links)
    console.print("A: assigned trait, S: self-report (survey stages), B: behaviour. "
                  "* interval excludes 0. Intervals: "
                  + escape(", ".join(sorted(set(result.links["interval"].to_list())))))
    runs = result.links["n_clusters"].min()
    if runs is not None and runs < _FEW_RUNS:
        console.print(f"note: {runs} runs; cluster-robust intervals need more (about "
                      f"{_FEW_RUNS}+) to reach their nominal level: run more --replicas.")
    mtmm = Table(title="Multitrait-multimethod: convergent r vs mean |r| with the other traits")
    for col in ("trait", "methods", "convergent", "discriminant", "gap", "n"):
        mtmm.add_column(col)
    for row in result.mtmm.iter_rows(named=True):
        mtmm.add_row(escape(row["trait"]), escape(row["methods"]), _fmt(row["convergent"]),
                     _fmt(row["discriminant"]), _fmt(row["gap"]), str(row["n"]))
    console.print(mtmm)
