"""Formulas: documented functions work, hostile ones are refused at load time, and evaluation
is total (a finite number within MAX_RESULT), in bounded time, for any formula of the grammar.
"""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.scenario.formula import MAX_RESULT, Formula, FormulaError

NAMES = ["value", "n", "partner_value", "price"]


@pytest.mark.parametrize(("source", "values", "expected"), [
    ("round(value, 2)", {"value": 3.14159}, 3.14),
    ("round(value)", {"value": 2.6}, 3.0),
    ("round(value, -1)", {"value": 26}, 30.0),
    ("min(value, 2)", {"value": 5}, 2.0),
    ("max(value, 2, 7)", {"value": 5}, 7.0),
    ("abs(-value)", {"value": 5}, 5.0),
    ("value / 0", {"value": 5}, 0.0),
    ("0 ** -1", {}, 0.0),
    ("value ** 1000", {"value": 10}, MAX_RESULT),  # saturates, never inf
    ("-(value ** 1001)", {"value": 10}, -MAX_RESULT),
    ("value * 1e12 * 1e12 - value * 1e12 * 1e12", {"value": 1}, 0.0),  # never inf - inf
    ("value", {"value": math.nan}, 0.0),
])
def test_evaluation_is_total_and_bounded(source, values, expected):
    assert Formula.parse(source).evaluate(values) == expected


@pytest.mark.parametrize(("source", "message"), [
    ("min(value)", "min takes two or more numbers"),
    ("max(value)", "max takes two or more numbers"),
    ("abs(value, 2)", "abs takes one number"),
    ("round(value, 2, 3)", "round takes a number and optionally digits"),
    ("9**9**9", "is beyond"),
    ("(10**100)**4", "is beyond"),
    ("10**16", "is beyond"),
    ("1e400", "the number inf is beyond"),
    ("value + 10**400", "beyond"),
    ("-" * 998 + "1", "nests deeper than"),
    ("(" * 250 + "1" + ")" * 250, "not an expression"),
    ("+".join(["value"] * 150), "nests deeper than"),
    ("value" + " + 1" * 300, "longer than 1000"),
])
def test_hostile_formulas_are_refused_at_load(source, message):
    with pytest.raises(FormulaError, match=message):
        Formula.parse(source)


def _formulas() -> st.SearchStrategy[str]:
    """Random expressions of the formula grammar, and a few things outside it."""
    leaves = st.one_of(
        st.sampled_from(NAMES),
        st.integers(-10**20, 10**20).map(str),
        st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
        st.sampled_from(["1e308", "1e400", "0", "-0.0", "True", "'x'", "x.y", "[1]"]),
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<",
                                                   "<=", "==", "!=", "and", "or"]), inner)
        return st.one_of(
            binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda x: f"-{x}"), inner.map(lambda x: f"not {x}"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
            st.tuples(st.sampled_from(["min", "max", "abs", "round"]),
                      st.lists(inner, min_size=0, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"),
        )

    return st.recursive(leaves, extend, max_leaves=40)


VALUES = st.fixed_dictionaries({name: st.one_of(
    st.floats(-1e12, 1e12), st.sampled_from([0.0, -0.0, 1e12, -1e12, math.nan]))
    for name in NAMES})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.one_of(_formulas(), st.integers(1, 1200).map(lambda k: "-" * k + "value")),
       values=VALUES)
def test_parse_and_evaluate_raise_only_formula_errors(source, values):
    started = time.perf_counter()
    try:
        formula = Formula.parse(source, NAMES)
    except FormulaError:
        return
    finally:
        assert time.perf_counter() - started < 5.0  # a blow-up takes minutes; room for load
    result = formula.evaluate(values)
    assert isinstance(result, float) and math.isfinite(result) and abs(result) <= MAX_RESULT
    assert time.perf_counter() - started < 5.0


@pytest.mark.parametrize(("text", "offer"), [
    ("I offer " + "9" * 400, None),  # float() of it is inf
    ("I offer 10000000000000 or 55", 55.0),
    ("how about 55.5?", 55.5),
])
def test_an_offer_is_a_bounded_number(text, offer):
    from sim.engine.offers import extract_offer

    assert extract_offer(text) == offer
