"""Evaluating a checked formula: total, bounded, never ``eval``'d.

Every intermediate value saturates at plus or minus :data:`MAX_RESULT`; division or modulo by
zero gives 0, as does ``0 ** -1``; ``nan`` becomes 0. With ``strict`` (at load time, for parts
without names) a value beyond the bound raises :class:`Saturated` instead.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping

from sim.scenario.formula_names import dotted

__all__ = ["BINARY", "COMPARE", "FUNCTIONS", "MAX_RESULT", "Saturated", "evaluate_tree"]

MAX_RESULT = 1e15
"""Bound of every intermediate value of a formula (magnitude); beyond it values saturate."""

BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
FUNCTIONS: dict[str, Callable[..., float]] = {"min": min, "max": max, "abs": abs,
                                               "round": lambda x, d=0.0: round(x, _digits(d))}


class Saturated(ArithmeticError):
    """A value passed MAX_RESULT while evaluating strictly (at load time)."""


def _digits(value: float) -> int:
    return int(max(-12.0, min(12.0, value)))


def _bound(value: float | complex, strict: bool) -> float:
    """``value`` as a float within MAX_RESULT (saturated; ``nan`` becomes 0)."""
    if isinstance(value, complex):  # a negative base to a fractional power
        value = value.real
    if value != value:
        return 0.0
    if abs(value) > MAX_RESULT:
        if strict:
            raise Saturated
        return math.copysign(MAX_RESULT, value)
    return float(value)


def _power(left: float, right: float, strict: bool) -> float:
    try:
        return _bound(left ** right, strict)
    except ZeroDivisionError:  # 0 ** negative
        return 0.0
    except OverflowError:
        if strict:
            raise Saturated from None
        negative = left < 0 and float(right).is_integer() and int(right) % 2 == 1
        return -MAX_RESULT if negative else MAX_RESULT


def _text_compare(node: ast.Compare, values: Mapping[str, float | str]) -> float:
    """``NAME == "text"`` (or ``!=``), either way round: 1 or 0."""
    a, b = (p.value if isinstance(p, ast.Constant)
            else values[p.id if isinstance(p, ast.Name) else dotted(p)]  # type: ignore[index]
            for p in (node.left, node.comparators[0]))
    return float((a == b) == isinstance(node.ops[0], ast.Eq))


def evaluate_tree(node: ast.expr, values: Mapping[str, float | str], *, strict: bool) -> float:
    """The value of a checked expression tree for ``values`` (names to numbers or text)."""
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return _bound(float(values[node.id]), strict)
    if isinstance(node, ast.Attribute):
        return _bound(float(values[dotted(node)]), strict)  # type: ignore[index,arg-type]
    if isinstance(node, ast.BinOp):
        left = evaluate_tree(node.left, values, strict=strict)
        right = evaluate_tree(node.right, values, strict=strict)
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
            return 0.0
        if isinstance(node.op, ast.Pow):
            return _power(left, right, strict)
        return _bound(BINARY[type(node.op)](left, right), strict)
    if isinstance(node, ast.UnaryOp):
        value = evaluate_tree(node.operand, values, strict=strict)
        if isinstance(node.op, ast.Not):
            return float(not value)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Compare):
        if any(isinstance(p, ast.Constant) and isinstance(p.value, str)
               for p in (node.left, *node.comparators)):
            return _text_compare(node, values)
        left = evaluate_tree(node.left, values, strict=strict)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = evaluate_tree(comparator, values, strict=strict)
            if not COMPARE[type(op)](left, right):
                return 0.0
            left = right
        return 1.0
    if isinstance(node, ast.BoolOp):
        parts = (evaluate_tree(v, values, strict=strict) for v in node.values)
        if isinstance(node.op, ast.And):
            return float(all(parts))
        return float(any(parts))
    if isinstance(node, ast.IfExp):
        test = evaluate_tree(node.test, values, strict=strict)
        return evaluate_tree(node.body if test else node.orelse, values, strict=strict)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    args = [evaluate_tree(a, values, strict=strict) for a in node.args]
    return _bound(FUNCTIONS[node.func.id](*args), strict)
