"""Drift analyzers on synthetic responders with planted traits, noise and drift."""

import numpy as np
import polars as pl
import pytest

from analysis.drift import (
    detect_drift,
    noise_floor,
    partner_contagion,
    persona_retention,
    profile_distance,
    reference_sem,
    reliable_change,
    trait_scores,
    trait_slopes,
)
from analysis.psychometrics import domain_scores
from analysis.stability import icc, icc_table, retest_stability
from analysis.synthetic import events_frame, synthetic_surveys

TRAITS = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]


def _targets(agents):
    return agents.unpivot(index=["run_id", "replica", "agent"], on=TRAITS, variable_name="trait",
                          value_name="p").with_columns((1 + 4 * pl.col("p")).alias("target"))


def test_reverse_keying_cancels_acquiescence_exactly():
    agents, surveys = synthetic_surveys(np.random.default_rng(0), n_agents=8, noise_sd=0.0,
                                        acquiescence_sd=0.25, profile_range=(0.3, 0.7))
    sc = trait_scores(surveys).join(_targets(agents), on=["run_id", "replica", "agent", "trait"])
    assert sc.height == 8 * 5 * 5
    assert sc["n_items"].unique().to_list() == [4]
    np.testing.assert_allclose(sc["score"], sc["target"], atol=1e-12)
    pd = profile_distance(trait_scores(surveys), agents)
    np.testing.assert_allclose(pd["distance"], 0.0, atol=1e-12)
    np.testing.assert_allclose(pd["profile_r"], 1.0, atol=1e-12)
    # without reverse keying the acquiescence would bias every score: check the keyed items
    raw = surveys.filter(pl.col("keyed") == 1).group_by("agent").agg(pl.col("expected").mean())
    assert raw.height == 8


def test_noise_floor_matches_planted_noise_and_rci_is_calibrated():
    sd, repeats = 0.4, 3
    _, surveys = synthetic_surveys(np.random.default_rng(1), n_runs=4, n_agents=25,
                                   noise_sd=sd, repeats=repeats, profile_range=(0.3, 0.7))
    nf = noise_floor(surveys)
    # one repeat's score averages 4 items x 2 orders = 8 answers; the score averages 3 repeats
    expected_sem = sd / np.sqrt(8 * repeats)
    np.testing.assert_allclose(nf["sem"], expected_sem, rtol=0.1)
    rc = reliable_change(trait_scores(surveys), nf).filter(pl.col("round") > 0)
    share = rc["reliable"].mean()
    assert 0.02 <= share <= 0.09, share  # nominal 5 % under no change


def test_planted_drift_is_detected_with_the_right_sign():
    drift = {"extraversion": 0.06, "neuroticism": -0.06}
    _, surveys = synthetic_surveys(np.random.default_rng(2), n_runs=3, n_agents=20,
                                   drift=drift)
    out = detect_drift(surveys)
    for t in TRAITS:
        rows = out.filter(pl.col("trait") == t)
        want = int(np.sign(drift.get(t, 0.0)))
        assert rows["direction"].to_list() == [want] * 3, (t, rows)
    slopes = trait_slopes(trait_scores(surveys), by=("trait",)).filter(
        pl.col("trait") == "extraversion").row(0, named=True)
    assert slopes["ci_low"] < 0.06 < slopes["ci_high"]
    rc = reliable_change(trait_scores(surveys), noise_floor(surveys))
    last = rc.filter(pl.col("round") == 8)
    assert last.filter(pl.col("trait") == "extraversion")["rci"].mean() > 1.96


def test_null_runs_flag_drift_at_most_five_percent():
    # per run/trait decision (Holm within run): at most 5 of 100 null runs flag each trait
    _, surveys = synthetic_surveys(np.random.default_rng(3), n_runs=100, n_agents=15,
                                   repeats=2)
    out = detect_drift(surveys)
    per_trait = out.group_by("trait").agg(pl.col("drift").sum())
    assert per_trait.height == 5
    assert (per_trait["drift"] <= 5).all(), per_trait
    # run level (any trait): family-wise rate <= alpha by construction (Holm); check the
    # long-run rate on 1,000 null runs: nominal 1 - (1 - 0.05/5)^5 = 4.9 %
    _, many = synthetic_surveys(np.random.default_rng(4), n_runs=1000, n_agents=10,
                                items_per_trait=2, repeats=1)
    runs = detect_drift(many).group_by("run_id").agg(pl.col("drift").any())
    rate = runs["drift"].mean()
    assert rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 1000), rate  # 0.064: 2 SE tolerance


def test_icc_against_shrout_fleiss_table():
    # Shrout & Fleiss (1979), 6 targets x 4 judges: ICC(2,1)=.29, ICC(3,1)=.71,
    # ICC(2,k)=.62, ICC(3,k)=.91
    x = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
                  [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
    res = icc(x)
    assert res["icc2_1"] == pytest.approx(0.29, abs=0.005)
    assert res["icc3_1"] == pytest.approx(0.71, abs=0.005)
    assert res["icc2_k"] == pytest.approx(0.62, abs=0.005)
    assert res["icc3_k"] == pytest.approx(0.91, abs=0.005)
    # a constant shift over occasions: consistency stays 1, absolute agreement drops
    y = np.column_stack([x[:, 0], x[:, 0] + 2])
    assert icc(y)["icc3_1"] == pytest.approx(1.0)
    assert icc(y)["icc2_1"] < 1.0


def test_icc_table_and_test_retest_on_stable_agents():
    _, surveys = synthetic_surveys(np.random.default_rng(4), n_agents=30, noise_sd=0.05)
    sc = trait_scores(surveys)
    tab = icc_table(sc)
    assert tab.height == 5 and (tab["icc3_1"] > 0.95).all()
    tr = retest_stability(sc, 0, 8)
    assert (tr["r"] > 0.95).all()
    assert (tr["mean_change"].abs() < 0.05).all()


def test_persona_retention_by_hand():
    def frame(rows):
        return pl.DataFrame(rows, schema=["run_id", "replica", "agent", "round", "trait",
                                          "score"], orient="row")
    sc = frame([("r", 0, "a", 0, "openness", 4.5), ("r", 0, "a", 5, "openness", 3.5)])
    base = frame([("b", 0, "x", 0, "openness", 3.0), ("b", 0, "y", 0, "openness", 2.0)])
    out = persona_retention(sc, base).sort("round")
    # default 2.5, initial offset 2.0; at round 5 the offset is 1.0 -> retention 0.5
    assert out["retention"].to_list() == [1.0, 0.5]
    assert out["default_pull"].to_list() == [0.0, 0.5]


def test_partner_contagion_recovers_gamma():
    rng = np.random.default_rng(5)
    gamma, rows, ev = 0.3, [], []
    for pair in range(40):
        a, b = f"a{pair}", f"b{pair}"
        s = {a: rng.uniform(1.5, 4.5), b: rng.uniform(1.5, 4.5)}
        for t in range(4):
            for ag in (a, b):
                rows.append(("r", 0, ag, t, "agreeableness", s[ag]))
            other = {a: b, b: a}
            s = {ag: s[ag] + gamma * (s[other[ag]] - s[ag]) + rng.normal(0, 0.01) for ag in s}
            for ag in (a, b):
                ev.append({"run_id": "r", "round": t + 1, "stage": "chat", "kind": "message",
                           "group": f"g{pair}", "agent": ag, "partners": [other[ag]],
                           "text": "hi"})
    sc = pl.DataFrame(rows, schema=["run_id", "replica", "agent", "round", "trait", "score"],
                      orient="row").with_columns(pl.col("replica").cast(pl.Int32))
    res = partner_contagion(sc, events_frame(ev)).row(0, named=True)
    assert res["gamma"] == pytest.approx(gamma, abs=0.01)
    assert res["n"] == 80 * 3


def _scores(rows):
    """Trait scores from (agent, round, score) triples for one run and trait."""
    return pl.DataFrame([{"run_id": "r", "replica": 0, "agent": a, "round": t,
                          "trait": "extraversion", "score": s, "n_items": 1}
                         for a, t, s in rows])


def test_reliable_change_never_flags_a_zero_change_or_an_unknown_error():
    # Score-mode repeats are identical, so the replicate SEM is 0 (or NaN): a zero change must
    # not be reliable and a non-zero change has no RCI, rather than NaN > 1.96 being true.
    scores = _scores([("a", 0, 3.0), ("a", 1, 3.0), ("b", 0, 3.0), ("b", 1, 3.5)])
    for sem in (0.0, float("nan"), None):
        noise = pl.DataFrame({"trait": ["extraversion"], "sem": [sem]},
                             schema={"trait": pl.String, "sem": pl.Float64})
        rc = reliable_change(scores, noise).sort("agent", "round")
        assert rc["rci"].to_list() == [0.0, 0.0, 0.0, None]
        assert rc["reliable"].to_list() == [False, False, False, None]


def test_reference_sem_is_jacobson_truax_on_a_hand_computed_sample():
    # Reference agents surveyed twice without interacting: first [1, 2, 3, 4], last
    # [1.5, 2, 3.5, 4]. SD_1 = 1.290994 (ddof 1); r_xx = 4.5 / sqrt(5 * 4.25) = 0.976187;
    # SEM = SD_1 * sqrt(1 - r_xx) = 0.199219; S_diff = sqrt(2) * SEM = 0.281738.
    ref = _scores([(a, t, s) for a, s0, s1 in
                   [("a", 1, 1.5), ("b", 2, 2), ("c", 3, 3.5), ("d", 4, 4)]
                   for t, s in ((0, s0), (3, s1))])
    sem = reference_sem(ref).row(0, named=True)
    assert sem["sd_first"] == pytest.approx(1.290994, abs=1e-6)
    assert sem["r_xx"] == pytest.approx(0.976187, abs=1e-6)
    assert sem["sem"] == pytest.approx(0.199219, abs=1e-6)
    # a change of 0.6 is reliable (RCI 2.1296), 0.5 is not (1.7747)
    study = _scores([("x", 0, 3.0), ("x", 1, 3.6), ("y", 0, 3.0), ("y", 1, 3.5)])
    rc = reliable_change(study, reference_sem(ref)).filter(pl.col("round") == 1).sort("agent")
    assert rc["rci"].to_list() == pytest.approx([2.129636, 1.774697], abs=1e-5)
    assert rc["reliable"].to_list() == [True, False]
    # identical retests (r_xx = 1) give no usable error, not a zero one
    same = _scores([(a, t, s) for a, s in [("a", 1), ("b", 2), ("c", 4)] for t in (0, 3)])
    assert reference_sem(same)["sem"].to_list() == [None]
    assert reference_sem(same, reliability=0.75)["sem"].to_list() == pytest.approx(
        [float(np.std([1, 2, 4], ddof=1)) * 0.5])


def _answers(rows, levels=5):
    """Survey rows (item, keyed, expected, refused) of one agent at round 0."""
    return pl.DataFrame([{"run_id": "r", "replica": 0, "agent": "a", "round": 0,
                          "instrument": "x", "trait": "extraversion", "item_id": i, "keyed": k,
                          "expected": x, "refused": r, "probs": [1.0 / levels] * levels}
                         for i, k, x, r in rows])


def test_trait_scores_reverse_key_on_the_scale_the_item_used():
    # On a 1-7 scale a reverse-keyed 7 scores 1 (1 + 7 - 7), not 6 - 7 = -1.
    seven = _answers([("i1", -1, 7.0, False), ("i2", 1, 5.0, False)], levels=7)
    assert trait_scores(seven)["score"].to_list() == [3.0]
    assert domain_scores(seven, by=("agent",))["score"].to_list() == [3.0]
    five = _answers([("i1", -1, 5.0, False), ("i2", 1, 5.0, False)])
    assert trait_scores(five)["score"].to_list() == [3.0]


def test_a_refusal_does_not_reweight_its_item_and_both_paths_agree():
    # Item 1 answered 5 in one order and refused in the other; item 2 answered 1 twice.
    # Items weigh equally: (5 + 1) / 2 = 3, not the row mean (5 + 1 + 1) / 3.
    rows = _answers([("i1", 1, 5.0, False), ("i1", 1, 2.0, True),
                     ("i2", 1, 1.0, False), ("i2", 1, 1.0, False)])
    assert trait_scores(rows)["score"].to_list() == [3.0]
    dom = domain_scores(rows, by=("agent",)).row(0, named=True)
    assert (dom["score"], dom["n_items"], dom["n_answers"], dom["n_refused"]) == (3.0, 2, 3, 1)


def test_trait_scores_carry_the_acquiescence_index_of_their_checkpoint():
    # One trait, + item answered 5 and - item answered 4 on a 1..5 scale: keyed scores 5 and
    # 2 (score 3.5); acquiescence = ((5 - 3) + (4 - 3)) / 2 = 1.5 (content cancels).
    rows = _answers([("i1", 1, 5.0, False), ("i2", -1, 4.0, False)])
    out = trait_scores(rows).row(0, named=True)
    assert (out["score"], out["acquiescence"]) == (3.5, 1.5)
    # on a 1..7 scale the midpoint is 4: ((7 - 4) + (5 - 4)) / 2 = 2
    seven = _answers([("i1", 1, 7.0, False), ("i2", -1, 5.0, False)], levels=7)
    assert trait_scores(seven)["acquiescence"].to_list() == [2.0]
