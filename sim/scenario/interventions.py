"""A file of interventions, loaded and checked against the scenario of a run.

The file holds one mapping with one key, ``interventions:``, a list in the syntax of a
scenario's own ``interventions:`` (:mod:`sim.scenario.intervention_spec`)::

    interventions:
      - id: quota
        at: {round: 5}
        announce: From now on each fisher may catch at most 5 tonnes.

Its mistakes are reported like a scenario's: file, line, field, value and fix, every one at
once, in line order. Ids must differ from the scenario's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError

from sim.errors import ScenarioError, ScenarioErrors
from sim.scenario.fields import Strict
from sim.scenario.intervention_spec import InterventionSpec
from sim.scenario.loader import LoadedScenario
from sim.scenario.overrides import apply_overrides
from sim.scenario.pydantic_errors import from_pydantic
from sim.scenario.spec import ScenarioSpec
from sim.scenario.validate.interventions import intervention_problems
from sim.scenario.yaml_source import locate, read_mapping, read_text_file

__all__ = ["InterventionsFile", "load_interventions", "merge_interventions",
           "parse_interventions"]

_STARTER = "write interventions: [{id: ..., at: {round: N}, announce: ...}]"


class InterventionsFile(Strict):
    """The file's one key: its interventions, in order."""

    interventions: Annotated[list[InterventionSpec], Field(min_length=1, max_length=256)]


def load_interventions(path: str | Path, spec: ScenarioSpec, *,
                       require_trigger: bool = True) -> list[InterventionSpec]:
    """Read a file of interventions and check it against ``spec``.

    Args:
        path: the YAML file.
        spec: the scenario of the run they are for.
        require_trigger: refuse an intervention with neither ``at`` nor ``when``; a caller
            that applies them at once (:meth:`sim.engine.replica.Replica.intervene`) may
            pass ``False``.

    Raises:
        ScenarioError: every mistake, located at file:line:column.
    """
    path = Path(path)
    text = read_text_file(path, missing_fix="check the path of the interventions file.")
    return parse_interventions(text, spec, source=str(path), require_trigger=require_trigger)


def parse_interventions(text: str, spec: ScenarioSpec, *, source: str = "<interventions>",
                        require_trigger: bool = True) -> list[InterventionSpec]:
    """Parse and check interventions YAML text (see :func:`load_interventions`)."""
    root, data = read_mapping(text, source, what="the interventions file",
                              size_fix="an interventions file is small.", starter=_STARTER)
    try:
        items = InterventionsFile.model_validate(data).interventions
    except ValidationError as exc:
        raise ScenarioErrors.of(from_pydantic(exc, root, source, InterventionsFile)) from None
    problems: list[ScenarioError] = []
    for problem in intervention_problems(spec, items, taken=[i.id for i in spec.interventions],
                                         require_trigger=require_trigger):
        line, column = locate(root, problem.field.split(".") if problem.field else [])
        problems.append(problem.located(file=source, line=line, column=column))
    if problems:
        problems.sort(key=lambda e: (e.line or 0, e.column or 0))
        raise ScenarioErrors.of(problems)
    return items


def merge_interventions(loaded: LoadedScenario, items: Sequence[InterventionSpec], *,
                        source: str) -> LoadedScenario:
    """The scenario with ``items`` appended to its ``interventions:``, checked again.

    ``source``: the interventions file, named in errors as ``--intervene FILE``. The
    scenario's ``overrides`` are kept as they were (the items are not overrides).
    """
    raw = [*loaded.raw.get("interventions", []),
           *(i.model_dump(mode="json", by_alias=True, exclude_defaults=True) for i in items)]
    merged = apply_overrides(loaded, {"interventions": raw}, flag=f"--intervene {source}")
    return LoadedScenario(spec=merged.spec, path=loaded.path, raw=merged.raw,
                          overrides=dict(loaded.overrides))
