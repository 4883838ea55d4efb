"""Small typed formulas over named numbers (payoffs, outcomes), never ``eval``'d.

A formula is one arithmetic expression in Python syntax, parsed with :mod:`ast` and
checked against a whitelist: numbers, named variables, ``+ - * / // % **``, comparisons
(true = 1, false = 0), ``and`` / ``or`` / ``not``, ``a if cond else b`` and the functions
``min(a, b, ...)``, ``max(a, b, ...)`` (two or more arguments), ``abs(x)``, ``round(x)`` and
``round(x, digits)``. Names may be dotted (``state.lake``, ``my.state.wealth``). A string
constant may appear only as one side of ``==`` or ``!=`` whose other side is a *text* name (a
categorical state variable or ``my.choice``): ``my.choice == "cooperate"``. Anything else
(other attributes, subscripts, other calls, lambdas) is refused when the scenario is loaded.
A categorical update is a *text formula*: a string, or ``"a" if cond else "b"`` (nested).

Evaluation is total and bounded, so a formula never stops a run: division or modulo by zero
gives 0, as does ``0 ** -1``; every intermediate result saturates at plus or minus
:data:`MAX_RESULT` (an overflow gives the bound with its sign, never ``inf`` or ``nan``);
``round`` keeps at most 12 digits. At load time a formula is refused if it is longer than
1000 characters, nests deeper than :data:`MAX_DEPTH`, writes a number beyond
:data:`~sim.scenario.fields.MAX_MAGNITUDE`, or has a part without names (``9**9**9``) whose
value would pass :data:`MAX_RESULT`.

>>> Formula.parse("endowment - value + multiplier * sum_values / n").evaluate(
...     {"endowment": 20, "value": 20, "multiplier": 1.6, "sum_values": 80, "n": 4})
32.0

The names a payoff or outcome formula of stage ``S`` sees, for a member ``a`` of a group in
round ``r`` (every name is a number; :func:`formula_names` is the one list, checked at load
time and filled by :mod:`sim.engine.stages.formulas` at run time):

- ``value``: a's choice in ``S`` as a number (a numeric option is its number, any other its
  index; 0 if a did not act); ``acted``: 1 if a acted; ``correct``: 1 if a's choice is the
  stage's ``answer``;
- ``partner_value``: the first other member's value; ``sum_values``, ``mean_values``,
  ``others_sum``: over the group; ``n``: group size; ``n_actors``: members who acted;
- ``<stage>`` and ``partner_<stage>``: a's and the first partner's value in another choice
  stage of this round (0 if none), for every choice stage whose id is a plain name;
- ``is_<role>``: 1 if a holds that role this round;
- every private value name (a's own, 0 if it has none) and every scenario ``params`` name;
- in dialogue stages with ``offers``: ``deal`` (1 if an offer was accepted) and ``price``
  (the accepted offer, 0 without a deal);
- ``round`` (the current round; ``round(x)`` is still the function), ``rounds``, ``n_agents``
  (population size), ``state.X`` for every global state variable and ``my.state.Y`` for
  a's own per-agent state variables (their values before this stage's updates).

World state (:mod:`sim.scenario.world`) adds formulas of its own:

- ``stop:``, ``while: {state: ...}`` and a levels ``max_formula`` (:func:`condition_names`):
  every scenario ``params`` name, ``round``, ``rounds``, ``n_agents`` and ``state.X``; a
  ``max_formula`` also ``my.state.Y`` of the choosing agent;
- a stage's ``update:`` (:func:`update_names`), evaluated once after the stage's rows exist:
  the condition names plus the stage's outcomes over the whole population: ``total_value``
  and ``mean_value`` (of the choices of every actor of the stage, numbers as above),
  ``n_actors``, ``total_payoff`` and ``mean_payoff`` (over every agent, 0 for agents not
  paid); an ``my.state.Y: ...`` update, evaluated for every agent, also sees ``my.state.Y``,
  ``value``, ``acted``, ``payoff`` (the agent's own, 0 if none) and the text name
  ``my.choice`` (its option in the stage, ``""`` if none).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sim.scenario.fields import MAX_MAGNITUDE
from sim.scenario.formula_eval import (
    BINARY,
    COMPARE,
    FUNCTIONS,
    MAX_RESULT,
    Saturated,
    evaluate_tree,
)
from sim.scenario.formula_names import (
    BASE_NAMES,
    DEAL_NAMES,
    condition_names,
    dotted,
    formula_names,
    is_plain_name,
    state_names,
    update_names,
)

__all__ = ["BASE_NAMES", "DEAL_NAMES", "MAX_DEPTH", "MAX_RESULT", "Formula", "FormulaError",
           "condition_names", "formula_names", "is_plain_name", "state_names", "update_names"]

_ARITY = {"min": (2, 64), "max": (2, 64), "abs": (1, 1), "round": (1, 2)}
MAX_DEPTH = 100
"""Deepest nesting of a formula's expression tree."""
_MAX_SOURCE = 1000


class FormulaError(ValueError):
    """A formula is malformed, uses something not allowed, or names an unknown variable."""


@dataclass(frozen=True, slots=True)
class Formula:
    """A parsed, checked formula.

    Attributes:
        source: the text as written.
        names: the variables it reads.
        literals: every ``(text name, string)`` pair it compares, and for a text formula
            every string it can give (paired with ``""``).
    """

    source: str
    names: frozenset[str]
    _tree: ast.expr
    literals: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def parse(cls, source: str, allowed: Iterable[str] | None = None, *,
              texts: Iterable[str] | None = (), text_result: bool = False) -> Formula:
        """Parse and check a formula.

        Args:
            source: the expression.
            allowed: the variable names it may use (``None``: any name).
            texts: the names that hold text (compared to strings with ``==``/``!=`` only);
                ``None``: any name may (a formula already checked at load time).
            text_result: parse a text formula (a string, or ``"a" if c else "b"``).

        Raises:
            FormulaError: naming the offending piece and what is allowed.
        """
        if len(source) > _MAX_SOURCE:
            raise FormulaError(f"formula of {len(source)} characters is longer than "
                               f"{_MAX_SOURCE}; split it with params or simplify it")
        try:
            tree = ast.parse(source.strip(), mode="eval").body
        except SyntaxError as exc:
            raise FormulaError(f"formula {source!r} is not an expression ({exc.msg})") from None
        except (RecursionError, MemoryError, ValueError):
            raise FormulaError(f"formula {source[:40]!r}... nests too deeply "
                               f"(at most {MAX_DEPTH} levels)") from None
        if _depth(tree) > MAX_DEPTH:
            raise FormulaError(f"formula {source[:40]!r} nests deeper than {MAX_DEPTH} levels; "
                               "simplify it")
        names: set[str] = set()
        checker = _Checker(names, None if texts is None else frozenset(texts))
        try:
            checker.text(tree) if text_result else checker.check(tree)
        except FormulaError:
            # An unknown name explains the rest ('my.choice == "x"' where there is no choice)
            if allowed is not None:
                _refuse_unknown(source, _read_names(tree), set(allowed))
            raise
        _check_constant_parts(tree)
        if allowed is not None:
            _refuse_unknown(source, names, set(allowed))
        return cls(source, frozenset(names), tree, frozenset(checker.literals))

    def evaluate(self, values: Mapping[str, float | str]) -> float:
        """The formula's value for the given variables (rounded to 9 decimals, no ``-0``).

        Always a finite number within :data:`MAX_RESULT` (see the module docstring).
        """
        return round(evaluate_tree(self._tree, values, strict=False), 9) + 0.0

    def evaluate_text(self, values: Mapping[str, float | str]) -> str:
        """The string a text formula (parsed with ``text_result=True``) gives."""
        node = self._tree
        while isinstance(node, ast.IfExp):
            node = node.body if evaluate_tree(node.test, values, strict=False) else node.orelse
        assert isinstance(node, ast.Constant) and isinstance(node.value, str)
        return node.value


def _read_names(tree: ast.expr) -> set[str]:
    """Every plain or dotted name a tree reads (function names excluded)."""
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in calls or id(node) in inner:
            continue
        name = node.id if isinstance(node, ast.Name) else (
            dotted(node) if isinstance(node, ast.Attribute) else None)
        if name is not None:
            found.add(name)
    return found


def _refuse_unknown(source: str, names: set[str], allowed: set[str]) -> None:
    unknown = sorted(names - allowed)
    if unknown:
        raise FormulaError(f"formula {source!r} uses unknown name(s) "
                           f"{', '.join(unknown)}; known: {', '.join(sorted(allowed))}")


class _Checker:
    """Walks a formula's tree: collects names, refuses anything not on the whitelist."""

    def __init__(self, names: set[str], texts: frozenset[str] | None) -> None:
        self.names = names
        self.texts = texts
        self.literals: set[tuple[str, str]] = set()

    def text(self, node: ast.expr) -> None:
        """A text formula: a string, or a conditional between text formulas."""
        if isinstance(node, ast.IfExp):
            self.check(node.test)
            self.text(node.body)
            self.text(node.orelse)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            self.literals.add(("", node.value))
        else:
            raise FormulaError(f"'{ast.unparse(node)[:60]}' is not text; a categorical "
                               'update is a string or "a" if condition else "b"')

    def _name(self, node: ast.expr) -> str | None:
        """The name ``node`` reads (plain or dotted), recorded."""
        name = node.id if isinstance(node, ast.Name) else dotted(node)
        if name is not None:
            self.names.add(name)
        return name

    def _text_compare(self, node: ast.Compare) -> bool:
        """Check a comparison that involves text; ``False`` if it involves none."""
        parts = (node.left, *node.comparators)
        strings = [p for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)]
        named = [self._name(p) for p in parts if isinstance(p, ast.Name | ast.Attribute)]
        if not strings and (self.texts is None or not any(self._is_text(n) for n in named)):
            return False
        text_name = next((n for n in named if self._is_text(n)), None)
        if len(parts) != 2 or not isinstance(node.ops[0], ast.Eq | ast.NotEq) \
                or len(strings) != 1 or text_name is None:
            raise FormulaError(f"'{ast.unparse(node)[:60]}' compares text; write "
                               'NAME == "text" or NAME != "text" with a text name ('
                               + (", ".join(sorted(self.texts or ())) or "none here") + ")")
        self.literals.add((text_name, str(strings[0].value)))
        return True

    def check(self, node: ast.AST) -> None:
        """A numeric formula (see the module docstring)."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                raise FormulaError(f"the text {node.value!r} may only be compared: "
                                   f'NAME == "{node.value}"')
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise FormulaError(f"only numbers may be written in a formula, "
                                   f"not {node.value!r}")
            if not abs(node.value) <= MAX_MAGNITUDE:  # also inf (1e999) and huge integers
                shown = ast.unparse(node)[:40] if math.isfinite(node.value) else "inf"
                raise FormulaError(f"the number {shown} is beyond "
                                   f"{MAX_MAGNITUDE:g}; write smaller numbers")
        elif isinstance(node, ast.Name | ast.Attribute) and self._plain(node):
            name = self._name(node)
            if self.texts is not None and name in self.texts:
                raise FormulaError(f"'{name}' is text; compare it: {name} == \"...\"")
        elif isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            self.check(node.left)
            self.check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
            self.check(node.operand)
        elif isinstance(node, ast.Compare) and all(type(op) in COMPARE for op in node.ops):
            if not self._text_compare(node):
                for part in (node.left, *node.comparators):
                    self.check(part)
        elif isinstance(node, ast.BoolOp):
            for part in node.values:
                self.check(part)
        elif isinstance(node, ast.IfExp):
            for part in (node.test, node.body, node.orelse):
                self.check(part)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in FUNCTIONS and not node.keywords and node.args:
            self._call(node, node.func.id)
        else:
            raise FormulaError(f"'{ast.unparse(node)}' is not allowed in a formula; use numbers, "
                               "names, + - * / // % **, comparisons, and/or/not, "
                               "x if c else y, min, max, abs, round")

    def _is_text(self, name: str | None) -> bool:
        return name is not None and (self.texts is None or name in self.texts)

    def _plain(self, node: ast.Name | ast.Attribute) -> bool:
        """A readable name: a dotted chain, or a plain name that is no function.

        ``round`` alone is the round number (called, it is the function).
        """
        if isinstance(node, ast.Attribute):
            return dotted(node) is not None
        if node.id in FUNCTIONS and node.id != "round":
            raise FormulaError(f"'{node.id}' is a function; call it: {node.id}(a, b)")
        return True

    def _call(self, node: ast.Call, func: str) -> None:
        low, high = _ARITY[func]
        if not low <= len(node.args) <= high:
            wanted = {"min": "two or more numbers: min(a, b)",
                      "max": "two or more numbers: max(a, b)", "abs": "one number: abs(x)",
                      "round": "a number and optionally digits: round(x, 2)"}[func]
            raise FormulaError(f"'{ast.unparse(node)[:60]}' has {len(node.args)} argument(s); "
                               f"{func} takes {wanted}")
        for part in node.args:
            self.check(part)


def _depth(tree: ast.AST) -> int:
    """Depth of an expression tree, iteratively (a recursive walk could overflow the stack)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _check_constant_parts(node: ast.expr) -> None:
    """Refuse a part without names whose value would saturate: a mistake, not a payoff."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return
    if isinstance(node, ast.Compare) and any(isinstance(p, ast.Constant)
                                             and isinstance(p.value, str)
                                             for p in (node.left, *node.comparators)):
        return  # a text comparison (checked by _Checker): no number to saturate
    if not any(isinstance(n, ast.Name) for n in ast.walk(node)):
        try:
            evaluate_tree(node, {}, strict=True)
        except Saturated:
            raise FormulaError(f"'{ast.unparse(node)[:60]}' is beyond {MAX_RESULT:g}; "
                               "write smaller numbers") from None
        return
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr) and not isinstance(child, ast.Name | ast.Attribute):
            _check_constant_parts(child)
