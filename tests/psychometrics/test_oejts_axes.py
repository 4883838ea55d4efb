"""OEJTS axis scores from survey records, against the published key scored by hand."""

import polars as pl
import pytest

from agents.instruments import OEJTS_AXES, score_oejts
from analysis.oejts import oejts_types


def _rows(answers, value="expected"):
    trait_of = {q: axis for axis, spec in OEJTS_AXES.items() for q in spec["signs"]}
    return pl.DataFrame([{"run_id": "r", "replica": 0, "agent": "a", "round": 0,
                          "instrument": "oejts", "item_id": f"Q{q}", "trait": trait_of[q],
                          "keyed": OEJTS_AXES[trait_of[q]]["signs"][q], value: float(x)}
                         for q, x in answers.items()])


def test_integer_answers_match_the_published_scoring():
    # All 3s except Q15 = Q23 = 5. IE = 30 - Q3 - Q7 - Q11 + Q15 - Q19 + Q23 + Q27 - Q31
    # = 30 - 15 + (5 + 5 + 3) = 28; SN = 12 + 18 - 6 = 24, FT = 30 - 15 + 9 = 24,
    # JP = 18 + 15 - 9 = 24 (ties, resolved to S, F, J).
    answers = {q: 3 for q in range(1, 33)} | {15: 5, 23: 5}
    row = oejts_types(_rows(answers)).row(0, named=True)
    assert row["IE"] == 28.0 and row["margin_IE"] == 4.0
    ref = score_oejts(answers)
    assert [row[a] for a in OEJTS_AXES] == [float(ref["scores"][a]) for a in OEJTS_AXES]
    assert row["type"] == ref["type"] == "ESFJ"
    assert row["n_ties"] == ref["n_ties"] == 3  # SN = 24, FT = 24, JP = 24 by the key


def test_continuous_answers_keep_the_distance_from_the_cutoff():
    answers = {q: 3.0 for q in range(1, 33)} | {15: 3.05}
    row = oejts_types(_rows(answers)).row(0, named=True)
    assert row["IE"] == pytest.approx(24.05) and row["type"][0] == "E"
    assert row["margin_IE"] == pytest.approx(0.05)


def test_an_axis_with_a_missing_item_is_null():
    answers = {q: 3 for q in range(1, 33) if q != 3}
    row = oejts_types(_rows(answers)).row(0, named=True)
    assert row["IE"] is None and row["type"] is None
    assert row["SN"] == 24.0
