"""YAML -> :class:`~sim.spec.ScenarioSpec`, with errors that point at file:line:column.

YAML is read with PyYAML's safe loader (no object construction), within a size bound and an
alias-expansion bound. Validation errors from pydantic and from :mod:`sim.checks` are mapped
back to the YAML node they concern, so every message names the file, the line, the field, the
bad value and the fix.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sim.checks import check_scenario, did_you_mean
from sim.errors import ScenarioError
from sim.spec import ChoiceStage, DialogueStage, ScenarioSpec

__all__ = ["MAX_FILE_BYTES", "MAX_NODES", "LoadedScenario", "load_scenario", "parse_scenario",
           "spec_hash"]

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 200_000
_STAGE_KINDS: dict[str, type[BaseModel]] = {"choice": ChoiceStage, "dialogue": DialogueStage}
_STARTER = "start from scenarios/prisoners_dilemma.yaml"


@dataclass(frozen=True, slots=True)
class LoadedScenario:
    """A validated scenario with where it came from and its raw data (for sweeps)."""

    spec: ScenarioSpec
    path: str
    raw: dict[str, Any]


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
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(
                f"the file is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,}.",
                file=str(path), fix="split it or remove embedded data; scenarios are small.")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("no such file.", file=str(path),
                            fix="check the path; scenarios live in scenarios/.") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text ({exc.reason}).", file=str(path),
                            fix="save the file as UTF-8.") from None
    return parse_scenario(text, source=str(path))


def parse_scenario(text: str, *, source: str = "<scenario>") -> LoadedScenario:
    """Parse and validate scenario YAML text (see :func:`load_scenario`)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ScenarioError(f"the scenario is over the limit of {MAX_FILE_BYTES:,} bytes.",
                            file=source, fix="scenarios are small; remove embedded data.")
    root = _compose(text, source)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ScenarioError(f"the top level must be a mapping, got {type(data).__name__}.",
                            file=source, line=1, fix=_STARTER + ".")
    try:
        spec = ScenarioSpec.model_validate(data)
        check_scenario(spec)
    except ValidationError as exc:
        raise _from_pydantic(exc, root, source) from None
    except ScenarioError as exc:
        line, column = _locate(root, exc.field.split(".") if exc.field else [])
        raise exc.located(file=source, line=line, column=column) from None
    return LoadedScenario(spec=spec, path=source, raw=data)


def _compose(text: str, source: str) -> yaml.Node:
    if not text.strip():
        raise ScenarioError("the file is empty.", file=source, line=1, fix=_STARTER + ".")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or "invalid YAML").rstrip(".")
        raise ScenarioError(
            f"malformed YAML: {problem}.", file=source,
            line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None,
            fix="check indentation, colons and quotes on this line.") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"malformed YAML: {exc}.", file=source,
                            fix="check the file's syntax.") from None
    if root is None:
        raise ScenarioError("the file is empty.", file=source, line=1, fix=_STARTER + ".")
    _check_size(root, source)
    return root


def _check_size(root: yaml.Node, source: str) -> None:
    """Refuse documents whose alias expansion would exceed :data:`MAX_NODES` nodes."""
    memo: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        memo[key] = 1  # a recursive alias counts once instead of looping
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
            keys = [k.value for k, _v in node.value if isinstance(k, yaml.ScalarNode)]
            dup = next((k for k in keys if keys.count(k) > 1), None)
            if dup is not None:
                raise ScenarioError(f"key '{dup}' appears twice in one mapping.", file=source,
                                    line=node.start_mark.line + 1, field=dup,
                                    fix="remove one of the two.")
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in node.value)
        else:
            total = 1
        memo[key] = min(total, MAX_NODES + 1)
        if memo[key] > MAX_NODES:
            raise ScenarioError(
                f"the document expands to more than {MAX_NODES:,} nodes (YAML aliases).",
                file=source, line=node.start_mark.line + 1,
                fix="write the data out instead of nesting aliases.")
        return memo[key]

    size(root)


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    if isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
        return node.value[int(key)]
    return None


def _key_node(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, _v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k
    return None


def _locate(root: yaml.Node, path: list[str], *, key: bool = False) -> tuple[int, int]:
    """Line and column of the node at ``path`` (its key when ``key``), or its nearest parent."""
    node = root
    for i, part in enumerate(path):
        if part in _STAGE_KINDS and _child(node, part) is None:
            continue  # pydantic's discriminator tag, not a YAML key
        if i == len(path) - 1 and key and (k := _key_node(node, part)) is not None:
            node = k
            break
        child = _child(node, part)
        if child is None:
            break
        node = child
    return node.start_mark.line + 1, node.start_mark.column + 1


def _allowed_keys(path: list[str]) -> list[str]:
    """Field names (by alias) of the model at ``path``, for 'did you mean'."""
    model: Any = ScenarioSpec
    for part in path:
        if part in _STAGE_KINDS:
            model = _STAGE_KINDS[part]
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


def _from_pydantic(exc: ValidationError, root: yaml.Node, source: str) -> ScenarioError:
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = [str(p) for p in err["loc"]]
    field = ".".join(p for p in loc if p not in _STAGE_KINDS)
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        name = loc[-1]
        allowed = _allowed_keys(loc[:-1])
        line, column = _locate(root, loc, key=True)
        return ScenarioError(
            f"unknown key '{name}'.", file=source, line=line, column=column, field=field,
            value=name, fix=f"{did_you_mean(name, allowed)}allowed keys here: "
                            f"{', '.join(allowed)}.")
    line, column = _locate(root, loc)
    if kind == "missing":
        return ScenarioError(f"required key '{loc[-1]}' is missing.", file=source, line=line,
                             column=column, field=field,
                             fix=f"add '{loc[-1]}:' here (see `traitlab schema`).")
    if kind == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag")
        kinds = list(_STAGE_KINDS)
        return ScenarioError(
            f"unknown stage kind '{tag}'.", file=source, line=line, column=column,
            field=f"{field}.kind", value=tag,
            fix=f"{did_you_mean(str(tag), kinds)}use one of: {', '.join(kinds)}.")
    message = err["msg"].rstrip(".")
    shown = _short(value)
    return ScenarioError(f"{message}, got {shown}.", file=source, line=line, column=column,
                         field=field, value=value, fix=_fix_for(kind, err))


def _fix_for(kind: str, err: dict[str, Any]) -> str:
    ctx = err.get("ctx", {})
    if kind == "literal_error":
        return f"use one of {ctx.get('expected')}."
    if kind == "string_pattern_mismatch" and "EI" in str(ctx.get("pattern")):
        return "use a four-letter MBTI type such as INTJ or ESFP."
    if kind == "string_pattern_mismatch":
        return "use letters, digits, '-', '_' or '.', starting with a letter or digit."
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return "use a value " + err["msg"].lower().replace("input should be ", "") + "."
    if kind in ("too_short", "too_long"):
        return err["msg"].replace("List", "the list").rstrip(".") + "."
    if "type" in kind or kind.endswith("_parsing"):
        return err["msg"].replace("Input should be", "write").rstrip(".") + "."
    return "see `traitlab schema` for the allowed values."


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
