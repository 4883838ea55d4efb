"""YAML -> :class:`~sim.scenario.spec.ScenarioSpec`, with errors that point at file:line:column.

YAML is read safely and within bounds by :mod:`sim.scenario.yaml_source`. Validation errors
from pydantic (:mod:`sim.scenario.pydantic_errors`) and from :mod:`sim.scenario.validate` are
mapped back to the YAML node they concern, so every message names the file, the line, the
field, the bad value and the fix. Every problem of a file is reported at once, in line order:
all pydantic errors when the file's structure is wrong (types, ranges, unknown or missing
keys), else every cross-field problem (those need a structurally valid scenario to check).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.errors import ScenarioError, ScenarioErrors
from sim.scenario.pydantic_errors import from_pydantic
from sim.scenario.spec import ScenarioSpec
from sim.scenario.validate import scenario_problems
from sim.scenario.yaml_source import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    STARTER,
    locate,
    read_mapping,
    read_text_file,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "LoadedScenario",
    "load_scenario",
    "locate_error",
    "parse_scenario",
    "read_mapping",
    "spec_hash",
]


@dataclass(frozen=True, slots=True)
class LoadedScenario:
    """A validated scenario with where it came from and its raw data (for sweeps).

    ``overrides``: the dotted paths set on top of the file (``traitlab run --set``), with
    their values; empty for a scenario as written.
    """

    spec: ScenarioSpec
    path: str
    raw: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)


def spec_hash(spec: ScenarioSpec) -> str:
    """Stable short hash of a resolved spec (sha256 of its canonical JSON)."""
    data = json.dumps(spec.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read, parse and validate a scenario file.

    Raises:
        ScenarioError: for anything wrong with the file, located at file:line:column.
    """
    path = Path(path)
    text = read_text_file(path, missing_fix="check the path; scenarios live in scenarios/.")
    return parse_scenario(text, source=str(path))


def parse_scenario(text: str, *, source: str = "<scenario>") -> LoadedScenario:
    """Parse and validate scenario YAML text (see :func:`load_scenario`)."""
    try:
        return _parse(text, source)
    except ScenarioErrors as exc:
        raise ScenarioErrors([_printable_error(e) for e in exc.errors]) from None
    except ScenarioError as exc:
        if str(exc).isprintable():
            raise
        raise _printable_error(exc) from None


def _printable_error(exc: ScenarioError) -> ScenarioError:
    """The error with control characters escaped, as in Python.

    A key or value with a newline (or another control character) would break the one-line
    message.
    """
    if str(exc).isprintable():
        return exc
    return ScenarioError(_printable(exc.message) or "", file=exc.file, line=exc.line,
                         column=exc.column, field=_printable(exc.field), value=exc.value,
                         fix=_printable(exc.fix))


def _printable(text: str | None) -> str | None:
    if text is None:
        return None
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def _parse(text: str, source: str) -> LoadedScenario:
    root, data = read_mapping(text, source, what="the scenario",
                              size_fix="scenarios are small; remove embedded data.",
                              starter=STARTER)
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        raise ScenarioErrors.of(from_pydantic(exc, root, source)) from None
    problems = []
    for problem in scenario_problems(spec):
        line, column = locate(root, problem.field.split(".") if problem.field else [])
        problems.append(problem.located(file=source, line=line, column=column))
    if problems:
        problems.sort(key=lambda e: (e.line or 0, e.column or 0))
        raise ScenarioErrors.of(problems)
    return LoadedScenario(spec=spec, path=source, raw=data)


def locate_error(exc: ScenarioError, loaded: LoadedScenario) -> ScenarioError:
    """``exc`` located in the scenario's file, for a problem found only once a run starts.

    A seeded network's degrees are known when it is built, not when the file is checked.
    The file (read again) gives the field's line; one that cannot be read gives its name.
    """
    if exc.file is not None or not Path(loaded.path).is_file():
        return exc.located(file=loaded.path)
    try:
        root, _ = read_mapping(Path(loaded.path).read_text(encoding="utf-8"), loaded.path,
                               what="the scenario", size_fix="", starter=STARTER)
    except (OSError, ScenarioError, UnicodeDecodeError):
        return exc.located(file=loaded.path)
    line, column = locate(root, exc.field.split(".") if exc.field else [])
    return exc.located(file=loaded.path, line=line, column=column)
