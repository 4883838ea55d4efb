from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from agents.instruments import load_instrument
from agents.survey import (
    INSTRUCTIONS,
    Respondent,
    SurveyDesign,
    administer,
    parse_answer,
    score_row,
    survey_requests,
)
from analysis.psychometrics import acquiescence_index, domain_scores, manipulation_check
from analysis.reliability import alpha_from_matrix, item_matrix
from tests.conditioning.responders import SyntheticResponders

TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


def _population(n: int, seed: int = 0) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    return {f"You are person {i}.": dict(zip(TRAITS, rng.uniform(0, 1, 5), strict=True))
            for i in range(n)}


def _survey(truth, inst, **kw):
    backend = SyntheticResponders(inst, truth, **kw)
    resps = [Respondent(f"p{i}", system) for i, system in enumerate(truth)]
    rows = administer(backend, inst, resps, SurveyDesign())
    assigned = pl.DataFrame([{"run_id": "survey", "replica": 0, "agent": f"p{i}", "trait": t,
                              "assigned": v} for i, s in enumerate(truth)
                             for t, v in truth[s].items()])
    return pl.DataFrame(rows, infer_schema_length=None), assigned


def test_scorer_recovers_known_traits_through_reverse_keying():
    inst = load_instrument("ipip-50")
    df, assigned = _survey(_population(40), inst)
    mc = manipulation_check(domain_scores(df), assigned)
    assert mc["spearman_rho"].min() > 0.9
    assert mc["cohens_d"].min() > 2.0


def test_acquiescence_is_recovered_and_cancels_in_trait_scores():
    inst = load_instrument("ipip-50")
    truth = _population(30, seed=1)
    plain, assigned = _survey(truth, inst)
    biased, _ = _survey(truth, inst, bias=0.8)
    acq_plain = acquiescence_index(plain)["acquiescence"].mean()
    acq_biased = acquiescence_index(biased)["acquiescence"].mean()
    assert abs(acq_plain) < 0.15
    assert 0.5 < acq_biased - acq_plain < 1.0
    mc = manipulation_check(domain_scores(biased), assigned)
    assert mc["spearman_rho"].min() > 0.85


def test_alpha_follows_item_noise():
    inst = load_instrument("ipip-50")
    truth = _population(60, seed=2)
    alphas = []
    for noise in (0.2, 1.5):
        df, _ = _survey(truth, inst, noise=noise)
        x, _ = item_matrix(df.filter(pl.col("trait") == "extraversion"))
        alphas.append(alpha_from_matrix(x))
    assert alphas[0] > 0.9 > alphas[1] > 0.3


def test_controls_are_factors_on_every_row():
    inst = load_instrument("mini-ipip")
    resps = [Respondent(f"r{i}", f"You are {i}.") for i in range(3)]
    pairs = survey_requests(inst, resps, SurveyDesign(repeats=2))
    assert len(pairs) == 3 * 20 * 2 * 2
    assert {p["order"] for p, _ in pairs} == {"asc", "desc"}
    assert {p["paraphrase"] for p, _ in pairs} == {0, 1, 2}
    asc = next(r for p, r in pairs if p["order"] == "asc")
    desc = next(r for p, r in pairs if p["order"] == "desc")
    assert asc.options == ("1", "2", "3", "4", "5") and desc.options == ("5", "4", "3", "2", "1")
    text = desc.messages[-1].content
    assert text.index("5 = Very accurate") < text.index("1 = Very inaccurate")
    crossed = survey_requests(inst, resps[:1], SurveyDesign(paraphrase_by="crossed"))
    assert len(crossed) == 20 * 2 * len(INSTRUCTIONS)


def test_persona_prefix_comes_before_the_item():
    inst = load_instrument("mini-ipip")
    pairs = survey_requests(inst, [Respondent("r", "You are Ada.")], SurveyDesign())
    users = [r.messages[-1].content for p, r in pairs if p["order"] == "asc"]
    head = users[0].split("Statement: ")[0]
    assert all(u.startswith(head) for u in users)


def test_score_row_maps_descending_options_back_to_scale_values():
    inst = load_instrument("mini-ipip")
    probs = [0.02, 0.03, 0.05, 0.1, 0.6]
    asc = score_row(inst, "asc", [float(np.log(p)) for p in probs])
    desc = score_row(inst, "desc", [float(np.log(p)) for p in probs[::-1]])
    assert asc["argmax"] == desc["argmax"] == 5
    assert asc["expected"] == pytest.approx(desc["expected"])
    assert asc["entropy"] == pytest.approx(desc["entropy"])
    assert asc["mass"] == pytest.approx(0.8)
    assert asc["probs"] == pytest.approx([p / 0.8 for p in probs])


@pytest.mark.parametrize(("text", "value"), [
    ("4", 4), (" 2.", 2), ("5 - very accurate", 5), ("3)", 3),
    ("I think 4", None), ("6", None), ("", None), ("four", None), ("45", None),
])
def test_strict_parsing(text, value):
    assert parse_answer(text, 1, 5) == value


def test_generate_mode_reasks_and_records_refusals(tiny_backend):
    inst = load_instrument("mini-ipip")
    design = SurveyDesign(mode="generate", items=("MINI01", "MINI02"), orders=("asc",),
                          max_reasks=1)
    rows = administer(tiny_backend, inst, [Respondent("r", "You are Ada.")], design)
    assert len(rows) == 2
    for row in rows:  # a random tiny model: whatever it says is recorded, never imputed
        if row["refused"]:
            assert row["expected"] is None and row["reasks"] == 1 and row["error"]
        else:
            assert row["expected"] in (1.0, 2.0, 3.0, 4.0, 5.0)
