"""Scoring of the Open Extended Jungian Type Scales 1.2 (OEJTS).

The scoring key (which item enters which axis with which sign) is a set of facts, not
expression, so it lives here in code and needs no opt-in; the item texts are CC BY-NC-SA 4.0
and live in ``restricted/oejts.json``. Formulas (measurement.md A.1.2, openpsychometrics.org)::

    IE = 30 - Q3 - Q7 - Q11 + Q15 - Q19 + Q23 + Q27 - Q31
    SN = 12 + Q4 + Q8 + Q12 + Q16 + Q20 - Q24 - Q28 + Q32
    FT = 30 - Q2 + Q6 + Q10 - Q14 - Q18 + Q22 - Q26 - Q30
    JP = 18 + Q1 + Q5 - Q9 + Q13 - Q17 + Q21 - Q25 + Q29

An axis score above 24 gives the second letter (E, N, T, P), otherwise the first (I, S, F,
J). Exactly 24 is a tie: it resolves to I/S/F/J and is flagged. Results are "OEJTS types",
not MBTI types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim.errors import TraitLabError

__all__ = ["OEJTS_AXES", "OEJTS_CUTOFF", "score_oejts"]

OEJTS_CUTOFF = 24
"""Axis score at and below which the low letter is given."""

OEJTS_AXES: dict[str, dict[str, Any]] = {
    "IE": {"constant": 30, "low": "I", "high": "E",
           "signs": {3: -1, 7: -1, 11: -1, 15: 1, 19: -1, 23: 1, 27: 1, 31: -1}},
    "SN": {"constant": 12, "low": "S", "high": "N",
           "signs": {4: 1, 8: 1, 12: 1, 16: 1, 20: 1, 24: -1, 28: -1, 32: 1}},
    "FT": {"constant": 30, "low": "F", "high": "T",
           "signs": {2: -1, 6: 1, 10: 1, 14: -1, 18: -1, 22: 1, 26: -1, 30: -1}},
    "JP": {"constant": 18, "low": "J", "high": "P",
           "signs": {1: 1, 5: 1, 9: -1, 13: 1, 17: -1, 21: 1, 25: -1, 29: 1}},
}
"""Axis -> constant, letters and ``{question number: sign}``; axes in type-letter order."""


def _question_number(key: int | str) -> int:
    if isinstance(key, int):
        return key
    text = str(key).strip().upper().removeprefix("Q")
    if not text.isdigit():
        raise TraitLabError(
            f"OEJTS answer key '{key}' is not a question number; use 1..32 or 'Q1'..'Q32'."
        )
    return int(text)


def score_oejts(answers: Mapping[int, int] | Mapping[str, int]) -> dict[str, Any]:
    """Score one OEJTS 1.2 administration.

    Args:
        answers: response 1..5 per question (1 = left statement, 5 = right statement), keyed
            by question number 1..32 (``"Q7"`` style keys are accepted too). All 32 are
            needed: a refused item has no neutral substitute.

    Returns:
        A dict with ``scores`` (axis -> raw score, 8..40 around 24), ``letters`` (axis ->
        letter), ``type`` (four letters, e.g. ``"ISFJ"``), ``ties`` (axis -> True when the
        score is exactly 24) and ``n_ties``.

    Raises:
        TraitLabError: missing, extra or out-of-range answers.
    """
    values: dict[int, int] = {}
    for key, value in answers.items():
        q = _question_number(key)
        if not 1 <= q <= 32:
            raise TraitLabError(f"OEJTS has questions 1..32; got question {q}.")
        if q in values:
            raise TraitLabError(f"OEJTS question {q} is answered twice.")
        if isinstance(value, bool) or int(value) != value or not 1 <= value <= 5:
            raise TraitLabError(
                f"OEJTS answer to question {q} must be an integer 1..5, got {value!r}."
            )
        values[q] = int(value)
    missing = sorted(set(range(1, 33)) - set(values))
    if missing:
        raise TraitLabError(
            f"OEJTS needs all 32 answers; missing questions {missing}. Refusals cannot be "
            "scored (do not impute the midpoint)."
        )
    scores: dict[str, int] = {}
    letters: dict[str, str] = {}
    ties: dict[str, bool] = {}
    for axis, spec in OEJTS_AXES.items():
        score = spec["constant"] + sum(sign * values[q] for q, sign in spec["signs"].items())
        scores[axis] = score
        letters[axis] = spec["high"] if score > OEJTS_CUTOFF else spec["low"]
        ties[axis] = score == OEJTS_CUTOFF
    return {
        "scores": scores,
        "letters": letters,
        "type": "".join(letters[a] for a in OEJTS_AXES),
        "ties": ties,
        "n_ties": sum(ties.values()),
    }
