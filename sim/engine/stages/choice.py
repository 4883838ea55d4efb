"""Choice stages: every agent scores the options in one wave; payoffs resolve per pair."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.engine.stages.base import (
    Plan,
    StageContext,
    decided_by,
    event_row,
    prompt_hash,
    sit_out_rows,
)
from sim.engine.stages.formulas import member_values, parsed, payoff_for
from sim.requests import ScoreResult
from sim.scenario.options import offered_levels, option_value
from sim.scenario.spec import ChoiceStage, PayoffSpec

__all__ = ["canonical_logprobs", "group_payoff", "offered_options", "option_probabilities",
           "run_choice", "shown_order", "shown_orders"]


def option_probabilities(logprobs: Sequence[float]) -> list[float]:
    """Softmax of option log-likelihoods (``-inf`` gets probability 0)."""
    top = max(logprobs)
    weights = [math.exp(lp - top) if lp != -math.inf else 0.0 for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def _decide(stage: ChoiceStage, probs: list[float], rng: np.random.Generator) -> int:
    if stage.decision == "argmax":
        return int(np.argmax(probs))
    return int(rng.choice(len(probs), p=np.asarray(probs) / sum(probs)))


_SHUFFLE = 1  # rng_for key suffix of the option order (decisions use the bare keys)


def offered_options(stage: ChoiceStage, ctx: StageContext, agent: int) -> list[str]:
    """The options offered to one agent this round.

    All of the stage's choices, or, under a levels ``max_formula``, the levels at or below
    its value for this agent and world state (a prefix of the choices, so an option's index
    is the same in both).
    """
    levels = stage.levels
    if levels is None or levels.max_formula is None or ctx.world is None:
        return stage.choices
    bound = parsed(levels.max_formula).evaluate(ctx.world.names(ctx.round, agent))
    return offered_levels(stage.choices, bound)


def shown_order(stage: ChoiceStage, ctx: StageContext, agent: int, group: int,
                count: int | None = None) -> list[int] | None:
    """The canonical option indices in the order one request shows them.

    ``None`` for a ``fixed`` order; otherwise a permutation drawn from the request's own
    seeded stream, so every agent and round sees its own order. ``count``: how many options
    are offered (default: all of the stage's).
    """
    if stage.order == "fixed":
        return None
    rng = ctx.rng_for(agent, group, _SHUFFLE)
    return [int(i) for i in rng.permutation(count or len(stage.choices))]


def shown_orders(stage: ChoiceStage, ctx: StageContext, agent: int, group: int,
                 count: int | None = None) -> list[list[int] | None]:
    """Every order one agent's choice is scored in: one, or k for ``balanced``.

    ``balanced`` turns the request's seeded permutation into a cyclic Latin square: order
    ``r`` shows option ``base[(j + r) % k]`` at position ``j``, so across the k orders every
    option stands in every position exactly once.
    """
    base = shown_order(stage, ctx, agent, group, count)
    if stage.order != "balanced" or base is None:
        return [base]
    k = len(base)
    return [[base[(j + r) % k] for j in range(k)] for r in range(k)]


def canonical_logprobs(logprobs: Sequence[float], order: Sequence[int] | None
                       ) -> list[float]:
    """Log-probabilities of the shown options, put back in the stage's canonical order."""
    if order is None:
        return list(logprobs)
    out = [0.0] * len(order)
    for shown, canonical in enumerate(order):
        out[canonical] = logprobs[shown]
    return out


def group_payoff(payoff: PayoffSpec, mine: int, theirs: Sequence[int]) -> float:
    """What a choice earns against the partners' choices (canonical option indices)."""
    if payoff.coordination is not None:
        same = bool(theirs) and all(t == mine for t in theirs)
        return float(payoff.coordination.success if same else payoff.coordination.failure)
    assert payoff.matrix is not None
    return float(sum(payoff.matrix[mine][t] for t in theirs))


def run_choice(stage: ChoiceStage, ctx: StageContext) -> Plan:
    """Plan of a choice stage: one wave of score requests, then decisions and payoffs.

    Only the stage's ``actors`` choose; with a formula payoff every group member is paid
    (members who did not choose get an ``outcome`` row).
    """
    groups = ctx.grouping.groups
    agents = ctx.agents
    options = stage.choices
    slots = [(g, a) for g, members in enumerate(groups) for a in members
             if ctx.acts(agents[a], stage.actors)]
    offer = {(g, a): offered_options(stage, ctx, a) for g, a in slots}
    orders = {(g, a): shown_orders(stage, ctx, a, g, len(offer[g, a])) for g, a in slots}
    asked = [(g, a, order) for g, a in slots for order in orders[g, a]]
    requests = [
        agents[a].choice_request(stage, [agents[b] for b in groups[g] if b != a],
                                 ctx.round, ctx.rounds, order, options=offer[g, a],
                                 canonical_policy=stage.order == "balanced")
        for g, a, order in asked
    ]
    answers = yield list(requests)
    picks: dict[tuple[int, int], int | None] = {}
    probs_of: dict[tuple[int, int], list[float]] = {}
    per_order: dict[tuple[int, int], list[list[float]]] = {}
    results: dict[tuple[int, int], list[ScoreResult]] = {}
    first: dict[tuple[int, int], Any] = {}
    for (g, a, _order), request, result in zip(asked, requests, answers, strict=True):
        assert isinstance(result, ScoreResult)
        results.setdefault((g, a), []).append(result)
        first.setdefault((g, a), request)
    for g, a in slots:
        per_order[g, a] = _order_probabilities(orders[g, a], results[g, a])
        if len(per_order[g, a]) != len(orders[g, a]):
            picks[g, a] = None  # one failed order fails the choice: a partial mean is biased
            continue
        got = per_order[g, a]
        probs_of[g, a] = [sum(col) / len(got) for col in zip(*got, strict=True)]
        picks[g, a] = _decide(stage, probs_of[g, a], ctx.rng_for(a, g))
    rows: list[dict[str, Any]] = []
    for g, a in slots:
        request, result = first[g, a], results[g, a][0]
        error = next((r.error for r in results[g, a] if r.error is not None), result.error)
        agent, partners = agents[a], [agents[b] for b in groups[g] if b != a]
        mine = picks[g, a]
        theirs = [picks.get((g, b)) for b in groups[g] if b != a and (g, b) in picks]
        payoff = None
        if stage.payoff is not None and stage.payoff.formula is None and mine is not None \
                and all(t is not None for t in theirs):
            payoff = group_payoff(stage.payoff, mine, theirs)  # type: ignore[arg-type]
        if mine is not None:
            agent.apply_choice(stage, ctx.round, options[mine], partners,
                               [options[t] for t in theirs if t is not None], payoff)
        rows.append(event_row(
            agent, kind="choice", group=f"g{g:03d}", partners=partners,
            choice=options[mine] if mine is not None else None, choice_index=mine,
            options=list(offer[g, a]), option_probs=probs_of.get((g, a), []),
            shown_order=orders[g, a][0], payoff=payoff,
            **_order_columns(orders[g, a], per_order[g, a]), prompt_hash=prompt_hash(request),
            prompt_tokens=result.num_prompt_tokens,
            value=option_value(options, mine) if mine is not None else None,
            correct=(options[mine] == stage.answer) if stage.answer is not None
            and mine is not None else None,
            status="ok" if mine is not None else "failed", error=error,
            decided_by=decided_by(result),
        ))
    if (stage.payoff is not None and stage.payoff.formula is not None) or stage.outcomes:
        rows = _formula_rows(stage, ctx, picks, rows)
    return rows + sit_out_rows(ctx)


def _order_probabilities(orders: list[list[int] | None], results: list[ScoreResult]
                         ) -> list[list[float]]:
    """Each order's option probabilities in canonical order; empty if any request failed."""
    if any(r.error is not None or not r.logprobs for r in results):
        return []
    return [option_probabilities(canonical_logprobs(r.logprobs, order))
            for order, r in zip(orders, results, strict=True)]


def _order_columns(orders: list[list[int] | None], probs: list[list[float]]
                   ) -> dict[str, Any]:
    """``shown_orders`` and ``order_probs`` of a row (left out for a fixed order)."""
    if orders[0] is None:
        return {}
    return {"shown_orders": orders, "order_probs": probs or None}


def _formula_rows(stage: ChoiceStage, ctx: StageContext,
                  picks: dict[tuple[int, int], int | None], rows: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """Pay formula payoffs and evaluate outcomes for every member of every group.

    A group in which an actor's request failed pays nobody (its payoffs stay null).
    """
    agents, options = ctx.agents, stage.choices
    by_agent = {(r["group"], r["agent"]): r for r in rows}
    out = list(rows)
    for g, members in enumerate(ctx.grouping.groups):
        mine = {a: picks[g, a] for a in members if (g, a) in picks}
        if any(v is None for v in mine.values()):
            continue
        values = {a: option_value(options, i) for a, i in mine.items() if i is not None}
        group = [agents[a] for a in members]
        for a in members:
            agent = group[members.index(a)]
            partners = [m for m in group if m is not agent]
            correct = stage.answer is not None and a in mine \
                and options[mine[a]] == stage.answer  # type: ignore[index]
            names = member_values(agent, group, values, ctx.round, ctx.params,
                                  correct=correct)
            payoff = payoff_for(stage.payoff, agent.role(ctx.round), names) \
                if stage.payoff is not None else None
            outcomes = {k: parsed(f).evaluate(names) for k, f in stage.outcomes.items()}
            row = by_agent.get((f"g{g:03d}", agent.key))
            if row is None:
                if payoff is None and not outcomes:
                    continue
                row = event_row(agent, kind="outcome", group=f"g{g:03d}", partners=partners)
                out.append(row)
                if payoff is not None:
                    agent.apply_payoff(stage, ctx.round, partners, payoff, their=[
                        options[i] for b, i in mine.items() if i is not None and b != a])
            elif payoff is not None:
                agent.score += payoff
                _amend_payoff(agent, payoff)
            row.update(payoff=payoff, score=agent.score,
                       outcomes=json.dumps(outcomes, sort_keys=True) if outcomes else None)
    return out


def _amend_payoff(agent: Any, payoff: float) -> None:
    """Put a formula payoff into the moment :meth:`Agent.apply_choice` just remembered."""
    moments = agent.memory.moments
    if moments:
        moments[-1] = dataclasses.replace(moments[-1], payoff=payoff)
