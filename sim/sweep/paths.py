"""Dotted paths of a sweep file, checked against its base scenario and located in the file.

The paths themselves (what they may name, how a value is set) are the scenario layer's
(:mod:`sim.scenario.overrides`), shared with ``traitlab run --set``.
"""

from __future__ import annotations

from typing import Any

import yaml

from sim.errors import ScenarioError
from sim.scenario.overrides import path_problem, set_paths
from sim.scenario.yaml_source import locate as _locate

__all__ = ["apply_overrides", "check_path"]

apply_overrides = set_paths
"""A deep copy of scenario data with each dotted path set (the sweep's name for it)."""


def check_path(dotted: str, raw: dict[str, Any], root: yaml.Node, source: str,
               where: list[str]) -> None:
    """Refuse a dotted path that names no field of the scenario format.

    Raises:
        ScenarioError: at the path's key in the sweep file.
    """
    problem = path_problem(dotted, raw, scenario="the base scenario", verb="vary")
    if problem is not None:
        line, column = _locate(root, where, key=True)
        raise ScenarioError(problem[0], file=source, line=line, column=column, field=dotted,
                            value=dotted, fix=problem[1])
