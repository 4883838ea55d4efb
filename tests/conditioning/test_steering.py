from __future__ import annotations

import pytest
import torch

from agents.instruments import load_instrument
from agents.persona import BigFive, Mbti
from agents.steering import (
    big_five_coefficients,
    default_layers,
    load_pairs,
    mbti_coefficients,
    recipe_hash,
)
from agents.survey import Respondent, SurveyDesign, administer
from sim.backends.hf.steering_directions import load_or_compute_directions
from sim.errors import RunError, TraitLabError
from sim.run.conditioning import prepare_steering

TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


@pytest.fixture
def steered(fresh_backend, tmp_path):
    dirs = prepare_steering(fresh_backend, cache_dir=tmp_path)
    return fresh_backend, dirs


def test_pairs_cover_every_trait():
    pairs = load_pairs()
    for trait in TRAITS:
        assert len(pairs["pairs"][trait]) >= 5
        assert all(hi != lo for hi, lo in pairs["pairs"][trait])


def test_bad_pairs_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "pairs.json"
    bad.write_text('{"questions": ["q"], "pairs": {"openness": [["a", "b"]]}}')
    with pytest.raises(TraitLabError, match=r"pairs\.conscientiousness"):
        load_pairs(bad)


def test_default_layer_is_at_forty_percent_depth():
    assert default_layers(30) == (12,)
    assert default_layers(2) == (1,)


def test_directions_are_cached_per_weights_and_recipe(steered, tmp_path):
    backend, dirs = steered
    hidden = backend.model.config.hidden_size
    assert set(dirs.directions) == set(TRAITS)
    assert all(tuple(v.shape) == (hidden,) for v in dirs.directions.values())
    assert not dirs.cached and dirs.path is not None and dirs.path.exists()
    again = load_or_compute_directions(backend, cache_dir=tmp_path)
    assert again.cached and again.path == dirs.path
    for trait in TRAITS:
        assert torch.equal(again.directions[trait], dirs.directions[trait])
    other = load_or_compute_directions(backend, layers=(0,), cache_dir=tmp_path)
    assert not other.cached and other.path != dirs.path
    assert recipe_hash(load_pairs(), (0,)) != recipe_hash(load_pairs(), dirs.layers)


def test_coefficients_from_big_five_and_mbti():
    strengths = dict.fromkeys(TRAITS, 2.0)
    assert big_five_coefficients(BigFive(0.5, 0.5, 0.5, 0.5, 0.5), strengths) == ()
    coefs = dict(big_five_coefficients(BigFive(1.0, 0.0, 0.75, 0.5, 0.5), strengths))
    assert coefs == {"openness": 2.0, "conscientiousness": -2.0, "extraversion": 1.0}
    assert big_five_coefficients(BigFive(1, 1, 1, 1, 1), dict.fromkeys(TRAITS, 0.0)) == ()
    m = dict(mbti_coefficients(Mbti("ENFP", (1.0, 1.0, 1.0, 1.0)), strengths))
    assert m["extraversion"] == pytest.approx(2 * 0.74)
    assert m["openness"] == pytest.approx(2 * 0.72)
    assert m["agreeableness"] == pytest.approx(2 * 0.44)
    assert m["conscientiousness"] == pytest.approx(-2 * 0.49)
    assert "neuroticism" not in m


def _rows(backend, respondents, items=("MINI01", "MINI02", "MINI03")):
    inst = load_instrument("mini-ipip")
    backend.forget_prefixes()  # each administration starts cold, as each engine step does
    rows = administer(backend, inst, respondents, SurveyDesign(items=items))
    return {(r["agent"], r["item_id"], r["order"]): (r["expected"], r["probs"]) for r in rows}


def test_zero_steering_equals_no_steering(steered):
    backend, _dirs = steered
    zero = big_five_coefficients(BigFive(0.9, 0.1, 0.9, 0.1, 0.9), dict.fromkeys(TRAITS, 0.0))
    plain = _rows(backend, [Respondent("a", "You are Ada.")])
    zeroed = _rows(backend, [Respondent("a", "You are Ada.", zero)])
    explicit = _rows(backend, [Respondent("a", "You are Ada.", (("openness", 0.0),))])
    assert plain == zeroed == explicit


def test_steered_respondent_in_a_batch_equals_it_alone(steered):
    """Same prompt, different steering in one batch: no prefix cache is shared across them."""
    backend, _dirs = steered
    target = Respondent("t", "You are Ada.", (("extraversion", 3.0), ("neuroticism", -2.0)),
                        paraphrase=0)
    others = [Respondent("u", "You are Ada.", paraphrase=0),
              Respondent("v", "You are Ada.", (("extraversion", -3.0),), paraphrase=0),
              Respondent("w", "You are Bo.", (("openness", 1.5),), paraphrase=0)]
    alone = _rows(backend, [target])
    mixed = _rows(backend, [others[0], target, *others[1:]])
    inside = {k: v for k, v in mixed.items() if k[0] == "t"}
    assert inside.keys() == alone.keys()
    for key, (expected, probs) in alone.items():  # fp32: equal up to padding round-off
        assert inside[key][0] == pytest.approx(expected, abs=1e-5)
        assert inside[key][1] == pytest.approx(probs, abs=1e-5)
    unsteered = [v for k, v in mixed.items() if k[0] == "u"]
    assert unsteered != list(alone.values())  # the steering does change the answers


def test_scripted_backend_cannot_steer():
    from sim.backends.scripted import ScriptedBackend

    with pytest.raises(RunError, match="hf backend"):
        prepare_steering(ScriptedBackend())
