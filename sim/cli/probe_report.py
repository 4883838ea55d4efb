"""The probe's table: per method and trait, does the measured trait follow the assigned one?

Columns per (method, trait): ``rho`` (Spearman, assigned vs measured domain score from
expected values), ``d`` (Cohen's d, personas above vs below 0.5), ``alpha`` (Cronbach, over
personas, items averaged over option orders), ``oos`` (option-order symmetry: share of items
whose argmax is the same under ascending and descending options), ``shift`` (mean expected
answer, descending minus ascending: positive = the first-listed option pulls), ``base`` (the
persona-free baseline's domain score), ``strength`` (steering strength used) and the
calibration status. A second block puts prompting and steering side by side per trait
(matched strength).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analysis.psychometrics import (
    acquiescence_index,
    domain_scores,
    manipulation_check,
    option_order_symmetry,
)
from analysis.reliability import alpha_from_matrix, item_matrix

__all__ = ["load_probe", "print_probe_table", "probe_table"]


def load_probe(path: Path) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Read a probe run directory: survey rows, assigned traits, manifest."""
    path = Path(path)
    return (pl.read_parquet(path / "survey.parquet"), pl.read_parquet(path / "assigned.parquet"),
            json.loads((path / "manifest.json").read_text()))


def probe_table(rows: pl.DataFrame, assigned: pl.DataFrame, manifest: dict[str, Any]
                ) -> pl.DataFrame:
    """Compute the per (method, trait) table described in the module docstring."""
    scores = domain_scores(rows, by=("run_id", "replica", "agent", "instrument", "method"))
    base = scores.filter(pl.col("method") == "baseline")
    base_of = dict(zip(base["trait"].to_list(), base["score"].to_list(), strict=True))
    strengths = manifest.get("strengths") or {}
    status = ((manifest.get("calibration") or {}).get("status")) or {}
    out = []
    methods = [m for m in dict.fromkeys(rows["method"].to_list()) if m != "baseline"]
    for method in methods:
        part = rows.filter(pl.col("method") == method)
        mc = manipulation_check(scores.filter(pl.col("method") == method),
                                assigned.filter(pl.col("method") == method))
        sym = option_order_symmetry(part, by=("trait",))
        acq = acquiescence_index(part, per_trait=True).group_by("trait").agg(
            pl.col("acquiescence").mean())
        for trait in sorted(part["trait"].unique().to_list()):
            m = mc.filter(pl.col("trait") == trait)
            s = sym.filter(pl.col("trait") == trait)
            a = acq.filter(pl.col("trait") == trait)
            matrix, _items = item_matrix(part.filter(pl.col("trait") == trait))
            steered = method in ("steering", "both")
            out.append({
                "method": method, "trait": trait,
                "rho": _first(m, "spearman_rho"), "p": _first(m, "p_value"),
                "d": _first(m, "cohens_d"), "alpha": alpha_from_matrix(matrix),
                "oos": _first(s, "agreement"), "shift": _first(s, "mean_shift"),
                "acq": _first(a, "acquiescence"), "base": base_of.get(trait, float("nan")),
                "mean": float(scores.filter((pl.col("method") == method)
                                            & (pl.col("trait") == trait))["score"].mean()),
                "strength": strengths.get(trait) if steered else None,
                "calibration": status.get(trait) if steered else None,
                "n": int(_first(m, "n") or 0),
            })
    return pl.DataFrame(out, infer_schema_length=None)


def _first(df: pl.DataFrame, col: str) -> Any:
    return df[col][0] if df.height and col in df.columns else float("nan")


def _fmt(value: Any, spec: str = "+.2f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not np.isfinite(value):
        return "nan"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def print_probe_table(table: pl.DataFrame, manifest: dict[str, Any],
                      echo: Any = print) -> None:
    """Print the table and the matched-strength comparison."""
    head = (f"{'method':9} {'trait':18} {'rho':>6} {'d':>6} {'alpha':>6} {'oos':>5} "
            f"{'shift':>6} {'acq':>6} {'mean':>5} {'base':>5} {'strength':>8} calibration")
    echo(head)
    echo("-" * len(head))
    for r in table.iter_rows(named=True):
        echo(f"{r['method']:9} {r['trait']:18} {_fmt(r['rho']):>6} {_fmt(r['d']):>6} "
             f"{_fmt(r['alpha'], '.2f'):>6} {_fmt(r['oos'], '.2f'):>5} {_fmt(r['shift']):>6} "
             f"{_fmt(r['acq']):>6} {_fmt(r['mean'], '.2f'):>5} {_fmt(r['base'], '.2f'):>5} "
             f"{_fmt(r['strength'], '.2f'):>8} {r['calibration'] or '-'}")
    methods = set(table["method"].to_list())
    if {"prompt", "steering"} <= methods:
        echo("")
        echo("steering vs prompting at matched strength (rho / d per trait):")
        cal = manifest.get("calibration") or {}
        for trait in sorted(set(table["trait"].to_list())):
            cells = []
            for method in ("prompt", "steering", "both"):
                sel = table.filter((pl.col("method") == method) & (pl.col("trait") == trait))
                if sel.height:
                    cells.append(f"{method} {_fmt(sel['rho'][0])} / {_fmt(sel['d'][0])}")
            shift = (cal.get("prompt_shift") or {}).get(trait)
            echo(f"  {trait:18} " + "   ".join(cells)
                 + (f"   (held-apart prompted shift {_fmt(shift)})" if shift is not None
                    else ""))


def summarise(path: Path, echo: Any = print, methods: Sequence[str] | None = None) -> pl.DataFrame:
    """Load a probe directory, print its table, write ``summary.csv`` beside it."""
    rows, assigned, manifest = load_probe(path)
    if methods:
        rows = rows.filter(pl.col("method").is_in([*methods, "baseline"]))
    table = probe_table(rows, assigned, manifest)
    table.write_csv(Path(path) / "summary.csv")
    print_probe_table(table, manifest, echo)
    return table
