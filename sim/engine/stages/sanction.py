"""Sanction stages: pay a cost to fine another member of one's group.

Every acting member scores the options ``nobody`` and the names of its group's other
members (one wave); picking a name costs the punisher ``cost`` and fines the target ``fine``
(per punisher). Fined members who did not act get an ``outcome`` row with their loss.
"""

from __future__ import annotations

from typing import Any

from sim.engine.stages.base import (
    Plan,
    StageContext,
    decided_by,
    event_row,
    prompt_hash,
    sit_out_rows,
)
from sim.engine.stages.choice import option_probabilities
from sim.requests import ScoreResult
from sim.scenario.spec import SanctionStage

__all__ = ["NOBODY", "run_sanction", "sanction_payoffs"]

NOBODY = "nobody"


def sanction_payoffs(targets: dict[int, int | None], cost: float, fine: float
                     ) -> dict[int, float]:
    """Net payoff per agent from ``punisher -> target`` (``None``: nobody)."""
    out: dict[int, float] = dict.fromkeys(targets, 0.0)
    for punisher, target in targets.items():
        if target is None:
            continue
        out[punisher] = out.get(punisher, 0.0) - cost
        out[target] = out.get(target, 0.0) - fine
    return out


def run_sanction(stage: SanctionStage, ctx: StageContext) -> Plan:
    """Plan of a sanction stage: one wave of score requests, then costs and fines."""
    groups, agents = ctx.grouping.groups, ctx.agents
    slots = [(g, a) for g, members in enumerate(groups) for a in members
             if len(members) > 1 and ctx.acts(agents[a], stage.actors)]
    options = {(g, a): [NOBODY, *(agents[b].name for b in groups[g] if b != a)]
               for g, a in slots}
    requests = [agents[a].choice_request(stage, [agents[b] for b in groups[g] if b != a],
                                         ctx.round, ctx.rounds, options=options[g, a])
                for g, a in slots]
    results = yield list(requests)
    rows: list[dict[str, Any]] = []
    for g, members in enumerate(groups):
        mine = [(i, s) for i, s in enumerate(slots) if s[0] == g]
        picks: dict[int, int | None] = {}
        picked: dict[int, int] = {}  # the option index: a record that never depends on names
        probs: dict[int, list[float]] = {}
        failed = False
        for i, (_, a) in mine:
            result = results[i]
            assert isinstance(result, ScoreResult)
            if result.error is not None or not result.logprobs:
                failed = True
                continue
            probs[a] = option_probabilities(result.logprobs)
            rng = ctx.rng_for(a, g)
            k = int(rng.choice(len(probs[a]), p=probs[a])) if stage.decision == "sample" \
                else max(range(len(probs[a])), key=probs[a].__getitem__)
            others = [b for b in members if b != a]
            picks[a] = others[k - 1] if k > 0 else None
            picked[a] = k
        pay = {} if failed else sanction_payoffs(picks, stage.cost, stage.fine)
        for i, (_, a) in mine:
            agent, partners = agents[a], [agents[b] for b in members if b != a]
            target = picks.get(a)
            if a in picks:
                fined_by = [agents[p].name for p, t in picks.items() if t == a]
                name = agents[target].name if target is not None else NOBODY
                agent.last_choice[stage.id] = name
                agent.apply_payoff(stage, ctx.round, partners, pay.get(a), note=f"to fine {name}",
                                   their=[f"{who} fined you" for who in fined_by])
            rows.append(event_row(
                agent, kind="sanction", group=f"g{g:03d}", partners=partners,
                choice=(agents[target].name if target is not None else NOBODY)
                if a in picks else None, choice_index=picked.get(a), options=options[g, a],
                option_probs=probs.get(a, []), payoff=pay.get(a),
                prompt_hash=prompt_hash(requests[i]),
                prompt_tokens=results[i].num_prompt_tokens,
                status="ok" if a in picks else "failed", error=results[i].error,
                decided_by=decided_by(results[i])))
        for b in members:
            if b not in picks and pay.get(b):
                agent = agents[b]
                partners = [agents[x] for x in members if x != b]
                agent.apply_payoff(stage, ctx.round, partners, pay[b], note="nothing", their=[
                    f"{agents[p].name} fined you" for p, t in picks.items() if t == b])
                rows.append(event_row(agent, kind="outcome", group=f"g{g:03d}",
                                      partners=partners, payoff=pay[b]))
    return rows + sit_out_rows(ctx)
