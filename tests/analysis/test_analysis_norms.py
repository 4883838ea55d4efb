"""Cooperation, entropy, consensus, convergence and sanctions on frames with known answers."""

import math

import numpy as np
import polars as pl
import pytest

from analysis.naming import collective_bias, consensus, convergence_time, naming_success
from analysis.norms import (
    choice_entropy,
    conditional_cooperation,
    cooperation_rate,
    norm_violations,
)
from analysis.synthetic import events_frame, repeated_game


def _by_policy(events, agents):
    cc = conditional_cooperation(events, by=("run_id", "replica", "agent"))
    return {p: cc.filter(pl.col("agent") == a).row(0, named=True)
            for a, p in zip(agents["agent"], agents["policy"], strict=True)
            if p != "random"}


def test_tit_for_tat_grim_and_always_defect_exact():
    ev, ag = repeated_game([("tit_for_tat", "random"), ("grim_trigger", "random"),
                            ("always_defect", "random"), ("always_cooperate", "random")],
                           40, np.random.default_rng(7))
    res = _by_policy(ev, ag)
    tft, grim, ad, ac = (res[k] for k in ("tit_for_tat", "grim_trigger", "always_defect",
                                          "always_cooperate"))
    assert tft["n_after_c"] > 5 and tft["n_after_d"] > 5 and tft["n_forgive"] > 2
    assert (tft["p_c_given_c"], tft["p_c_given_d"], tft["cc"]) == (1.0, 0.0, 1.0)
    assert tft["forgiveness"] == 1.0 and tft["grim_share"] == 0.0
    assert grim["p_c_given_d"] == 0.0 and grim["forgiveness"] == 0.0
    assert grim["grim_share"] == 1.0 and grim["n_forgive"] > 2
    assert (ad["p_c_given_c"], ad["p_c_given_d"], ad["forgiveness"]) == (0.0, 0.0, 0.0)
    assert (ac["p_c_given_c"], ac["p_c_given_d"], ac["forgiveness"]) == (1.0, 1.0, 1.0)
    assert ac["grim_share"] == 0.0


def test_grim_against_cooperator_and_tft_mirror():
    ev, ag = repeated_game([("grim_trigger", "always_cooperate"),
                            ("tit_for_tat", "alternate")], 10, np.random.default_rng(0))
    res = _by_policy(ev, ag)
    assert res["grim_trigger"]["p_c_given_c"] == 1.0
    assert res["grim_trigger"]["p_c_given_d"] is None  # never met a defection
    # TFT against C,D,C,D,...: plays C,C,D,C,D,... -> every conditional is exact
    assert res["tit_for_tat"]["p_c_given_c"] == 1.0
    assert res["tit_for_tat"]["p_c_given_d"] == 0.0
    assert res["tit_for_tat"]["n_after_c"] == 5 and res["tit_for_tat"]["n_after_d"] == 4
    rate = cooperation_rate(ev)
    # round 0: grim C, coop C, tft C, alternate C -> 1.0; round 1: C, C, C, D -> 0.75
    assert rate["cooperation"].to_list()[:2] == [1.0, 0.75]


def _pd(moves_a, moves_b):
    rows = []
    for t, (a, b) in enumerate(zip(moves_a, moves_b, strict=True)):
        for me, other, m in (("a", "b", a), ("b", "a", b)):
            rows.append({"run_id": "r", "round": t, "stage": "pd", "kind": "choice",
                         "group": "g", "agent": me, "partners": [other],
                         "choice": "cooperate" if m == "C" else "defect"})
    return events_frame(rows)


def test_hand_built_conditional_cooperation():
    ev = _pd("CCDCD", "CDCCD")
    a = conditional_cooperation(ev, by=("run_id", "replica", "agent")).row(0, named=True)
    # a's moves at t=1..4 = C,D,C,D after partner C,D,C,C
    assert a["p_c_given_c"] == pytest.approx(2 / 3)
    assert a["p_c_given_d"] == 0.0
    assert a["cc"] == pytest.approx(2 / 3)
    # forgiveness: partner D at t=1, C at t=2 -> a's move at t=3 is C
    assert a["forgiveness"] == 1.0 and a["n_forgive"] == 1
    # a cooperated at t=3 after b's first defection (t=1): not grim
    assert a["grim_share"] == 0.0
    run = conditional_cooperation(ev).row(0, named=True)
    assert run["n_after_c"] + run["n_after_d"] == 8


def _choices(choices, rnd=0, groups=None, options=("x", "y", "z")):
    groups = groups or [f"g{i}" for i in range(len(choices))]
    return [{"run_id": "r", "round": rnd, "stage": "s", "kind": "choice", "group": g,
             "agent": f"a{i}", "choice": c, "options": list(options)}
            for i, (c, g) in enumerate(zip(choices, groups, strict=True))]


def test_entropy_consensus_success():
    ev = events_frame(_choices(["x", "x", "y", "z"], 0, ["g0", "g0", "g1", "g1"])
                      + _choices(["x", "x", "x", "x"], 1, ["g0", "g0", "g1", "g1"]))
    h = choice_entropy(ev)
    expected = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert h["entropy"].to_list() == pytest.approx([expected, 0.0])
    assert h["entropy_norm"][0] == pytest.approx(expected / math.log(3))
    c = consensus(ev)
    assert c["consensus"].to_list() == [0.5, 1.0]
    assert c["top_choice"].to_list() == ["x", "x"]
    s = naming_success(ev)
    assert s["success"].to_list() == [0.5, 1.0]
    assert s["n_interactions"].to_list() == [2, 2]


def test_convergence_time_threshold_window_and_censoring():
    per = pl.DataFrame({"run_id": ["a"] * 6 + ["b"] * 3, "replica": [0] * 9,
                        "round": [0, 1, 2, 3, 4, 5, 0, 1, 2],
                        "v": [0.2, 0.95, 0.5, 0.95, 1.0, 1.0, 0.1, 0.2, 0.3]})
    out = convergence_time(per, "v", 0.9).sort("run_id")
    assert out["round"].to_list() == [3, None]
    assert out["converged"].to_list() == [True, False]
    assert convergence_time(per, "v", 0.9, window=0)["round"][0] == 1
    assert convergence_time(per, "v", 0.9, window=2)["round"][0] == 3
    assert convergence_time(per, "v", 0.9, window=3)["round"][0] is None


def test_norm_violation_and_sanction_rates():
    rows = []
    contrib = {"a": "10", "b": "10", "c": "2", "d": "0"}
    for ag, x in contrib.items():
        rows.append({"run_id": "r", "round": 0, "stage": "contribute", "kind": "choice",
                     "group": "g", "agent": ag, "choice": x})
    # a punishes c (amount 3), b punishes nobody (0), d punishes a (antisocial)
    for ag, tgt, amt in (("a", "c", "3"), ("b", "d", "0"), ("d", "a", "2")):
        rows.append({"run_id": "r", "round": 0, "stage": "punish", "kind": "choice",
                     "group": "g", "agent": ag, "partners": [tgt], "choice": amt})
    out = norm_violations(events_frame(rows), "contribute", "punish").row(0, named=True)
    # norm = median(10, 10, 2, 0) = 6 -> c and d violate
    assert out["violation_rate"] == 0.5
    assert out["sanction_rate"] == 0.5       # c sanctioned, d not
    assert out["antisocial_rate"] == 0.5     # a sanctioned, b not


def test_collective_bias():
    final = pl.DataFrame({"convention": ["x"] * 8 + ["y"] * 2})
    prior = pl.DataFrame({"choice": ["x", "y", "z"] * 10})
    res = collective_bias(final, prior, ["x", "y", "z"])
    q = np.array([0.8, 0.2])
    assert res["kl_prior"] == pytest.approx(0.0, abs=1e-12)
    assert res["bias"] == pytest.approx(float(np.sum(q * np.log(q * 3))))
    assert res["p_value"] < 0.05


def _cc_by_agent(ev):
    cc = conditional_cooperation(ev, by=("run_id", "replica", "agent"))
    return {r["agent"]: r for r in cc.iter_rows(named=True)}


def test_tit_for_tat_against_always_defect_is_not_grim():
    # TFT: C D D D against ALLD: D D D D. The partner never cooperates again, so nothing
    # tells TFT from grim trigger: neither agent is eligible, the share is undefined.
    res = _cc_by_agent(_pd("CDDD", "DDDD"))
    assert res["a"]["grim_share"] is None and res["a"]["n_grim_eligible"] is None
    # Against X = D C C C: grim (C D D D) never forgives -> grim; TFT (C D C C) does.
    grim = _cc_by_agent(_pd("CDDD", "DCCC"))["a"]
    assert (grim["grim_share"], grim["n_grim_eligible"]) == (1.0, 1)
    tft = _cc_by_agent(_pd("CDCC", "DCCC"))["a"]
    assert (tft["grim_share"], tft["n_grim_eligible"]) == (0.0, 1)


def test_in_a_group_the_partner_move_is_all_other_members():
    # Three players. b: C C C; c: D C C; a: C D C. For a, P_0 = D (c defected) and
    # P_1 = C (both cooperated): a defected after D and cooperated after C.
    moves = {"a": "CDC", "b": "CCC", "c": "DCC"}
    rows = [{"run_id": "r", "round": t, "stage": "pg", "kind": "choice", "group": "g",
             "agent": me, "partners": [o for o in moves if o != me],
             "choice": "cooperate" if ms[t] == "C" else "defect"}
            for t in range(3) for me, ms in moves.items()]
    a = _cc_by_agent(events_frame(rows))["a"]
    assert (a["p_c_given_c"], a["n_after_c"]) == (1.0, 1)
    assert (a["p_c_given_d"], a["n_after_d"]) == (0.0, 1)
    assert a["cc"] == 1.0
