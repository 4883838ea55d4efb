"""OEJTS 1.2 signed-formula scoring."""

import pytest

from agents.instruments import score_oejts
from sim.errors import TraitLabError


def test_all_neutral_is_isfj_with_four_ties():
    result = score_oejts(dict.fromkeys(range(1, 33), 3))
    assert result["scores"] == {"IE": 24, "SN": 24, "FT": 24, "JP": 24}
    assert result["type"] == "ISFJ"
    assert result["ties"] == {"IE": True, "SN": True, "FT": True, "JP": True}
    assert result["n_ties"] == 4


def test_hand_computed_example():
    # Q_i = ((i - 1) mod 5) + 1  ->  1, 2, 3, 4, 5, 1, 2, ...
    answers = {i: (i - 1) % 5 + 1 for i in range(1, 33)}
    # IE = 30 - Q3 - Q7 - Q11 + Q15 - Q19 + Q23 + Q27 - Q31 = 30 -3 -2 -1 +5 -4 +3 +2 -1 = 29
    # SN = 12 + Q4 + Q8 + Q12 + Q16 + Q20 - Q24 - Q28 + Q32 = 12 +4 +3 +2 +1 +5 -4 -3 +2 = 22
    # FT = 30 - Q2 + Q6 + Q10 - Q14 - Q18 + Q22 - Q26 - Q30 = 30 -2 +1 +5 -4 -3 +2 -1 -5 = 23
    # JP = 18 + Q1 + Q5 - Q9 + Q13 - Q17 + Q21 - Q25 + Q29 = 18 +1 +5 -4 +3 -2 +1 -5 +4 = 21
    result = score_oejts(answers)
    assert result["scores"] == {"IE": 29, "SN": 22, "FT": 23, "JP": 21}
    assert result["type"] == "ESFJ"
    assert result["n_ties"] == 0


def test_all_right_pole_and_string_keys():
    # all 5: IE = 30 + 5*(3-5) = 20, SN = 12 + 5*(6-2) = 32, FT = 30 + 5*(3-5) = 20,
    # JP = 18 + 5*(5-3) = 28
    result = score_oejts({f"Q{i}": 5 for i in range(1, 33)})
    assert result["scores"] == {"IE": 20, "SN": 32, "FT": 20, "JP": 28}
    assert result["type"] == "INFP"


def test_extremes_span_8_to_40():
    from agents.instruments import OEJTS_AXES

    for axis, spec in OEJTS_AXES.items():
        high = {q: (5 if s > 0 else 1) for q, s in spec["signs"].items()}
        low = {q: (1 if s > 0 else 5) for q, s in spec["signs"].items()}
        rest = {q: 3 for q in range(1, 33) if q not in spec["signs"]}
        assert score_oejts({**rest, **high})["scores"][axis] == 40
        assert score_oejts({**rest, **low})["scores"][axis] == 8


@pytest.mark.parametrize("answers", [
    {i: 3 for i in range(1, 32)},                     # missing Q32
    {**{i: 3 for i in range(1, 33)}, 5: 6},           # out of range
    {**{i: 3 for i in range(1, 33)}, 33: 3},          # no such question
])
def test_bad_answers_raise(answers):
    with pytest.raises(TraitLabError):
        score_oejts(answers)
