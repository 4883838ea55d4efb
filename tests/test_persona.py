"""Personas: validation, MBTI mapping, seeded sampling, graded rendering."""

import numpy as np
import pytest

from agents.persona import (
    BigFive,
    Mbti,
    Persona,
    intensity_word,
    mbti_to_big_five,
    render_persona,
    sample_big_five,
)
from agents.population import build_population
from sim.scenario.spec import PopulationSpec


def test_intensity_words_are_graded_and_symmetric():
    assert intensity_word(0.5) is None
    assert [intensity_word(x) for x in (0.65, 0.8, 0.95)] == ["somewhat", "very", "extremely"]
    assert [intensity_word(x) for x in (0.35, 0.2, 0.05)] == ["somewhat", "very", "extremely"]


def test_render_uses_the_pole_of_each_trait():
    text = render_persona(Persona(name="Kai", big_five=BigFive(0.95, 0.5, 0.05, 0.8, 0.3)))
    assert text.startswith("You are Kai.")
    assert "extremely curious" in text
    assert "average in conscientiousness" in text
    assert "extremely reserved" in text
    assert "very warm" in text
    assert "somewhat calm" in text


def test_mbti_maps_to_correlated_big_five():
    b = mbti_to_big_five(Mbti("ENFJ", (1.0, 1.0, 1.0, 1.0)))
    assert (b.extraversion, b.openness, b.agreeableness, b.conscientiousness) == (1, 1, 1, 1)
    b = mbti_to_big_five(Mbti("ISTP", (0.5, 0.5, 0.5, 0.5)))
    assert (b.extraversion, b.openness, b.agreeableness, b.conscientiousness) == \
        (0.25, 0.25, 0.25, 0.25)
    assert b.neuroticism == 0.5
    with pytest.raises(ValueError, match="MBTI"):
        Mbti("XYZW")


def test_sampling_is_seeded_and_bounded():
    a = sample_big_five(np.random.default_rng(1), 50, method="normal", mean=[0.9] * 5, sd=0.3)
    b = sample_big_five(np.random.default_rng(1), 50, method="normal", mean=[0.9] * 5, sd=0.3)
    assert a == b
    values = np.array([list(p.as_dict().values()) for p in a])
    assert values.min() >= 0 and values.max() <= 1 and values.mean() > 0.7


def test_population_profiles_first_then_sampled_then_cohorts_in_order():
    spec = PopulationSpec.model_validate({
        "size": 5,
        "profiles": [{"name": "Ann", "mbti": {"type": "intj"}}],
        "cohorts": [{"count": 2, "policy": {"name": "always", "option": "x"}}],
    })
    members = build_population(spec, np.random.default_rng(0))
    assert members[0].persona.name == "Ann" and members[0].persona.mbti.type == "INTJ"
    assert [m.policy is not None for m in members] == [True, True, False, False, False]
    assert len({m.persona.name for m in members}) == 5
