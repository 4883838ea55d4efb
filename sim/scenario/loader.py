"""YAML -> :class:`~sim.scenario.spec.ScenarioSpec`, with errors that point at file:line:column.

YAML is read with PyYAML's safe loader (no object construction), within a size bound and an
alias-expansion bound. Validation errors from pydantic and from
:mod:`sim.scenario.validate.core` are mapped back to the YAML node they concern, so every
message names the file, the line, the field, the bad value and the fix.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sim.errors import ScenarioError
from sim.scenario.spec import (
    BroadcastStage,
    ChoiceStage,
    DialogueStage,
    SanctionStage,
    ScenarioSpec,
    SurveyStage,
)
from sim.scenario.validate.core import check_scenario, did_you_mean

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "LoadedScenario",
    "load_scenario",
    "parse_scenario",
    "read_mapping",
    "spec_hash",
]

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 200_000
MAX_DEPTH = 100
_STR_TAG, _SEQ_TAG, _MAP_TAG, _MERGE_TAG = (f"tag:yaml.org,2002:{t}"
                                            for t in ("str", "seq", "map", "merge"))
_YAML_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null", "timestamp")}
_STAGE_KINDS: dict[str, type[BaseModel]] = {"choice": ChoiceStage, "dialogue": DialogueStage,
                                             "broadcast": BroadcastStage,
                                             "sanction": SanctionStage,
                                             "survey": SurveyStage}
_STARTER = "start from scenarios/prisoners_dilemma.yaml"
_MAPPING_KINDS = ("model_type", "model_attributes_type", "dict_type")


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
    try:
        return _parse(text, source)
    except ScenarioError as exc:
        if str(exc).isprintable():
            raise
        # a key or value with a newline (or other control character) would break the
        # one-line message: show it escaped, as in Python
        raise ScenarioError(_printable(exc.message), file=exc.file, line=exc.line,
                            column=exc.column, field=_printable(exc.field), value=exc.value,
                            fix=_printable(exc.fix)) from None


def _printable(text: str | None) -> str | None:
    if text is None:
        return None
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def read_mapping(text: str, source: str, *, what: str, size_fix: str,
                 starter: str) -> tuple[yaml.Node, dict[str, Any]]:
    """Parse a YAML file whose top level is a mapping, within the loader's limits.

    Args:
        text: the file's text.
        source: its name, for errors.
        what: what the file is ("the scenario"), for the size error.
        size_fix: the fix of an over-size file.
        starter: the fix of a top level that is no mapping ("start from ...").

    Returns:
        The composed node tree (for locating fields) and the constructed mapping.

    Raises:
        ScenarioError: over the size limit, bad YAML, or no mapping at the top level.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ScenarioError(f"{what} is over the limit of {MAX_FILE_BYTES:,} bytes.",
                            file=source, fix=size_fix)
    root = _compose(text, source)
    data = _construct(root, source)
    if not isinstance(data, dict):
        raise ScenarioError(f"the top level must be a mapping, got {type(data).__name__}.",
                            file=source, line=root.start_mark.line + 1, fix=starter + ".")
    return root, data


def _parse(text: str, source: str) -> LoadedScenario:
    root, data = read_mapping(text, source, what="the scenario",
                              size_fix="scenarios are small; remove embedded data.",
                              starter=_STARTER)
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
        root = yaml.compose(text, Loader=_DepthLimitedLoader)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    except _TooDeep as exc:
        raise _too_deep(source, exc.mark) from None
    if root is None:
        raise ScenarioError("the file is empty.", file=source, line=1, fix=_STARTER + ".")
    _check_size(root, source)
    return root


def _construct(root: yaml.Node, source: str) -> Any:
    """Python data of a checked document (safe constructors only: no objects, no code)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.YAMLError, source: str) -> ScenarioError:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return ScenarioError(f"malformed YAML: {exc}.", file=source,
                             fix="check the file's syntax.")
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or "invalid YAML").rstrip(".")
    fix = "check indentation, colons, brackets and quotes on this line"
    context = exc.context_mark
    if exc.context and context is not None and mark is not None and context.line != mark.line:
        problem += f" ({exc.context} started at line {context.line + 1})"
        fix += f" and on line {context.line + 1}"
    return ScenarioError(
        f"malformed YAML: {problem}.", file=source,
        line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None,
        fix=fix + ".")


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        self.mark = mark


class _DepthLimitedLoader(yaml.SafeLoader):
    """The safe loader, refusing to nest deeper than :data:`MAX_DEPTH` while composing.

    The composer recurses once per level: a deep document would otherwise end in a slow
    RecursionError.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _too_deep(source: str, mark: yaml.Mark) -> ScenarioError:
    return ScenarioError(
        f"the document is nested more than {MAX_DEPTH} levels deep.", file=source,
        line=mark.line + 1, column=mark.column + 1,
        fix="flatten the data; scenarios are a few levels deep.")


def _check_size(root: yaml.Node, source: str) -> None:
    """Refuse documents that alias-expand past :data:`MAX_NODES` nodes or nest too deeply.

    Also refused: a key twice in one mapping, an alias inside its own anchor, YAML tags.
    """
    memo: dict[int, int] = {}
    resolver = yaml.resolver.Resolver()

    def size(node: yaml.Node, path: tuple[str, ...]) -> int:
        key = id(node)
        if key in memo:
            if memo[key] < 0:
                raise ScenarioError(
                    "a YAML alias refers to the list or mapping that contains it.", file=source,
                    line=node.start_mark.line + 1, column=node.start_mark.column + 1,
                    field=".".join(path) or None,
                    fix="write the data out instead of using recursive aliases.")
            return memo[key]
        if len(path) > MAX_DEPTH:
            raise _too_deep(source, node.start_mark)
        _check_tag(node, resolver, source, ".".join(path))
        memo[key] = -1  # in progress: an alias back to it would loop
        if isinstance(node, yaml.MappingNode):
            total, seen = 1, set()
            for k, v in node.value:
                name = k.value if isinstance(k, yaml.ScalarNode) else "?"
                if isinstance(k, yaml.ScalarNode) and name in seen:
                    raise ScenarioError(
                        f"key '{name}' appears twice in one mapping.", file=source,
                        line=k.start_mark.line + 1, column=k.start_mark.column + 1,
                        field=".".join((*path, name)), value=name,
                        fix="remove one of the two (or merge them).")
                seen.add(name)
                merge = k.tag == _MERGE_TAG  # '<<: *defaults' (allowed only as a key)
                total += (1 if merge else size(k, (*path, name))) + size(v, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v, (*path, str(i))) for i, v in enumerate(node.value))
        else:
            total = 1
        memo[key] = min(total, MAX_NODES + 1)
        if memo[key] > MAX_NODES:
            raise ScenarioError(
                f"the document expands to more than {MAX_NODES:,} nodes (YAML aliases).",
                file=source, line=node.start_mark.line + 1, column=node.start_mark.column + 1,
                field=".".join(path) or None,
                fix="write the data out instead of nesting aliases.")
        return memo[key]

    size(root, ())


def _check_tag(node: yaml.Node, resolver: yaml.resolver.Resolver, source: str,
               field: str) -> None:
    """Refuse explicit YAML tags (``!!python/...``, ``!!set``, ``!!int x``): plain data only."""
    tag, implicit = node.tag, None
    if isinstance(node, yaml.ScalarNode):
        plain = node.style is None
        implicit = resolver.resolve(yaml.ScalarNode, node.value, (plain, not plain))
        if tag == _STR_TAG or (tag == implicit and tag in _YAML_TAGS):
            return
    elif tag in (_SEQ_TAG, _MAP_TAG):
        return
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    if tag == implicit:  # an untagged special scalar such as '='
        raise ScenarioError(f"'{node.value}' cannot stand alone here.", file=source, line=line,
                            column=column, field=field or None, value=node.value,
                            fix=f"quote it: '{node.value}'.")
    shown = tag.replace("tag:yaml.org,2002:", "!!")
    raise ScenarioError(
        f"YAML tag '{shown}' is not allowed.", file=source, line=line, column=column,
        field=field or None, value=shown,
        fix="remove the tag; scenarios hold plain values (text, numbers, lists, mappings) "
            "and are loaded safely, never as Python objects.")


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
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = err.get("ctx", {}).get("tag")
        kinds = list(_STAGE_KINDS)
        if kind == "union_tag_not_found":
            return ScenarioError("this stage has no 'kind'.", file=source, line=line,
                                 column=column, field=f"{field}.kind",
                                 fix=f"add 'kind: {kinds[0]}' or 'kind: {kinds[1]}'.")
        line, column = _locate(root, [*loc, "kind"])
        return ScenarioError(
            f"unknown stage kind {_short(tag)}.", file=source, line=line, column=column,
            field=f"{field}.kind", value=tag,
            fix=f"{did_you_mean(str(tag), kinds)}use one of: {', '.join(kinds)}.")
    shown = _short(value)
    return ScenarioError(f"{_message_for(kind, err)}, got {shown}.", file=source, line=line,
                         column=column, field=field, value=value, fix=_fix_for(kind, err))


def _message_for(kind: str, err: dict[str, Any]) -> str:
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


def _fix_for(kind: str, err: dict[str, Any]) -> str:
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
    if kind in ("too_short", "too_long"):
        return err["msg"].replace("List", "the list").replace(" after validation", "") \
            .rstrip(".") + "."
    if "type" in kind or kind.endswith("_parsing"):
        return err["msg"].split(", ")[0].replace("Input should be", "write").rstrip(".") + "."
    return "see `traitlab schema` for the allowed values."


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
