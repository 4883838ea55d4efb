"""Small typed formulas over named numbers (payoffs, outcomes), never ``eval``'d.

A formula is one arithmetic expression in Python syntax, parsed with :mod:`ast` and
checked against a whitelist: numbers, named variables, ``+ - * / // % **``, comparisons
(true = 1, false = 0), ``and`` / ``or`` / ``not``, ``a if cond else b`` and the functions
``min``, ``max``, ``abs``, ``round``. Anything else (attributes, subscripts, other calls,
strings, lambdas) is refused when the scenario is loaded. Division by zero gives 0.

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
  (the accepted offer, 0 without a deal).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sim.scenario.spec import ChoiceStage, DialogueStage, ScenarioSpec, StageBase

__all__ = ["BASE_NAMES", "DEAL_NAMES", "Formula", "FormulaError", "formula_names",
           "is_plain_name"]

BASE_NAMES = ("value", "acted", "correct", "partner_value", "sum_values", "mean_values",
              "others_sum", "n", "n_actors")
DEAL_NAMES = ("deal", "price")

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {"min": min, "max": max, "abs": abs,
                                                "round": round}
_MAX_POWER = 100.0


class FormulaError(ValueError):
    """A formula is malformed, uses something not allowed, or names an unknown variable."""


@dataclass(frozen=True, slots=True)
class Formula:
    """A parsed, checked formula.

    Attributes:
        source: the text as written.
        names: the variables it reads.
    """

    source: str
    names: frozenset[str]
    _tree: ast.expr

    @classmethod
    def parse(cls, source: str, allowed: Iterable[str] | None = None) -> Formula:
        """Parse and check a formula.

        Args:
            source: the expression.
            allowed: the variable names it may use (``None``: any name).

        Raises:
            FormulaError: naming the offending piece and what is allowed.
        """
        try:
            tree = ast.parse(source.strip(), mode="eval").body
        except SyntaxError as exc:
            raise FormulaError(f"formula {source!r} is not an expression ({exc.msg})") from None
        names: set[str] = set()
        _check(tree, names)
        if allowed is not None:
            allowed = set(allowed)
            unknown = sorted(names - allowed)
            if unknown:
                raise FormulaError(f"formula {source!r} uses unknown name(s) "
                                   f"{', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
        return cls(source, frozenset(names), tree)

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The formula's value for the given variables (rounded to 9 decimals, no ``-0``)."""
        return round(float(_eval(self._tree, values)), 9) + 0.0


def is_plain_name(name: str) -> bool:
    """Whether a stage id or role name can be a formula variable (a Python identifier)."""
    return name.isidentifier()


def formula_names(spec: ScenarioSpec, stage: StageBase) -> set[str]:
    """Every name a formula of ``stage`` may use (see the module docstring)."""
    names = set(BASE_NAMES) | set(spec.params)
    for other in spec.stages:
        if isinstance(other, ChoiceStage) and is_plain_name(other.id):
            names |= {other.id, f"partner_{other.id}"}
    names |= {f"is_{r.name}" for r in spec.roles if is_plain_name(r.name)}
    names |= {k for r in spec.roles for k in r.private}
    if isinstance(stage, DialogueStage):
        names |= set(DEAL_NAMES)
    return names


def _check(node: ast.AST, names: set[str]) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaError(f"only numbers may be written in a formula, not {node.value!r}")
    elif isinstance(node, ast.Name):
        if node.id in _FUNCTIONS:
            raise FormulaError(f"'{node.id}' is a function; call it: {node.id}(a, b)")
        names.add(node.id)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, names)
        _check(node.right, names)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
        _check(node.operand, names)
    elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        for part in (node.left, *node.comparators):
            _check(part, names)
    elif isinstance(node, ast.BoolOp):
        for part in node.values:
            _check(part, names)
    elif isinstance(node, ast.IfExp):
        for part in (node.test, node.body, node.orelse):
            _check(part, names)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in _FUNCTIONS and not node.keywords and node.args:
        for part in node.args:
            _check(part, names)
    else:
        raise FormulaError(f"'{ast.unparse(node)}' is not allowed in a formula; use numbers, "
                           "names, + - * / // % **, comparisons, and/or/not, "
                           "x if c else y, min, max, abs, round")


def _eval(node: ast.expr, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(values[node.id])
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
            return 0.0
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_POWER:
            raise FormulaError(f"exponent {right:g} is too large (at most {_MAX_POWER:g})")
        result = _BINARY[type(node.op)](left, right)
        return float(result.real if isinstance(result, complex) else result)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, values)
        if isinstance(node.op, ast.Not):
            return float(not value)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, values)
            if not _COMPARE[type(op)](left, right):
                return 0.0
            left = right
        return 1.0
    if isinstance(node, ast.BoolOp):
        parts = (_eval(v, values) for v in node.values)
        if isinstance(node.op, ast.And):
            return float(all(parts))
        return float(any(parts))
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, values) else node.orelse, values)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    result = _FUNCTIONS[node.func.id](*(_eval(a, values) for a in node.args))
    return float(result) if math.isfinite(result) else 0.0
