"""Dotted paths into a scenario: check one against the scenario format, set values by them.

``population.personality.mean.agreeableness`` names a field; list entries are indexed
(``stages.1.decision``) and must exist in the base scenario; a stage's fields are those of its
kind in the base scenario; network generator parameters are free.
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Annotated, Any

import yaml
from pydantic import BaseModel

from sim.errors import ScenarioError
from sim.scenario.spec import ChoiceStage, DialogueStage, ScenarioSpec
from sim.scenario.validate import did_you_mean
from sim.scenario.yaml_source import locate as _locate

__all__ = ["apply_overrides", "check_path"]

_STAGE_KINDS: dict[str, type[BaseModel]] = {"choice": ChoiceStage, "dialogue": DialogueStage}

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


def check_path(dotted: str, raw: dict[str, Any], root: yaml.Node, source: str,
                where: list[str]) -> None:
    """Refuse a dotted path that names no field of the scenario format.

    Raises:
        ScenarioError: at the path's key in the sweep file.
    """
    line, column = _locate(root, where, key=True)

    def fail(message: str, fix: str) -> ScenarioError:
        return ScenarioError(message, file=source, line=line, column=column, field=dotted,
                             value=dotted, fix=fix)

    parts = dotted.split(".")
    if not all(parts):
        raise fail(f"'{dotted}' is not a dotted path.",
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
                    return
                allowed = [f.alias or n for n, f in annotation.model_fields.items()]
                raise fail(f"unknown field '{part}' in {done}.",
                           f"{did_you_mean(part, allowed)}fields of {done}: "
                           f"{', '.join(allowed)}.")
            annotation = fields[part].annotation
            data = data.get(part) if isinstance(data, dict) else None
        elif origin is list:
            if not (part.isascii() and part.isdigit()):  # '١' is a digit to str.isdigit
                raise fail(f"{done} is a list; '{part}' is not an index.",
                           f"use a position such as {done}.0.")
            size = len(data) if isinstance(data, list) else 0
            if int(part) >= size:
                raise fail(f"{done} has {size} entries in the base scenario; index {part} is "
                           "out of range.", f"use an index below {size}.")
            data = data[int(part)]
            annotation = typing.get_args(annotation)[0]
            stripped = _strip(annotation)
            if typing.get_origin(stripped) in (typing.Union, types.UnionType):
                kind = data.get("kind") if isinstance(data, dict) else None
                annotation = _STAGE_KINDS.get(str(kind), ChoiceStage)
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
            data = data.get(part) if isinstance(data, dict) else None
        else:
            raise fail(f"{done} is a single value; it has no field '{part}'.",
                       f"vary {done} itself.")


def apply_overrides(raw: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of scenario data with each dotted path set (missing mappings created)."""
    data = copy.deepcopy(raw)
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
