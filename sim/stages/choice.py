"""Choice stages: every agent scores the options in one wave; payoffs resolve per pair."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.backends.base import ScoreResult
from sim.spec import ChoiceStage, PayoffSpec
from sim.stages.base import Plan, StageContext, event_row, prompt_hash, sit_out_rows

__all__ = ["canonical_logprobs", "group_payoff", "option_probabilities", "run_choice",
           "shown_order"]


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


def shown_order(stage: ChoiceStage, ctx: StageContext, agent: int, group: int
                ) -> list[int] | None:
    """The canonical option indices in the order one request shows them.

    ``None`` without ``shuffle_options``; otherwise a permutation drawn from the request's
    own seeded stream, so every agent and round sees its own order.
    """
    if not stage.shuffle_options:
        return None
    rng = ctx.rng_for(agent, group, _SHUFFLE)
    return [int(i) for i in rng.permutation(len(stage.options))]


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
    """Plan of a choice stage: one wave of score requests, then decisions and payoffs."""
    slots = [(g, a) for g, members in enumerate(ctx.grouping.groups) for a in members]
    groups = ctx.grouping.groups
    agents = ctx.agents
    orders = {(g, a): shown_order(stage, ctx, a, g) for g, a in slots}
    requests = [
        agents[a].choice_request(stage, [agents[b] for b in groups[g] if b != a],
                                 ctx.round, ctx.rounds, orders[g, a])
        for g, a in slots
    ]
    results = yield list(requests)
    picks: dict[tuple[int, int], int | None] = {}
    probs_of: dict[tuple[int, int], list[float]] = {}
    for (g, a), result in zip(slots, results, strict=True):
        assert isinstance(result, ScoreResult)
        if result.error is not None or not result.logprobs:
            picks[g, a] = None
            continue
        probs = option_probabilities(canonical_logprobs(result.logprobs, orders[g, a]))
        probs_of[g, a] = probs
        picks[g, a] = _decide(stage, probs, ctx.rng_for(a, g))
    rows: list[dict[str, Any]] = []
    for (g, a), request, result in zip(slots, requests, results, strict=True):
        agent, partners = agents[a], [agents[b] for b in groups[g] if b != a]
        mine = picks[g, a]
        theirs = [picks[g, b] for b in groups[g] if b != a]
        payoff = None
        if stage.payoff is not None and mine is not None and all(t is not None for t in theirs):
            payoff = group_payoff(stage.payoff, mine, theirs)  # type: ignore[arg-type]
        if mine is not None:
            agent.apply_choice(stage, ctx.round, stage.options[mine], partners,
                               [stage.options[t] for t in theirs if t is not None], payoff)
        rows.append(event_row(
            agent, kind="choice", group=f"g{g:03d}", partners=partners,
            choice=stage.options[mine] if mine is not None else None, choice_index=mine,
            options=list(stage.options), option_probs=probs_of.get((g, a), []),
            shown_order=orders[g, a], payoff=payoff, prompt_hash=prompt_hash(request),
            prompt_tokens=result.num_prompt_tokens,
            status="ok" if mine is not None else "failed", error=result.error,
        ))
    return rows + sit_out_rows(ctx)
