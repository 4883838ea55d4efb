"""Dotted-path overrides of a scenario: check a path against the format, set values by it.

``population.personality.mean.agreeableness`` names a field; list entries are indexed
(``stages.1.decision``) and must exist in the scenario; a stage's fields are those of its
kind in the scenario; network generator parameters are free. Sweeps vary scenarios by these
paths, and ``traitlab run --set PATH=VALUE`` (:func:`apply_overrides`) sets them for one run.

Example:
    >>> from sim.scenario.loader import load_scenario
    >>> loaded = apply_overrides(load_scenario("scenarios/prisoners_dilemma.yaml"),
    ...                          ["rounds=3", "population.size=8"])
    >>> loaded.spec.rounds, loaded.overrides
    (3, {'rounds': 3, 'population.size': 8})
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from sim.errors import ScenarioError, ScenarioErrors
from sim.scenario.loader import LoadedScenario
from sim.scenario.pydantic_errors import fix_for, message_for, short, yaml_path
from sim.scenario.spec import ChoiceStage, ScenarioSpec
from sim.scenario.stages import STAGE_KINDS
from sim.scenario.validate import did_you_mean, scenario_problems
from sim.scenario.yaml_source import read_value

__all__ = ["MAX_VALUE_CHARS", "apply_overrides", "culprit", "parse_assignment", "path_problem",
           "set_paths"]

MAX_VALUE_CHARS = 10_000
"""Longest value one ``--set`` may carry (a prompt fits; a file does not belong here)."""


def _strip(annotation: Any) -> Any:
    """``Annotated[X, ...]`` -> X; ``X | None`` -> X (unions of models stay unions)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def path_problem(dotted: str, raw: Mapping[str, Any], *, scenario: str = "the scenario",
                 verb: str = "set") -> tuple[str, str] | None:
    """Why a dotted path names no field of the scenario format, as ``(message, fix)``.

    ``None`` when the path is fine. ``raw`` is the scenario's data: list indices must exist
    in it and a stage's fields are those of its ``kind``. ``scenario`` and ``verb`` word the
    message (a sweep varies its "base scenario").
    """
    parts = dotted.split(".")
    if not all(parts):
        return (f"'{dotted}' is not a dotted path.",
                "write field names separated by single dots, e.g. population.size.")
    annotation: Any = ScenarioSpec
    data: Any = raw
    for i, part in enumerate(parts):
        done = ".".join(parts[:i]) or "the scenario"
        annotation = _strip(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {(f.alias or name): f for name, f in annotation.model_fields.items()}
            fields.update(annotation.model_fields)
            if part not in fields:
                if annotation.model_config.get("extra") == "allow":  # network parameters
                    return None
                allowed = [f.alias or n for n, f in annotation.model_fields.items()]
                return (f"unknown field '{part}' in {done}.",
                        f"{did_you_mean(part, allowed)}fields of {done}: {', '.join(allowed)}.")
            annotation = fields[part].annotation
            data = data.get(part) if isinstance(data, Mapping) else None
        elif origin is list:
            if not (part.isascii() and part.isdigit()):  # '١' is a digit to str.isdigit
                return (f"{done} is a list; '{part}' is not an index.",
                        f"use a position such as {done}.0.")
            size = len(data) if isinstance(data, list) else 0
            if int(part) >= size:
                return (f"{done} has {size} entries in {scenario}; index {part} is out of "
                        "range.", f"use an index below {size}.")
            data = data[int(part)]
            annotation = typing.get_args(annotation)[0]
            if typing.get_origin(_strip(annotation)) in (typing.Union, types.UnionType):
                kind = data.get("kind") if isinstance(data, Mapping) else None
                annotation = STAGE_KINDS.get(str(kind), ChoiceStage)
        elif origin is dict:
            declared = list(data) if isinstance(data, Mapping) else []
            if parts[0] == "params" and i == 1 and part not in declared:
                # no formula can read a param the file does not declare: a typo changes nothing
                return (f"{scenario} declares no param '{part}'.",
                        f"{did_you_mean(part, declared)}params of {scenario}: "
                        f"{', '.join(declared) or 'none'}; declare a new one in the file.")
            annotation = typing.get_args(annotation)[1]
            data = data.get(part) if isinstance(data, Mapping) else None
        else:
            return (f"{done} is a single value; it has no field '{part}'.",
                    f"{verb} {done} itself.")
    return None


def set_paths(raw: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of scenario data with each dotted path set (missing mappings created)."""
    data = copy.deepcopy(dict(raw))
    for dotted, value in params.items():
        parts = dotted.split(".")
        node: Any = data
        for part in parts[:-1]:
            if isinstance(node, list):
                node = node[int(part)]
                continue
            if not isinstance(node.get(part), (dict, list)):
                node[part] = {}
            node = node[part]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = copy.deepcopy(value)
        else:
            node[last] = copy.deepcopy(value)
    return data


def culprit(bad: str, params: Mapping[str, Any]) -> str | None:
    """The overridden path an error at ``bad`` concerns: equal, a prefix of it, or under it."""
    best = None
    for dotted in params:
        related = (bad == dotted or bad.startswith(dotted + ".") or dotted.startswith(bad + ".")
                   or (bad and bad.rsplit(".", 1)[0] == dotted.rsplit(".", 1)[0]))
        if related and (best is None or len(dotted) > len(best)):
            best = dotted
    return best or (next(iter(params)) if params else None)


def parse_assignment(text: str, *, flag: str = "--set") -> tuple[str, Any]:
    """``PATH=VALUE`` as ``(path, value)``; the value is read as YAML (``3``, ``[a, b]``).

    Raises:
        ScenarioError: naming ``flag`` and the assignment when it is malformed.
    """
    path, sep, value = text.partition("=")
    path = path.strip()
    where = f"{flag} {text}"
    if not sep or not path:
        raise ScenarioError("expected PATH=VALUE.", file=where, value=text,
                            fix="write a dotted path, '=' and a value, e.g. --set rounds=3.")
    if not value.strip():
        raise ScenarioError(f"no value after '{path}='.", file=where, field=path,
                            fix=f"write a value, e.g. {path}=3; quote text: {path}='...'.")
    if len(value) > MAX_VALUE_CHARS:
        raise ScenarioError(f"the value is over {MAX_VALUE_CHARS:,} characters.", file=where,
                            field=path, fix="edit a copy of the scenario file instead.")
    try:
        return path, read_value(value, where)
    except ScenarioError as exc:  # drop the line and column: the value is on the command line
        raise ScenarioError(exc.message, file=where, field=path, value=value,
                            fix=exc.fix) from None


def apply_overrides(scenario: LoadedScenario | ScenarioSpec | Mapping[str, Any],
                    assignments: Sequence[str] | Mapping[str, Any], *,
                    flag: str = "--set") -> LoadedScenario:
    """The scenario with each dotted path set, checked like a sweep cell.

    Args:
        scenario: a loaded scenario, a spec, or scenario data.
        assignments: ``["rounds=3", "population.size=8"]`` (values read as YAML) or a
            mapping of dotted paths to values.
        flag: how errors name the source of an override.

    Returns:
        A loaded scenario (same ``path``) whose ``raw`` holds the new values and whose
        ``overrides`` maps each path to its value, for the run's manifest.

    Raises:
        ScenarioError: a malformed assignment, a path that names no field, or a value the
            scenario refuses; each names the flag, the path, the value and a fix.
    """
    if isinstance(scenario, LoadedScenario):
        raw, path = scenario.raw, scenario.path
    elif isinstance(scenario, ScenarioSpec):
        raw, path = scenario.model_dump(mode="json", by_alias=True, exclude_defaults=True), \
            "<spec>"
    else:
        raw, path = dict(scenario), "<scenario>"
    pairs = (list(assignments.items()) if isinstance(assignments, Mapping)
             else [parse_assignment(a, flag=flag) for a in assignments])
    params = dict(pairs)
    for dotted, value in pairs:
        problem = path_problem(dotted, raw)
        if problem is not None:
            raise ScenarioError(problem[0], file=f"{flag} {dotted}={_shown(value)}",
                                field=dotted, value=value, fix=problem[1])
    data = set_paths(raw, params)
    spec = _validated(data, params, flag)
    return LoadedScenario(spec=spec, path=path, raw=data, overrides=params)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else short(value)


def _validated(data: dict[str, Any], params: dict[str, Any], flag: str) -> ScenarioSpec:
    """The spec of overridden data; its errors point at the override that caused them."""
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = yaml_path(err["loc"])
        kind = err["type"]
        if kind in ("missing", "extra_forbidden"):
            message = (f"required key '{loc[-1]}' is missing" if kind == "missing"
                       else f"unknown key '{loc[-1]}'")
            fix = f"also set the other fields of {'.'.join(loc[:-1])} with {flag}."
        else:
            message = f"{message_for(kind, err)}, got {short(err.get('input'))}"
            fix = fix_for(kind, err)
        raise _blame(message, fix, ".".join(loc), params, flag) from None
    problems = scenario_problems(spec)
    if problems:
        raise ScenarioErrors.of([_blame(p.message.rstrip("."), p.fix or "", p.field or "",
                                        params, flag) for p in problems])
    return spec


def _blame(message: str, fix: str, bad: str, params: dict[str, Any], flag: str
           ) -> ScenarioError:
    dotted = culprit(bad, params) or ""
    value = params.get(dotted)
    text = (f"{message}." if bad == dotted else
            f"with {dotted} = {short(value)} the scenario is invalid at "
            f"{bad or 'the top level'}: {message}.")
    return ScenarioError(text, file=f"{flag} {dotted}={_shown(value)}", field=dotted or None,
                         value=value,
                         fix=fix or "use a value the scenario accepts (see `traitlab schema`).")
