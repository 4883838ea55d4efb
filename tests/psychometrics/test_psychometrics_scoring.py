"""Scoring, acquiescence, validity and response-quality metrics on synthetic responders."""

import numpy as np
import polars as pl
import pytest

from agents.instruments import BIG_FIVE, load_instrument
from analysis.psychometrics import (
    acquiescence_index,
    convergent_validity,
    domain_scores,
    manipulation_check,
    option_order_symmetry,
    refusal_rate,
    reverse_key,
)
from tests.psychometrics.responders import draw_traits, simulate_survey

N = 200


def truth_corr(scores: pl.DataFrame, truth: pl.DataFrame, trait: str) -> float:
    joined = scores.filter(pl.col("trait") == trait).join(truth, on=["agent", "trait"])
    return float(np.corrcoef(joined["score"].to_numpy(), joined["theta"].to_numpy())[0, 1])


@pytest.fixture(scope="module")
def truth() -> pl.DataFrame:
    return draw_traits(N, BIG_FIVE, seed=1)


@pytest.mark.parametrize("name", ["ipip-50", "ipip-neo-120"])
def test_scorer_recovers_traits(truth, name):
    survey = simulate_survey(load_instrument(name), truth, seed=2, item_reliability=0.6,
                             acquiescence=0.3)
    scores = domain_scores(survey)
    assert scores.height == N * 5
    for trait in BIG_FIVE:
        assert truth_corr(scores, truth, trait) > 0.9, trait


def test_forgetting_reverse_keying_would_fail(truth):
    inst = load_instrument("ipip-50")
    survey = simulate_survey(inst, truth, seed=3, item_reliability=0.6)
    good = domain_scores(survey)
    naive = domain_scores(survey.with_columns(pl.lit(1).alias("keyed")))
    # extraversion is 5 + / 5 - keyed: an unkeyed mean carries no trait signal
    assert truth_corr(good, truth, "extraversion") > 0.9
    assert abs(truth_corr(naive, truth, "extraversion")) < 0.3


def test_reverse_key_formula():
    df = pl.DataFrame({"keyed": [1, -1, -1, 1], "expected": [5.0, 5.0, 2.0, None],
                       "refused": [False, False, False, True]})
    out = reverse_key(df)["scored"].to_list()
    assert out == [5.0, 1.0, 4.0, None]
    seven = reverse_key(df.head(2), scale_min=1, scale_max=7)["scored"].to_list()
    assert seven == [5.0, 3.0]


@pytest.mark.parametrize("bias", [-0.5, 0.0, 0.4])
def test_acquiescence_recovers_planted_bias(truth, bias):
    # a high-trait population: trait content must cancel within each trait, not on average
    shifted = truth.with_columns(pl.col("theta") + 0.8)
    survey = simulate_survey(load_instrument("ipip-neo-120"), shifted, seed=4,
                             item_reliability=0.5, acquiescence=bias, scale=0.8)
    acq = acquiescence_index(survey)
    assert acq.height == N
    assert acq["acquiescence"].mean() == pytest.approx(bias, abs=0.05)
    if bias:
        assert np.sign(acq["acquiescence"].median()) == np.sign(bias)


def test_acquiescence_per_respondent(truth):
    rng = np.random.default_rng(5)
    bias = rng.uniform(-0.6, 0.6, N)
    survey = simulate_survey(load_instrument("ipip-neo-120"), truth, seed=6,
                             item_reliability=0.5, acquiescence=bias, scale=0.8)
    acq = acquiescence_index(survey).sort("agent")
    assert np.corrcoef(acq["acquiescence"].to_numpy(), bias)[0, 1] > 0.9
    per = acquiescence_index(survey, per_trait=True)
    assert set(per["trait"].unique()) == set(BIG_FIVE)


def test_manipulation_check(truth):
    survey = simulate_survey(load_instrument("ipip-50"), truth, seed=7, item_reliability=0.6)
    check = manipulation_check(domain_scores(survey), truth)
    assert check.height == 5
    assert (check["spearman_rho"] > 0.85).all()
    assert (check["cohens_d"] > 1.5).all()
    assert (check["n_high"] + check["n_low"] == N).all()
    shuffled = truth.with_columns(
        pl.col("assigned").shuffle(seed=8).over("trait"))
    null = manipulation_check(domain_scores(survey), shuffled)
    assert (null["spearman_rho"].abs() < 0.25).all()


def test_convergent_validity(truth):
    a = simulate_survey(load_instrument("ipip-50"), truth, seed=9)
    b = simulate_survey(load_instrument("ipip-neo-120"), truth, seed=10)
    result = convergent_validity(pl.concat([a, b]), "ipip-50", "ipip-neo-120")
    assert set(result["trait"]) == set(BIG_FIVE)
    assert (result["r"] > 0.8).all()
    assert (result["discriminant_gap"] > 0.6).all()
    other = simulate_survey(load_instrument("ipip-neo-120"), draw_traits(N, BIG_FIVE, 11),
                            seed=12)
    unrelated = convergent_validity(pl.concat([a, other]), "ipip-50", "ipip-neo-120")
    assert (unrelated["r"].abs() < 0.3).all()


def test_option_order_symmetry(truth):
    inst = load_instrument("mini-ipip")
    fwd = simulate_survey(inst, truth, seed=13, order="asc")
    same = fwd.with_columns(pl.lit("desc").alias("order"))
    sym = option_order_symmetry(pl.concat([fwd, same]))
    assert sym["agreement"][0] == 1.0 and sym["mean_abs_shift"][0] == 0.0
    assert sym["correlation"][0] == pytest.approx(1.0)
    # descending order pulls every answer one point up (recency bias), clipped at 5
    shifted = same.with_columns(
        (pl.col("expected") + 1).clip(1, 5).alias("expected"),
        (pl.col("argmax") + 1).clip(1, 5).alias("argmax"))
    asym = option_order_symmetry(pl.concat([fwd, shifted]))
    n_top = (fwd["argmax"] == 5).sum()
    assert asym["n_pairs"][0] == fwd.height
    assert asym["agreement"][0] == pytest.approx(n_top / fwd.height)
    assert asym["mean_abs_shift"][0] == pytest.approx(1 - n_top / fwd.height)
    assert 0 < asym["mean_shift"][0] <= 1


def test_refusal_rate_and_refusals_not_imputed(truth):
    inst = load_instrument("ipip-50")
    survey = simulate_survey(inst, truth, seed=14, refuse_prob=0.1)
    rate = refusal_rate(survey)
    planted = survey["refused"].mean()
    assert rate["refusal_rate"][0] == pytest.approx(planted)
    assert 0.07 < planted < 0.13
    scores = domain_scores(survey)
    assert (scores["n_answers"] + scores["n_refused"] == 10).all()
    assert scores["n_refused"].sum() == survey["refused"].sum()
