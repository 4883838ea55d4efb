"""Reading YAML safely, within bounds, and finding the node a dotted field path names.

YAML is read with PyYAML's safe loader (no object construction), within a size bound and an
alias-expansion bound; explicit tags and repeated keys are refused. :func:`locate` maps a
field path (``stages.1.options``) back to its line and column for error messages.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import yaml

from sim.errors import ScenarioError
from sim.scenario.stages import STAGE_KINDS

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "STARTER", "locate", "read_mapping",
           "read_text_file", "read_value"]

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 200_000
MAX_DEPTH = 100
STARTER = "start from scenarios/prisoners_dilemma.yaml"
_STR_TAG, _SEQ_TAG, _MAP_TAG, _MERGE_TAG = (f"tag:yaml.org,2002:{t}"
                                            for t in ("str", "seq", "map", "merge"))
_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_DECIMAL = {_INT_TAG: re.compile(r"[-+]?(0|[1-9][0-9_]*)$"),
            _FLOAT_TAG: re.compile(r"[-+]?[0-9_]*\.[0-9_]*([eE][-+]?[0-9]+)?$"
                                   r"|[-+]?\.(inf|Inf|INF)$|\.(nan|NaN|NAN)$")}
_YAML_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null", "timestamp")}


def read_text_file(path: Path, *, missing_fix: str) -> str:
    """The UTF-8 text of a regular file of at most :data:`MAX_FILE_BYTES` bytes.

    A directory, a device (``/dev/zero`` never ends), a FIFO (blocks until a writer comes) or
    a socket is refused before it is opened; the read itself is bounded.

    Raises:
        ScenarioError: naming the file, what it is and the fix.
    """
    source = str(path)
    try:
        info = path.stat()
        mode = info.st_mode
    except FileNotFoundError:
        raise ScenarioError("no such file.", file=source, fix=missing_fix) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read it ({exc.strerror or exc}).", file=source,
                            fix="check the path and its permissions.") from None
    if stat.S_ISDIR(mode):
        raise ScenarioError("is a directory, not a file.", file=source,
                            fix="name a YAML file in it, for example " + STARTER[11:] + ".")
    if not stat.S_ISREG(mode):
        raise ScenarioError("is not a regular file (a device, pipe or socket).", file=source,
                            fix="save the YAML to a file and pass its path.")
    if info.st_size > MAX_FILE_BYTES:
        raise ScenarioError(f"the file is {info.st_size:,} bytes, over the limit of "
                            f"{MAX_FILE_BYTES:,}.", file=source,
                            fix="split it or remove embedded data; scenarios and sweeps are "
                                "small.")
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"cannot read it ({exc.strerror or exc}).", file=source,
                            fix="check the path and its permissions.") from None
    if len(data) > MAX_FILE_BYTES:  # it grew since stat
        raise ScenarioError(f"the file is over {MAX_FILE_BYTES:,} bytes, over the limit.",
                            file=source, fix="split it or remove embedded data; "
                                             "scenarios and sweeps are small.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text ({exc.reason}).", file=source,
                            fix="save the file as UTF-8.") from None


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


def read_value(text: str, source: str) -> Any:
    """One YAML value (a number, text, a list or a mapping), within the loader's limits.

    Raises:
        ScenarioError: bad YAML, a tag, a non-decimal number form, or over a limit.
    """
    return _construct(_compose(text, source), source)


def _compose(text: str, source: str) -> yaml.Node:
    if not text.strip():
        raise ScenarioError("the file is empty.", file=source, line=1, fix=STARTER + ".")
    try:
        root = yaml.compose(text, Loader=_DepthLimitedLoader)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    except _TooDeep as exc:
        raise _too_deep(source, exc.mark) from None
    if root is None:
        raise ScenarioError("the file is empty.", file=source, line=1, fix=STARTER + ".")
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
        if tag == implicit and tag in _DECIMAL and not _DECIMAL[tag].match(node.value):
            _refuse_number_form(node, source, field)
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


def _refuse_number_form(node: yaml.ScalarNode, source: str, field: str) -> None:
    """Refuse YAML 1.1's other number forms: ``0x1``, ``010`` (octal 8), ``1:30`` (90).

    They surprise in a scenario, so only plain decimal numbers are numbers.
    """
    raise ScenarioError(
        f"'{node.value}' is a hexadecimal, octal or base-60 number in YAML 1.1.",
        file=source, line=node.start_mark.line + 1, column=node.start_mark.column + 1,
        field=field or None, value=node.value,
        fix="write the number in plain decimal (1, 8, 0.5), or quote it if it is text.")


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    if isinstance(node, yaml.SequenceNode) and key.isascii() and key.isdigit() \
            and int(key) < len(node.value):
        return node.value[int(key)]
    return None


def _key_node(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, _v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k
    return None


def locate(root: yaml.Node, path: list[str], *, key: bool = False) -> tuple[int, int]:
    """Line and column of the node at ``path`` (its key when ``key``), or its nearest parent.

    A key that itself holds dots (``update: {state.lake: ...}``) is matched by joining parts.
    """
    node, i = root, 0
    while i < len(path):
        part = path[i]
        if part in STAGE_KINDS and _child(node, part) is None:
            i += 1
            continue  # pydantic's discriminator tag, not a YAML key
        j = next((j for j in range(i + 1, len(path) + 1)
                  if _child(node, ".".join(path[i:j])) is not None), None)
        if j is None:
            break
        part = ".".join(path[i:j])
        if j == len(path) and key and (k := _key_node(node, part)) is not None:
            node = k
            break
        node, i = _child(node, part), j  # type: ignore[assignment]
    return node.start_mark.line + 1, node.start_mark.column + 1
