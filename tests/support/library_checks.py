"""Outcome checks of the scenario library, read from a recorded run.

Each check takes a run's ``events`` and ``agents`` frames (and the scenario as a dict, as
:func:`analysis.io.load_run` gives it; the checks of scenarios with world state also take
its ``state`` frame) and returns the list of problems it found (empty: the run's outcomes
are consistent). The tests run every scenario on the scripted backend and
call these; a researcher can call them on any run of a scenario built the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

__all__ = [
    "CHECKS",
    "check_beauty_contest",
    "check_bipartite_rotation",
    "check_classroom",
    "check_commons",
    "check_dictator",
    "check_negotiation",
    "check_public_goods",
    "check_speed_dating",
    "check_trust",
    "check_trust_reputation",
    "check_ultimatum",
    "quiz_scores",
]

_TOL = 1e-6


def _rows(events: pl.DataFrame, stage: str, *kinds: str) -> pl.DataFrame:
    kinds = kinds or ("choice",)
    return events.filter((pl.col("stage") == stage) & pl.col("kind").is_in(list(kinds)))


def check_public_goods(events: pl.DataFrame, agents: pl.DataFrame, scenario: Mapping[str, Any],
                       stage: str = "contribute") -> list[str]:
    """Every contributor earns ``endowment - value + multiplier * group_total / n``.

    So a group of 4 that contributes everything earns ``multiplier * endowment`` (32) each.
    """
    params = scenario.get("params", {})
    endowment, multiplier = params["endowment"], params["multiplier"]
    problems = []
    for (rnd, group), rows in _rows(events, stage).group_by(["round", "group"]):
        total, n = rows["value"].sum(), rows.height
        for row in rows.iter_rows(named=True):
            expected = endowment - row["value"] + multiplier * total / n
            if abs(row["payoff"] - expected) > _TOL:
                problems.append(f"round {rnd} {group} {row['agent']}: payoff {row['payoff']} "
                                f"!= {expected}")
        if n == 4 and (rows["value"] == endowment).all() \
                and not (rows["payoff"] - multiplier * endowment).abs().max() < _TOL:
            problems.append(f"round {rnd} {group}: full contribution did not pay "
                            f"{multiplier * endowment} each")
    return problems


def check_ultimatum(events: pl.DataFrame, agents: pl.DataFrame, scenario: Mapping[str, Any],
                    offer: str = "offer", respond: str = "respond") -> list[str]:
    """An accepted offer pays the responder the offer and the proposer the rest.

    A rejection pays both 0.
    """
    pie = scenario.get("params", {}).get("pie", 10)
    offers = _rows(events, offer).select("replica", "round", "group", pl.col("value")
                                         .alias("offered"))
    paid = _rows(events, respond, "choice", "outcome").join(
        offers, on=["replica", "round", "group"], how="left")
    problems = []
    for (rnd, group), rows in paid.group_by(["round", "group"]):
        answer = rows.filter(pl.col("kind") == "choice")
        if answer.height != 1:
            problems.append(f"round {rnd} {group}: {answer.height} responses")
            continue
        accepted = answer["choice"][0] == "accept"
        offered = answer["offered"][0]
        for row in rows.iter_rows(named=True):
            responder = row["kind"] == "choice"
            expected = (offered if responder else pie - offered) if accepted else 0.0
            if row["payoff"] is None or abs(row["payoff"] - expected) > _TOL:
                problems.append(f"round {rnd} {group} {row['agent']}: payoff {row['payoff']} "
                                f"!= {expected} ({'accepted' if accepted else 'rejected'})")
    return problems


def check_bipartite_rotation(events: pl.DataFrame, agents: pl.DataFrame, stage: str,
                             roles: tuple[str, str]) -> list[str]:
    """Pairs of a bipartite stage cross the two roles and never meet twice too early.

    Checked over the first ``L`` rounds (``L``: members of the larger role), in which every
    cross pair meets exactly once.
    """
    role_of = dict(zip(agents["agent"], agents["role"], strict=True))
    sizes = [sum(1 for r in role_of.values() if r == role) for role in roles]
    rows = _rows(events, stage, "choice", "message", "outcome")
    problems, seen = [], set()
    pairs = rows.select("round", "agent", "partners").unique(["round", "agent"])
    for row in pairs.sort("round").iter_rows(named=True):
        if row["round"] > max(sizes):
            break
        (partner,) = row["partners"]
        if {role_of[row["agent"]], role_of[partner]} != set(roles):
            problems.append(f"round {row['round']}: {row['agent']} meets {partner} of "
                            "the same role")
        key = (row["agent"], partner)
        if key in seen:
            problems.append(f"round {row['round']}: {row['agent']} meets {partner} again")
        seen.add(key)
    if max(sizes) <= rows["round"].max() and len(seen) != 2 * min(sizes) * max(sizes):
        problems.append(f"{len(seen) // 2} pairs met, expected {min(sizes) * max(sizes)}")
    return problems


def check_speed_dating(events: pl.DataFrame, agents: pl.DataFrame, scenario: Mapping[str, Any],
                       stage: str = "decide") -> list[str]:
    """A match (outcome ``match`` and payoff 1) iff both said yes; every pair dates once."""
    decide = _rows(events, stage)
    said = {(r["round"], r["agent"]): r["choice"] for r in decide.iter_rows(named=True)}
    problems = []
    for row in decide.iter_rows(named=True):
        (partner,) = row["partners"]
        mutual = row["choice"] == "yes" and said[row["round"], partner] == "yes"
        match = json.loads(row["outcomes"])["match"]
        if bool(match) != mutual or row["payoff"] != float(mutual):
            problems.append(f"round {row['round']} {row['agent']}-{partner}: match {match}, "
                            f"payoff {row['payoff']}, mutual yes {mutual}")
    roles = tuple(r["name"] for r in scenario["roles"][:2])
    return problems + check_bipartite_rotation(events, agents, stage, roles)  # type: ignore[arg-type]


def check_negotiation(events: pl.DataFrame, agents: pl.DataFrame, scenario: Mapping[str, Any],
                      stage: str = "bargain") -> list[str]:
    """A deal's price lies between the seller's and the buyer's reserve.

    Payoffs are the surpluses (0 without a deal). This holds by construction for the
    scripted ``haggle`` policy; for language-model runs a price outside the reserves is a
    finding (a deal outside the zone of agreement, or an offer misread), not a bug.
    """
    reserve = {a: json.loads(p)["reserve"] for a, p in zip(agents["agent"], agents["private"],
                                                           strict=True) if p}
    problems = []
    for row in _rows(events, stage, "outcome").iter_rows(named=True):
        out = json.loads(row["outcomes"])
        (partner,) = row["partners"]
        mine, theirs = reserve[row["agent"]], reserve[partner]
        buyer = row["role"] == "buyer"
        if not out["deal"]:
            if row["payoff"] != 0:
                problems.append(f"{row['agent']}: no deal but payoff {row['payoff']}")
            continue
        price = out["price"]
        low, high = (theirs, mine) if buyer else (mine, theirs)
        if not low - _TOL <= price <= high + _TOL:
            problems.append(f"round {row['round']} {row['agent']}: price {price} outside "
                            f"reserves {low}..{high}")
        surplus = mine - price if buyer else price - mine
        if abs(row["payoff"] - surplus) > _TOL:
            problems.append(f"{row['agent']}: payoff {row['payoff']} != surplus {surplus}")
    return problems


def quiz_scores(events: pl.DataFrame) -> pl.DataFrame:
    """Correct answers per agent over every stage with an ``answer`` (column ``score``)."""
    return (events.filter(pl.col("correct").is_not_null())
            .group_by("replica", "agent").agg(pl.col("correct").sum().alias("score"),
                                              pl.len().alias("questions"))
            .sort("replica", "agent"))


def check_classroom(events: pl.DataFrame, agents: pl.DataFrame, scenario: Mapping[str, Any]
                    ) -> list[str]:
    """Quiz rows are correct iff the choice is the answer, and pay 1 iff correct."""
    answers = {s["id"]: s["answer"] for s in scenario["stages"] if s.get("answer")}
    problems = []
    for row in events.filter(pl.col("stage").is_in(list(answers))
                             & (pl.col("kind") == "choice")).iter_rows(named=True):
        correct = row["choice"] == answers[row["stage"]]
        if row["correct"] != correct or row["payoff"] != float(correct):
            problems.append(f"{row['stage']} {row['agent']}: chose {row['choice']}, "
                            f"correct {row['correct']}, payoff {row['payoff']}")
    return problems


def _paired(events: pl.DataFrame, first: str, second: str) -> pl.DataFrame:
    """Rows of ``second`` (choices and outcomes) with the same group's ``first`` value."""
    firsts = _rows(events, first).select("replica", "round", "group",
                                          pl.col("value").alias("first"))
    return _rows(events, second, "choice", "outcome").join(
        firsts, on=["replica", "round", "group"], how="left")


def check_dictator(events: pl.DataFrame, agents: pl.DataFrame, scenario: Mapping[str, Any],
                   stage: str = "give") -> list[str]:
    """The dictator keeps ``pie - gift``, the recipient gets the gift; one gift per pair."""
    pie = scenario.get("params", {}).get("pie", 10)
    problems = []
    for (rnd, group), rows in _rows(events, stage, "choice", "outcome").group_by(
            ["round", "group"]):
        gift = rows.filter(pl.col("kind") == "choice")
        if gift.height != 1:
            problems.append(f"round {rnd} {group}: {gift.height} gifts")
            continue
        given = gift["value"][0]
        for row in rows.iter_rows(named=True):
            expected = pie - given if row["kind"] == "choice" else given
            if abs(row["payoff"] - expected) > _TOL:
                problems.append(f"round {rnd} {group} {row['agent']}: payoff {row['payoff']} "
                                f"!= {expected}")
    return problems


def check_trust(events: pl.DataFrame, agents: pl.DataFrame, scenario: Mapping[str, Any],
                send: str = "send", back: str = "return") -> list[str]:
    """Investor: ``e - sent + share * m * sent``; trustee: ``e + (1 - share) * m * sent``.

    So the pair's total is ``2e + (m - 1) * sent``, whatever the trustee returns.
    """
    params = scenario.get("params", {})
    e, m = params["endowment"], params["multiplier"]
    problems = []
    for (rnd, group), rows in _paired(events, send, back).group_by(["round", "group"]):
        answer = rows.filter(pl.col("kind") == "choice")
        if answer.height != 1:
            problems.append(f"round {rnd} {group}: {answer.height} returns")
            continue
        sent, share = answer["first"][0], answer["value"][0] / 100
        for row in rows.iter_rows(named=True):
            trustee = row["kind"] == "choice"
            expected = e + (1 - share) * m * sent if trustee else e - sent + share * m * sent
            if abs(row["payoff"] - expected) > _TOL:
                problems.append(f"round {rnd} {group} {row['agent']}: payoff {row['payoff']} "
                                f"!= {expected}")
        if abs(rows["payoff"].sum() - (2 * e + (m - 1) * sent)) > _TOL:
            problems.append(f"round {rnd} {group}: the pair's total is not 2e + (m-1) sent")
    return problems


def check_beauty_contest(events: pl.DataFrame, agents: pl.DataFrame,
                         scenario: Mapping[str, Any], stage: str = "guess") -> list[str]:
    """Every guess earns ``max(0, 10 - |guess - p * group mean| / 5)``; payoffs lie in [0, 10]."""
    p = scenario.get("params", {})["p"]
    problems = []
    for (rnd, group), rows in _rows(events, stage).group_by(["round", "group"]):
        target = p * rows["value"].mean()
        for row in rows.iter_rows(named=True):
            expected = max(0.0, 10 - abs(row["value"] - target) / 5)
            if abs(row["payoff"] - expected) > _TOL or not 0 <= row["payoff"] <= 10:
                problems.append(f"round {rnd} {group} {row['agent']}: payoff {row['payoff']} "
                                f"!= {expected}")
    return problems


def _before(state: pl.DataFrame, name: str, initial: float,
            agent: str | None = None) -> pl.DataFrame:
    """A state variable's value before and after every step, per replica (and agent)."""
    rows = state.filter(pl.col("name") == name)
    rows = rows.filter(pl.col("agent") == agent) if agent is not None \
        else rows.filter(pl.col("scope") == "global")
    return rows.sort("replica", "step").with_columns(
        before=pl.col("value").shift(1, fill_value=initial).over("replica"))


def check_commons(events: pl.DataFrame, agents: pl.DataFrame, scenario: Mapping[str, Any],
                  state: pl.DataFrame | None = None, stage: str = "fish") -> list[str]:
    """Payoff = catch, within the offered levels; with ``state``, the lake's rule and the stop.

    After each catch the lake is ``min(capacity, 2 * (lake - total catch))`` (at least 0),
    and no step follows one that left it below ``collapse``.
    """
    params = scenario.get("params", {})
    problems = []
    fish = _rows(events, stage)
    for row in fish.iter_rows(named=True):
        if row["payoff"] is None or abs(row["payoff"] - row["value"]) > _TOL:
            problems.append(f"step {row['step']} {row['agent']}: payoff {row['payoff']} "
                            f"!= catch {row['value']}")
        if row["value"] > max(float(o) for o in row["options"]):
            problems.append(f"step {row['step']} {row['agent']}: caught {row['value']} "
                            "above the offered levels")
    if state is None:
        return problems
    totals = fish.group_by("replica", "step").agg(total=pl.col("value").sum())
    lake = _before(state, "lake", scenario["state"]["lake"]["initial"]).join(
        totals, on=["replica", "step"], how="left").with_columns(pl.col("total").fill_null(0))
    for row in lake.iter_rows(named=True):
        expected = max(0.0, min(params["capacity"], 2 * (row["before"] - row["total"]))) \
            if row["stage"] == stage else row["before"]
        if abs(row["value"] - expected) > _TOL:
            problems.append(f"replica {row['replica']} step {row['step']}: lake {row['value']}"
                            f" != {expected}")
        if row["before"] < params["collapse"]:
            problems.append(f"replica {row['replica']} step {row['step']}: ran on after the "
                            "lake collapsed")
    return problems


def check_trust_reputation(events: pl.DataFrame, agents: pl.DataFrame,
                           scenario: Mapping[str, Any], state: pl.DataFrame | None = None,
                           back: str = "return") -> list[str]:
    """The trust game's payoffs; with ``state``, each image and wealth after every step.

    After the ``back`` stage a trustee's image moves by +1 (it returned at least ``fair``
    percent) or -1, within -5..5; everyone's wealth grows by the step's payoffs.
    """
    problems = check_trust(events, agents, scenario)
    if state is None:
        return problems
    fair = scenario["params"]["fair"]
    steps = events.group_by("replica", "step", "agent").agg(
        paid=pl.col("payoff").fill_null(0).sum(),
        returned=pl.col("value").filter(pl.col("stage") == back, pl.col("kind") == "choice")
        .first())
    for key in agents["agent"].to_list():
        for name, initial in (("image", 0.0), ("wealth", 0.0)):
            rows = _before(state, name, initial, agent=key).join(
                steps.filter(pl.col("agent") == key), on=["replica", "step"], how="left")
            for row in rows.iter_rows(named=True):
                if name == "wealth":
                    expected = row["before"] + (row["paid"] or 0.0)
                elif row["returned"] is None:
                    expected = row["before"]
                else:
                    move = 1 if row["returned"] >= fair else -1
                    expected = min(5.0, max(-5.0, row["before"] + move))
                if abs(row["value"] - expected) > _TOL:
                    problems.append(f"replica {row['replica']} step {row['step']} {key}: "
                                    f"{name} {row['value']} != {expected}")
    return problems


CHECKS: dict[str, Callable[..., list[str]]] = {
    "public_goods": check_public_goods,
    "ultimatum": check_ultimatum,
    "speed_dating": check_speed_dating,
    "negotiation": check_negotiation,
    "classroom": check_classroom,
    "dictator": check_dictator,
    "trust": check_trust,
    "beauty_contest": check_beauty_contest,
    "commons": check_commons,
    "trust_reputation": check_trust_reputation,
}
"""The outcome check of each scenario file (by file stem)."""
