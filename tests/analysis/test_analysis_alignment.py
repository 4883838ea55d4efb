"""Alignment measures on hand-built texts and on dialogues with a planted copy rate."""

import itertools

import numpy as np
import polars as pl
import pytest

from analysis.alignment import (
    alignment_effects,
    category_rates,
    conversation_alignment,
    lsm,
    surrogate_events,
    turn_alignment,
)
from analysis.synthetic import events_frame, synthetic_dialogues
from analysis.text import LSM_CATEGORIES, fit_semantic_space, load_categories, tokenize


def _dialogue(texts, group="g", run="r"):
    return [{"run_id": run, "round": 0, "stage": "chat", "kind": "message", "group": group,
             "turn": t, "agent": "ab"[t % 2], "partners": ["ba"[t % 2]], "text": x}
            for t, x in enumerate(texts)]


def test_tokenizer_and_wordlists():
    assert tokenize("I don't KNOW, it\u2019s the 2nd time.") == [
        "i", "don't", "know", "it's", "the", "2nd", "time"]
    cats = load_categories()
    assert tuple(cats) == LSM_CATEGORIES and len(cats) == 9
    assert {"the", "a", "an"} == cats["articles"]
    assert "don't" in cats["negations"] and "don't" in cats["auxiliary_verbs"]


def test_category_rates_known_counts():
    ev = events_frame(_dialogue(["I went to the shop and I did not buy it", "ok"]))
    row = category_rates(ev).row(0, named=True)
    assert row["n_tokens"] == 11
    assert row["rate_personal_pronouns"] == pytest.approx(200 / 11)   # i, i
    assert row["rate_articles"] == pytest.approx(100 / 11)            # the
    assert row["rate_negations"] == pytest.approx(100 / 11)           # not
    assert row["rate_impersonal_pronouns"] == pytest.approx(100 / 11)  # it
    assert row["rate_auxiliary_verbs"] == pytest.approx(100 / 11)     # did
    assert row["rate_prepositions"] == pytest.approx(100 / 11)        # to
    assert row["rate_conjunctions"] == pytest.approx(100 / 11)        # and


def test_identical_texts_give_lsm_and_alignment_one():
    text = "we think that the plan is not bad but it could be much better for all of us"
    ev = events_frame(_dialogue([text] * 4))
    assert lsm(ev)["lsm"].to_list() == [pytest.approx(1.0)]
    ta = turn_alignment(ev)
    assert ta.height == 3
    for m in ("rlsm", "lexical_cosine", "lexical_overlap", "semantic_cosine"):
        assert ta[m].to_list() == pytest.approx([1.0] * 3)


def test_lsm_formula_by_hand():
    # a: 2 articles of 4 tokens (50 %), b: 1 article of 4 tokens (25 %); other categories 0
    ev = events_frame(_dialogue(["the cat the dog", "a zebra runs fast"]))
    expected = (8 + (1 - 25 / (75 + 0.0001))) / 9
    assert lsm(ev)["lsm"][0] == pytest.approx(expected)
    # rLSM skips categories absent from both turns: only articles are defined
    assert turn_alignment(ev)["rlsm"][0] == pytest.approx(1 - 25 / 75)


def test_lsm_is_undefined_without_function_words_and_counted():
    # Neither speaker uses a function word: the formula would give 1.0 on joint absence.
    ev = events_frame(_dialogue(["zebra runs fast", "cat dog bird"]))
    assert lsm(ev)["lsm"].to_list() == [None]
    conv = conversation_alignment(ev).row(0, named=True)
    assert np.isnan(conv["lsm_pairs"]) and np.isnan(conv["lsm_group"])
    assert conv["lsm_undefined"] == 1
    # an all-empty corpus is undefined too, not an error
    empty = events_frame(_dialogue(["", ""]))
    assert lsm(empty)["lsm"].to_list() == [None]
    assert np.isnan(conversation_alignment(empty)["semantic_cosine"][0])


def _group(texts_by_speaker):
    return [{"run_id": "r", "round": 0, "stage": "chat", "kind": "message", "group": "g",
             "turn": t, "agent": a, "partners": [], "text": x}
            for t, (a, x) in enumerate(texts_by_speaker)]


def test_group_lsm_is_member_versus_rest_and_pair_lsm_is_the_pair_mean():
    # Only articles differ: a 2/4 = 50 %, b 1/4 = 25 %, c 1/4 = 25 %; eight categories are
    # absent from everyone and score 1 each (Ireland & Pennebaker's formula).
    ev = events_frame(_group([("a", "the cat the dog"), ("b", "a zebra runs fast"),
                              ("c", "the big red car")]))
    ab = (8 + 1 - 25 / (75 + 0.0001)) / 9          # a vs b, and a vs c
    bc = (8 + 1 - 0 / (50 + 0.0001)) / 9           # b vs c: 1
    rest = (8 + 1 - 12.5 / (62.5 + 0.0001)) / 9    # b (or c) vs the other two pooled: 37.5 %
    conv = conversation_alignment(ev).row(0, named=True)
    assert conv["lsm_pairs"] == pytest.approx((ab + ab + bc) / 3)
    # Gonzales et al. (2010): a against b + c pooled (25 %) is ab; b and c against the rest
    assert conv["lsm_group"] == pytest.approx((ab + rest + rest) / 3)


def test_rlsm_averages_categories_over_turns_first():
    # b's first target turn defines articles only (2/3), its second articles (1) and
    # prepositions (0: used by the previous turn, absent from b's). Category first:
    # b = mean(mean(2/3, 1), 0) = 5/12, not the turn-first mean(2/3, (1 + 0) / 2) = 7/12.
    # a's one target turn: articles 1, prepositions 0 (absent from the previous turn) -> 1/2.
    ev = events_frame(_dialogue(["the cat the dog", "a zebra runs fast", "the cat to dog",
                                 "the zebra runs fast"]))
    assert turn_alignment(ev)["rlsm"].to_list() == pytest.approx([2 / 3, 1 / 2, 1 / 2])
    assert conversation_alignment(ev)["rlsm"][0] == pytest.approx((5 / 12 + 1 / 2) / 2)


def test_semantic_space_cosines():
    texts = ["red apple fruit", "green apple fruit", "fast car engine", "red apple fruit"]
    emb = fit_semantic_space(texts, n_components=2).transform(texts)
    assert emb[0] @ emb[3] == pytest.approx(1.0)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]


def test_surrogates_keep_speakers_and_change_order():
    ev = synthetic_dialogues(np.random.default_rng(0), 0.3, n_runs=2, n_conversations=3)
    sh = surrogate_events(ev, "shuffle", np.random.default_rng(1))
    real = ev.sort("run_id", "group", "turn")
    sh = sh.sort("run_id", "group", "turn")
    assert sh["agent"].to_list() == real["agent"].to_list()
    # each speaker keeps its own multiset of texts
    for (a,), g in real.group_by(["agent"]):
        assert sorted(g["text"]) == sorted(sh.filter(pl.col("agent") == a)["text"])
    assert sh["text"].to_list() != real["text"].to_list()
    cross = surrogate_events(ev, "cross", np.random.default_rng(1))
    b_real = set(real.filter(pl.col("agent").str.ends_with("b"))["text"])
    b_cross = cross.join(real.select("run_id", "group", "turn", "agent", pl.col("text")
                                     .alias("orig")), on=["run_id", "group", "turn", "agent"])
    b_cross = b_cross.filter(pl.col("agent").str.ends_with("b"))
    assert (b_cross["text"] != b_cross["orig"]).all()
    assert set(b_cross["text"]) <= b_real


def test_alignment_effect_rises_with_copy_rate_and_is_null_at_zero():
    # Calibration measured separately: over 40 null seeds of this design, each interval
    # covered 0 in 90-97.5 % of seeds (percentile bootstrap over 12 runs, slightly liberal).
    measures = ("lexical_cosine", "lexical_overlap", "semantic_cosine", "rlsm", "lsm_pairs")
    rates = (0.0, 0.1, 0.3, 0.6)
    effects = {}
    for p in rates:
        rng = np.random.default_rng(42)
        ev = synthetic_dialogues(rng, p, n_runs=10, n_conversations=4, n_turns=8)
        res = alignment_effects(ev, rng, measures=measures, n_surrogates=5, n_boot=1000)
        effects[p] = {(r["measure"], r["baseline"]): r for r in res.iter_rows(named=True)}
    for key, r0 in effects[0.0].items():
        assert r0["ci_low"] <= 0.0 <= r0["ci_high"], (key, r0)
    assert effects[0.0][("lsm_pairs", "shuffle")]["effect"] == pytest.approx(0.0, abs=1e-12)
    rising = [(m, "cross") for m in measures] + [("lexical_cosine", "shuffle"),
                                                 ("lexical_overlap", "shuffle")]
    for key in rising:
        seq = [effects[p][key]["effect"] for p in rates]
        assert all(b > a for a, b in itertools.pairwise(seq)), (key, seq)
    for key in [(m, b) for m in measures[:3] for b in ("shuffle", "cross")]:
        assert effects[0.1][key]["ci_low"] > 0, key
    # planted truth: a fraction p of each turn is copied from the prime, so the share of the
    # target's word types found in the prime exceeds the cross baseline by about p
    for p in rates[1:]:
        assert effects[p][("lexical_overlap", "cross")]["effect"] == pytest.approx(p, abs=0.05)


def test_conversation_alignment_columns():
    ev = synthetic_dialogues(np.random.default_rng(0), 0.3, n_runs=1, n_conversations=2)
    out = conversation_alignment(ev)
    assert out.height == 2
    assert out["lexical_cosine"].is_between(0, 1).all()
