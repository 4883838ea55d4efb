"""Choice stages: every agent scores the options in one wave; payoffs resolve per pair."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.backends.base import ScoreResult
from sim.spec import ChoiceStage
from sim.stages.base import Plan, StageContext, event_row, prompt_hash, sit_out_rows

__all__ = ["option_probabilities", "run_choice"]


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


def run_choice(stage: ChoiceStage, ctx: StageContext) -> Plan:
    """Plan of a choice stage: one wave of score requests, then decisions and payoffs."""
    slots = [(g, a) for g, members in enumerate(ctx.grouping.groups) for a in members]
    groups = ctx.grouping.groups
    agents = ctx.agents
    requests = [
        agents[a].choice_request(stage, [agents[b] for b in groups[g] if b != a],
                                 ctx.round, ctx.rounds)
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
        probs = option_probabilities(result.logprobs)
        probs_of[g, a] = probs
        picks[g, a] = _decide(stage, probs, ctx.rng_for(a, g))
    rows: list[dict[str, Any]] = []
    for (g, a), request, result in zip(slots, requests, results, strict=True):
        agent, partners = agents[a], [agents[b] for b in groups[g] if b != a]
        mine = picks[g, a]
        theirs = [picks[g, b] for b in groups[g] if b != a]
        payoff = None
        if stage.payoff is not None and mine is not None and all(t is not None for t in theirs):
            payoff = float(sum(stage.payoff.matrix[mine][t] for t in theirs))  # type: ignore[index]
        if mine is not None:
            agent.apply_choice(stage, ctx.round, stage.options[mine], partners,
                               [stage.options[t] for t in theirs if t is not None], payoff)
        rows.append(event_row(
            agent, kind="choice", group=f"g{g:03d}", partners=partners,
            choice=stage.options[mine] if mine is not None else None, choice_index=mine,
            options=list(stage.options), option_probs=probs_of.get((g, a), []),
            payoff=payoff, prompt_hash=prompt_hash(request),
            prompt_tokens=result.num_prompt_tokens, cached_tokens=result.num_cached_tokens,
            status="ok" if mine is not None else "failed", error=result.error,
        ))
    return rows + sit_out_rows(ctx)
