"""Bounds of a sweep file, checked before anything expands or runs.

Where its base scenario may live, and how many cells it may have (see the docstring of
:mod:`sim.sweep.spec`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from sim.errors import ScenarioError
from sim.scenario.yaml_source import locate as _locate

if TYPE_CHECKING:
    from sim.sweep.spec import SweepSpec

__all__ = ["MAX_CELLS", "check_cell_count", "check_inside"]

MAX_CELLS = 10_000
"""Most cells of one sweep: every cell is expanded, validated and listed in the sweep's
manifest before anything runs."""


def check_inside(base_path: Path, path: Path, written: str, root: yaml.Node,
                  source: str) -> None:
    """Refuse a base scenario outside the sweep file's folder (see the module docstring)."""
    folder = path.resolve().parent
    if base_path.resolve().is_relative_to(folder):
        return
    line, column = _locate(root, ["scenario"])
    raise ScenarioError(f"base scenario {written!r} is outside the sweep file's folder "
                        f"{folder}.", file=source, line=line, column=column, field="scenario",
                        value=written, fix="copy the scenario next to the sweep file and name "
                                           "it relative to it.")


def check_cell_count(spec: SweepSpec, root: yaml.Node, source: str) -> None:
    """Refuse more than :data:`MAX_CELLS` cells before expanding them."""
    count = len(spec.seeds)
    for block in spec.vary:
        if block.grid is not None:
            count *= math.prod(len(v) for v in block.grid.values())
        elif block.zip is not None:
            count *= min(len(v) for v in block.zip.values())
        elif block.random is not None:
            count *= block.random.n
    if count > MAX_CELLS:
        line, column = _locate(root, ["vary"] if spec.vary else ["seeds"])
        raise ScenarioError(f"the sweep has {count:,} cells, over the limit of {MAX_CELLS:,}.",
                            file=source, line=line, column=column,
                            field="vary" if spec.vary else "seeds", value=count,
                            fix="vary fewer values, or split the sweep (use random: n: N to "
                                "sample a large grid).")
