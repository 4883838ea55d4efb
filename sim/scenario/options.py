"""Closed option sets: numeric levels, and the numeric value of an option.

A choice stage writes its options out (``options: [cooperate, defect]``) or as numeric
``levels: {min: 0, max: 20, step: 2}``; :func:`level_options` turns levels into option
strings (``"0", "2", ..., "20"``). Formulas see every choice as a number: a numeric option is
its number, any other option its index in the stage's canonical order (``[reject, accept]``
gives reject = 0, accept = 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from sim.scenario.fields import Formula, Number, Strict

__all__ = ["MAX_LEVELS", "LevelsSpec", "level_count", "level_options", "offered_levels",
           "option_value"]

MAX_LEVELS = 64


class LevelsSpec(Strict):
    """Numeric options ``min, min + step, ..., max`` (at most 64 of them).

    ``max_formula``: a formula (of ``state.X``, ``my.state.Y``, params, ``round``,
    ``n_agents``) evaluated for every choosing agent each round; only the levels at or below
    its value are offered that round (at least ``min``, so a choice always has an option).
    The offered levels are a prefix of the full grid, recorded in the row's ``options``.
    """

    min: Number
    max: Number
    step: Annotated[Number, Field(gt=0.0)] = 1.0
    max_formula: Formula | None = None


def level_count(levels: LevelsSpec) -> int:
    """How many options ``levels`` has (``max`` is included when it is on the grid)."""
    span = (levels.max - levels.min) / levels.step  # finite: the fields are bounded, step > 0
    return int(min(span, 10.0 * MAX_LEVELS) + 1e-9) + 1  # bounded for any step, however tiny


def _number(x: float) -> str:
    return f"{round(x, 6):g}"


def level_options(levels: LevelsSpec) -> list[str]:
    """``min, min + step, ...`` up to ``max`` as option strings (``"0"``, ``"2.5"``)."""
    return [_number(levels.min + i * levels.step) for i in range(level_count(levels))]


def option_value(options: Sequence[str], index: int) -> float:
    """The number a formula sees for option ``index``: its numeric text, else the index."""
    try:
        return float(options[index])
    except ValueError:
        return float(index)


def offered_levels(options: Sequence[str], bound: float) -> list[str]:
    """The levels at or below ``bound`` (a prefix of ``options``; at least the first)."""
    kept = [o for o in options if float(o) <= bound + 1e-9]
    return kept or list(options[:1])
