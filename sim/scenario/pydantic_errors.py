"""Pydantic validation errors in a researcher's words, each located at its YAML line.

Every error of a :class:`~pydantic.ValidationError` becomes a
:class:`~sim.errors.ScenarioError` naming the file, line, field, bad value and fix; unknown
keys get "did you mean" and the keys allowed there.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sim.errors import ScenarioError
from sim.scenario.spec import ScenarioSpec
from sim.scenario.stages import STAGE_KINDS
from sim.scenario.validate import did_you_mean
from sim.scenario.yaml_source import locate

__all__ = ["fix_for", "from_pydantic", "message_for", "short", "yaml_path"]

_MAPPING_KINDS = ("model_type", "model_attributes_type", "dict_type")
# Labels pydantic puts in an error's location for the member of a union it tried
# ('constrained-float', 'function-after[...]', 'list[str]'): no YAML key is spelt so.
# Keys may hold '-', so only pydantic's own prefixes are matched.
_MEMBER_LABEL = re.compile(r"(constrained|function|tagged|lax|json|nullable|definition)-[a-z-]+"
                           r"(\[.*\])?|[a-z-]+\[.*\]")


def yaml_path(loc: tuple[Any, ...] | list[Any]) -> list[str]:
    """An error location as the YAML keys a researcher wrote (no tags, no union labels)."""
    return [str(p) for p in loc
            if str(p) not in STAGE_KINDS and not _MEMBER_LABEL.fullmatch(str(p))]


def _allowed_keys(path: list[str], root_model: type[BaseModel]) -> list[str]:
    """Field names (by alias) of the model at ``path`` under ``root_model`` (did you mean)."""
    model: Any = root_model
    for part in path:
        if part in STAGE_KINDS:
            model = STAGE_KINDS[part]
            continue
        if part.isdigit() or model is None:
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return []
        model = _model_in(field.annotation)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside an annotation such as ``list[X] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def from_pydantic(exc: ValidationError, root: yaml.Node, source: str,
                  model: type[BaseModel] = ScenarioSpec) -> list[ScenarioError]:
    """One located error per YAML node that pydantic refused, in line order.

    ``model`` is the one the file was validated as (its keys are the ones suggested).

    Pydantic may refuse one node several times (once per member of a union); only the first
    is kept, an unknown key before anything else.
    """
    found: dict[tuple[int | None, int | None], ScenarioError] = {}
    for err in sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden"):
        error = _one(dict(err), root, source, model)
        found.setdefault((error.line, error.column), error)
    return sorted(found.values(), key=lambda e: (e.line or 0, e.column or 0))


def _one(err: dict[str, Any], root: yaml.Node, source: str,
         model: type[BaseModel]) -> ScenarioError:
    loc = [str(p) for p in err["loc"] if not _MEMBER_LABEL.fullmatch(str(p))]
    field = ".".join(yaml_path(loc))
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        name = loc[-1]
        allowed = _allowed_keys(loc[:-1], model)
        line, column = locate(root, loc, key=True)
        return ScenarioError(
            f"unknown key '{name}'.", file=source, line=line, column=column, field=field,
            value=name, fix=f"{did_you_mean(name, allowed)}allowed keys here: "
                            f"{', '.join(allowed)}.")
    line, column = locate(root, loc)
    if kind == "missing":
        return ScenarioError(f"required key '{loc[-1]}' is missing.", file=source, line=line,
                             column=column, field=field,
                             fix=f"add '{loc[-1]}:' here (see `traitlab schema`).")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = err.get("ctx", {}).get("tag")
        kinds = list(STAGE_KINDS)
        if kind == "union_tag_not_found":
            return ScenarioError("this stage has no 'kind'.", file=source, line=line,
                                 column=column, field=f"{field}.kind",
                                 fix=f"add 'kind: {kinds[0]}' or 'kind: {kinds[1]}'.")
        line, column = locate(root, [*loc, "kind"])
        return ScenarioError(
            f"unknown stage kind {short(tag)}.", file=source, line=line, column=column,
            field=f"{field}.kind", value=tag,
            fix=f"{did_you_mean(str(tag), kinds)}use one of: {', '.join(kinds)}.")
    shown = short(value)
    return ScenarioError(f"{message_for(kind, err)}, got {shown}.", file=source, line=line,
                         column=column, field=field, value=value, fix=fix_for(kind, err))


def message_for(kind: str, err: dict[str, Any]) -> str:
    """Pydantic's message in a researcher's words (no regexes, no parser internals)."""
    if kind == "string_pattern_mismatch" and "EI" in str(err.get("ctx", {}).get("pattern")):
        return "not a four-letter MBTI type"
    if kind == "string_pattern_mismatch":
        return "not a valid identifier"
    if kind in _MAPPING_KINDS:
        return "should be a mapping of keys to values"
    if kind == "invalid_key":
        return "keys should be text"
    message = err["msg"].rstrip(".").replace(" after validation", "")
    if kind.endswith(("_type", "_parsing")) or kind == "int_from_float":
        message = message.split(", ")[0]  # drop "unable to parse string as an integer"
    for subject in ("Input ", "String ", "List ", "Value "):
        message = message.removeprefix(subject)
    return message


def fix_for(kind: str, err: dict[str, Any]) -> str:
    """One sentence saying how to fix a pydantic error of type ``kind``."""
    ctx = err.get("ctx", {})
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected")))
        return f"{did_you_mean(str(err.get('input')), expected)}use one of {ctx.get('expected')}."
    if kind == "string_pattern_mismatch" and "EI" in str(ctx.get("pattern")):
        return "use a four-letter MBTI type such as INTJ or ESFP."
    if kind == "string_pattern_mismatch":
        return "use letters, digits, '-', '_' or '.', starting with a letter or digit."
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return "use a value " + err["msg"].lower().replace("input should be ", "") + "."
    if kind in _MAPPING_KINDS:
        return "write 'key: value' lines here (see `traitlab schema`)."
    if kind == "invalid_key":
        return "write the key as a name, or quote it."
    if kind == "int_from_float":
        return "write a whole number."
    if kind == "finite_number":
        return "write a finite number (not .inf or .nan)."
    if kind in ("too_short", "too_long"):
        return err["msg"].replace("List", "the list").replace(" after validation", "") \
            .rstrip(".") + "."
    if "type" in kind or kind.endswith("_parsing"):
        return err["msg"].split(", ")[0].replace("Input should be", "write").rstrip(".") + "."
    return "see `traitlab schema` for the allowed values."


def short(value: Any) -> str:
    """``repr(value)``, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
