"""The scenario library: every scenario's outcomes on the scripted backend, and the
language features they rely on (levels, formulas, roles, offers, broadcast, sanctions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from agents.policies import haggle_message
from agents.roles import assign_roles, draw_private, role_in_round
from analysis.io import load_run
from sim.backends.scripted import policy_probabilities
from sim.cli.main import main
from sim.engine.offers import detect_act, extract_offer
from sim.engine.stages.sanction import sanction_payoffs
from sim.errors import ScenarioError
from sim.requests import PolicyCall, PolicyFacts
from sim.run.runner import run_scenario
from sim.scenario.formula import Formula, FormulaError
from sim.scenario.loader import load_scenario
from sim.scenario.spec import PolicySpec, RoleSpec, RunConfig, ScenarioSpec
from sim.scenario.validate import check_scenario
from tests.support.library_checks import CHECKS, quiz_scores

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
LIBRARY = ("public_goods", "ultimatum", "speed_dating", "negotiation", "classroom", "dictator",
           "trust", "beauty_contest", "commons", "trust_reputation")
STATEFUL = ("commons", "trust_reputation")


def _raw(name: str) -> dict[str, Any]:
    return yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text())


def _run(tmp_path: Path, raw: dict[str, Any], *, seed: int = 0, steps: int | None = None):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    outcome = run_scenario(path, RunConfig(backend="scripted", seed=seed, steps=steps,
                                           out=tmp_path / "runs"))
    run = load_run(outcome.path)
    assert run.manifest["status"] == "complete"
    assert (run.events["status"] == "ok").all()
    return run


def _everyone(raw: dict[str, Any], policy: dict[str, Any]) -> dict[str, Any]:
    raw["population"]["cohorts"] = [{"name": "scripted", "fraction": 1.0, "policy": policy}]
    return raw


# ------------------------------------------------------------------ every scenario, scripted
@pytest.mark.parametrize("name", LIBRARY)
@pytest.mark.parametrize("seed", [0, 1])
def test_scenario_outcomes_are_consistent(tmp_path, name, seed):
    run = _run(tmp_path, _raw(name), seed=seed)
    assert CHECKS[name](run.events, run.agents, run.scenario) == []


@pytest.mark.parametrize("name", STATEFUL)
def test_state_follows_the_scenarios_update_rules(tmp_path, name):
    run = _run(tmp_path, _raw(name), seed=1)
    assert not run.state.is_empty()
    assert CHECKS[name](run.events, run.agents, run.scenario, state=run.state) == []


def test_full_contribution_group_of_four_earns_32_each(tmp_path):
    raw = _everyone(_raw("public_goods"), {"name": "always", "option": "20"})
    run = _run(tmp_path, raw, steps=2)
    contrib = run.events.filter(pl.col("stage") == "contribute")
    assert contrib.height == 16 and (contrib["value"] == 20).all()
    assert (contrib["payoff"] == 32.0).all()
    assert {json.loads(o)["group_total"] for o in contrib["outcomes"]} == {80.0}


def test_sanctions_cost_the_punisher_and_fine_the_target():
    pay = sanction_payoffs({0: 1, 1: None, 2: 1, 3: 0}, cost=1, fine=3)
    assert pay == {0: -1 - 3, 1: -6, 2: -1, 3: -1}


def test_punishment_moves_scores(tmp_path):
    run = _run(tmp_path, _raw("public_goods"), steps=2)
    punish = run.events.filter(pl.col("stage") == "punish")
    assert punish["kind"].unique().to_list() == ["sanction"]
    assert punish["payoff"].sum() < 0  # costs and fines only take points away
    assert set(punish["options"][0]) - {"nobody"}  # names of the other members


def test_ultimatum_rejection_pays_zero_to_both(tmp_path):
    raw = _everyone(_raw("ultimatum"), {"name": "threshold", "threshold": 5, "option": "accept"})
    run = _run(tmp_path, raw, steps=4)
    offers = run.events.filter(pl.col("stage") == "offer")
    assert (offers["value"] == 0).all()  # threshold proposers offer nothing...
    paid = run.events.filter(pl.col("stage") == "respond")
    assert (paid.filter(pl.col("kind") == "choice")["choice"] == "reject").all()
    assert set(paid["kind"]) == {"choice", "outcome"}  # ...proposers are paid too
    assert (paid["payoff"] == 0).all()
    assert CHECKS["ultimatum"](run.events, run.agents, run.scenario) == []


def test_ultimatum_roles_alternate(tmp_path):
    run = _run(tmp_path, _raw("ultimatum"), steps=4)
    offers = run.events.filter(pl.col("stage") == "offer")
    first = set(offers.filter(pl.col("round") == 1)["agent"])
    second = set(offers.filter(pl.col("round") == 2)["agent"])
    assert len(first) == 6 and first.isdisjoint(second) and len(second) == 6


def test_threshold_policy_accepts_offers_at_or_above_t():
    def accepts(offered: float) -> bool:
        call = PolicyCall(spec=PolicySpec(name="threshold", threshold=4, option="accept"),
                          facts=PolicyFacts(partner_values=(("offer", offered),)))
        return policy_probabilities(call, ["reject", "accept"]) == [0.0, 1.0]

    assert [accepts(x) for x in (3, 4, 7)] == [False, True, True]


def test_speed_dating_every_pair_meets_once_and_matches_are_mutual(tmp_path):
    run = _run(tmp_path, _raw("speed_dating"))
    decide = run.events.filter(pl.col("stage") == "decide")
    pairs = {frozenset((a, p[0])) for a, p in zip(decide["agent"], decide["partners"],
                                                    strict=True)}
    assert len(pairs) == 100 and decide.height == 200
    assert CHECKS["speed_dating"](run.events, run.agents, run.scenario) == []
    matches = decide.filter(pl.col("payoff") == 1)
    assert 0 < matches.height < decide.height


def test_negotiation_deals_lie_within_both_reserves(tmp_path):
    run = _run(tmp_path, _everyone(_raw("negotiation"), {"name": "haggle"}))
    outcomes = run.events.filter(pl.col("kind") == "outcome")
    deals = [json.loads(o) for o in outcomes["outcomes"]]
    assert sum(d["deal"] for d in deals) > 0
    assert CHECKS["negotiation"](run.events, run.agents, run.scenario) == []
    messages = run.events.filter(pl.col("kind") == "message")
    assert messages["offer"].drop_nulls().len() > 0
    private = [json.loads(p) for p in run.agents["private"]]
    assert all("reserve" in p for p in private)


def test_negotiation_stops_at_acceptance(tmp_path):
    run = _run(tmp_path, _everyone(_raw("negotiation"), {"name": "haggle"}))
    messages = run.events.filter(pl.col("kind") == "message")
    for (_, _), rows in messages.group_by(["round", "group"]):
        accepted = [i for i, t in enumerate(rows.sort("turn")["text"]) if "accept" in t]
        if accepted:
            assert accepted[0] == rows.height - 1  # nothing is said after the deal


def test_haggle_concedes_toward_its_reserve_and_accepts_within_it():
    def say(**facts: Any) -> str:
        return haggle_message(PolicySpec(name="haggle"),
                              PolicyFacts(private=(("reserve", 80),), **facts))

    assert say(role="buyer") == "I offer 56."
    assert say(role="buyer", my_offer=56, partner_offer=95) == "I offer 63."
    assert say(role="buyer", my_offer=63, partner_offer=79) == "I accept your offer of 79."
    assert say(role="seller") == "I offer 104."
    assert say(role="seller", my_offer=81, partner_offer=60) == "I offer 81."


def test_classroom_quiz_is_scored(tmp_path):
    run = _run(tmp_path, _raw("classroom"))
    assert CHECKS["classroom"](run.events, run.agents, run.scenario) == []
    scores = quiz_scores(run.events)
    assert scores.height == 12 and (scores["questions"] == 3).all()
    quiz = run.events.filter(pl.col("stage").is_in(["q1", "q2", "q3"])
                             & (pl.col("kind") == "choice"))
    paid = quiz.group_by("agent").agg(pl.col("payoff").sum()).sort("agent")
    assert paid["payoff"].to_list() == scores.sort("agent")["score"].cast(float).to_list()
    teacher = run.agents.filter(pl.col("role") == "teacher")["agent"].to_list()
    assert teacher == ["a000"]
    lesson = run.events.filter(pl.col("stage") == "lesson")
    assert lesson["kind"].to_list() == ["broadcast"] and lesson["agent"][0] == "a000"
    discuss = run.events.filter((pl.col("stage") == "discuss") & (pl.col("kind") == "sit_out"))
    assert discuss["agent"].to_list() == ["a000"]  # students only, in groups of 4


def test_classroom_qa_is_led_by_the_teacher(tmp_path):
    run = _run(tmp_path, _raw("classroom"), steps=2)
    qa = run.events.filter(pl.col("stage") == "qa").sort("turn")
    assert qa["role"][0] == "teacher" and qa.height == 7


def test_game_master_broadcast_reaches_every_member(tmp_path):
    raw = _raw("classroom")
    raw["stages"][0] = {"id": "lesson", "kind": "broadcast",
                        "groups": {"by": "all"}, "prompt": "Round {round}: class begins."}
    run = _run(tmp_path, raw, steps=1)
    (row,) = run.events.filter(pl.col("stage") == "lesson").iter_rows(named=True)
    assert row["agent"] == "gm" and row["text"] == "Round 1: class begins."
    assert len(row["partners"]) == 13


# ------------------------------------------------------------------------- language pieces
def test_formula_evaluates_and_refuses_code():
    f = Formula.parse("endowment - value + multiplier * sum_values / n")
    assert f.evaluate({"endowment": 20, "value": 20, "multiplier": 1.6, "sum_values": 80,
                       "n": 4}) == 32.0
    assert Formula.parse("max(0, a - b) if a > b else -1").evaluate({"a": 1, "b": 3}) == -1
    assert Formula.parse("x / 0").evaluate({"x": 1}) == 0.0
    assert str(Formula.parse("d * (p - r)").evaluate({"d": 0, "p": 0, "r": 60})) == "0.0"
    for bad in ("__import__('os')", "a.b()", "(1).real", "a[0]", "'text'", "lambda: 1",
                "open(1)", "x := 1", "min"):
        with pytest.raises(FormulaError):
            Formula.parse(bad)
    with pytest.raises(FormulaError, match="unknown name"):
        Formula.parse("value + bonus", {"value"})
    # a dotted name is one name looked up whole (state.lake), never an attribute access
    with pytest.raises(FormulaError, match=r"unknown name\(s\) value\.__class__"):
        Formula.parse("value.__class__", {"value"})


@pytest.mark.parametrize(("text", "offer", "act"), [
    ("I offer 55.", 55.0, None),
    ("How about $1,200 for it?", 1200.0, None),
    ("I accept your offer of 60.", 60.0, "accept"),
    ("I can't accept 40, my price is 70.", 70.0, "reject"),
    ("Deal!", None, "accept"),
    ("No deal, sorry.", None, "reject"),
    ("My final offer is 72.50 dollars", 72.5, None),
    ("Hello there", None, None),
])
def test_offers_and_acts_are_read_from_messages(text, offer, act):
    assert extract_offer(text) == offer
    assert detect_act(text) == act


def test_roles_are_assigned_deterministically_from_the_seed():
    roles = [RoleSpec(name="teacher", agents=[0]), RoleSpec(name="student", count=8),
             RoleSpec(name="helper", fraction=0.25)]
    a = assign_roles(roles, 12, np.random.default_rng(5))
    assert a == assign_roles(roles, 12, np.random.default_rng(5))
    assert a[0] == "teacher" and a.count("student") == 8 and a.count("helper") == 3
    assert a.count(None) == 0
    private = draw_private([RoleSpec(name="teacher", agents=[0],
                                     private={"budget": {"min": 10, "max": 20, "step": 5}})],
                           ["teacher", None], np.random.default_rng(0))
    assert private[0]["budget"] in (10, 15, 20) and private[1] == {}


def test_alternation_swaps_the_first_two_roles_on_even_rounds():
    roles = [RoleSpec(name="a", count=1), RoleSpec(name="b", count=1)]
    assert [role_in_round("a", r, roles, True) for r in (1, 2, 3)] == ["a", "b", "a"]
    assert role_in_round("a", 2, roles, False) == "a"


def _spec(raw: dict[str, Any]) -> ScenarioSpec:
    return ScenarioSpec.model_validate(raw)


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda r: r["stages"][0].update(actors=["proposr"]), "stages.0.actors.0",
     "did you mean 'proposer'"),
    (lambda r: r["stages"][1]["payoff"]["formula"].update(responder="value * bonus"),
     "stages.1.payoff.formula.responder", "unknown name"),
    (lambda r: r["stages"][0].update(options=["a", "b"]), "stages.0",
     "exactly one of 'options' or 'levels'"),
    (lambda r: r["stages"][1].update(answer="maybe"), "stages.1.answer", "not one of"),
    (lambda r: r["roles"][0].update(count=3), "roles.0", "exactly one of"),
    (lambda r: r["stages"][0]["groups"].pop("roles"), "stages.0.groups", "two 'roles'"),
])
def test_bad_library_fields_name_the_field(change, field, message):
    raw = _raw("ultimatum")
    change(raw)
    with pytest.raises(ScenarioError, match=message) as info:
        check_scenario(_spec(raw))
    assert info.value.field == field


def test_bad_formula_is_located_in_the_file(tmp_path):
    text = (SCENARIOS / "public_goods.yaml").read_text().replace(
        '"endowment - value', '"endowment.x - value')
    path = tmp_path / "pg.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "endowment.x" in t)
    assert info.value.line == line and "unknown name(s) endowment.x" in str(info.value)


def test_schema_covers_the_library_fields(capsys):
    assert main(["schema"]) == 0
    schema = capsys.readouterr().out
    for key in ('"roles"', '"alternate_roles"', '"params"', '"levels"', '"answer"',
                '"outcomes"', '"formula"', '"actors"', '"lead"', '"offers"', '"stop"',
                '"speaker"', '"broadcast"', '"sanction"', '"bipartite"', '"among"',
                '"private"', '"threshold"', '"haggle"', '"cost"', '"fine"'):
        assert key in schema, key


def test_agents_table_records_roles_and_private_values(tmp_path):
    run = _run(tmp_path, _raw("negotiation"), steps=1)
    assert run.agents["role"].value_counts().sort("role").to_dicts() == [
        {"role": "buyer", "count": 4}, {"role": "seller", "count": 4}]
    buyer = json.loads(run.agents.filter(pl.col("role") == "buyer")["private"][0])
    assert 60 <= buyer["reserve"] <= 100


def test_role_and_private_values_reach_the_prompt(tmp_path):
    loaded = load_scenario(SCENARIOS / "negotiation.yaml")
    from sim.engine.replica import Replica
    from sim.requests import SamplingParams

    sim = Replica(loaded.spec, seed=0)
    seller = next(a for a in sim.population if a.base_role == "seller")
    request = seller.dialogue_request(loaded.spec.stages[0], [sim.population[0]], [], 1, 4,
                                      SamplingParams(max_new_tokens=8, seed=0))
    text = request.messages[-1].content
    assert "Your role: seller." in text and f"reserve is {seller.private['reserve']:g}" in text


@pytest.mark.parametrize("name", ["ultimatum", "public_goods"])
def test_interrupted_library_run_resumes_to_identical_records(tmp_path, monkeypatch, name):
    """Interrupted between two stages of a round: this round's values must be restored."""
    from polars.testing import assert_frame_equal

    from sim.engine.loop import Engine
    from sim.run.runner import resume_run

    original = Engine.step

    def step_or_interrupt(self):
        if self.steps_done == 3:
            raise KeyboardInterrupt
        return original(self)

    path = SCENARIOS / f"{name}.yaml"
    monkeypatch.setattr(Engine, "step", step_or_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_scenario(path, RunConfig(backend="scripted", steps=6, out=tmp_path / "a"))
    monkeypatch.undo()
    (run_dir,) = (tmp_path / "a").glob("*/*")
    resumed = load_run(resume_run(run_dir).path).events
    reference = load_run(run_scenario(path, RunConfig(backend="scripted", steps=6,
                                                      out=tmp_path / "b")).path).events
    order = ["step", "agent", "kind", "group"]
    assert_frame_equal(resumed.drop("run_id").sort(order), reference.drop("run_id").sort(order))


def test_trust_reputation_images_follow_returns_and_reach_investors(tmp_path):
    # 6 fair agents (share 0.5: send 5, return 50%) and 6 stingy ones (share 0.2: return
    # 20%). Roles swap every round, so in 6 rounds each is trustee 3 times: +3 and -3.
    raw = _raw("trust_reputation")
    raw["population"]["cohorts"] = [{"count": 6, "policy": {"name": "share", "p": 0.5}},
                                    {"count": 6, "policy": {"name": "share", "p": 0.2}}]
    run = _run(tmp_path, raw)
    last = run.state.filter(pl.col("name") == "image",
                            pl.col("step") == run.state["step"].max()).sort("agent")
    assert last["value"].to_list() == [3.0] * 6 + [-3.0] * 6
    assert CHECKS["trust_reputation"](run.events, run.agents, run.scenario,
                                      state=run.state) == []
    stricter = {**run.scenario, "params": {**run.scenario["params"], "fair": 60}}
    assert CHECKS["trust_reputation"](run.events, run.agents, stricter, state=run.state)
    texts = [json.loads(m)[-1]["content"] for m in run.prompts["messages"]]
    assert any("whose image score is 1." in t for t in texts)
    assert any("whose image score is -2." in t for t in texts)
    assert any("Your image score is -1." in t for t in texts)


def test_partner_state_fields_must_name_a_declared_agent_variable():
    raw = _raw("trust_reputation")
    raw["stages"][0]["prompt"] = "Their standing: {partner.state.standing}."
    with pytest.raises(ScenarioError, match=r"unknown template field \{partner.state."
                       r"standing\}.*\{partner.state.image\}") as info:
        check_scenario(_spec(raw))
    assert info.value.field == "stages.0.prompt"
