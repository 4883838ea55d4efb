"""Broadcast stages: one message to each group, from the game master or a designated role.

Without ``speaker`` the stage's prompt is the game master's text (its template rendered for
the group's first member); with ``speaker: ROLE`` the group's first member holding that role
writes a message (one wave for all groups). Every other member remembers what it heard.
With ``groups: {by: ego}`` each group is an agent and its network neighbours: the ego writes
the message (if it holds the ``speaker`` role, when one is set) and only its neighbours hear
it; each listener remembers the ego as the one it heard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sim.engine.stages.base import Plan, StageContext, event_row, prompt_hash, sit_out_rows
from sim.engine.stages.dialogue import message_text
from sim.requests import GenerateResult, SamplingParams
from sim.scenario.spec import BroadcastStage
from sim.scenario.templates import render

__all__ = ["GAME_MASTER", "run_broadcast"]

GAME_MASTER = "Game master"


def _speakers(stage: BroadcastStage, ctx: StageContext) -> list[tuple[int, int]]:
    """``(group, speaker)`` of every group that has a speaker this time."""
    groups, agents = ctx.grouping.groups, ctx.agents
    if stage.groups.by == "ego":  # the ego is its group's first member
        return [(g, members[0]) for g, members in enumerate(groups)
                if stage.speaker is None or agents[members[0]].role(ctx.round) == stage.speaker]
    found = [(g, next((a for a in members if agents[a].role(ctx.round) == stage.speaker),
                      None)) for g, members in enumerate(groups)]
    return [(g, a) for g, a in found if a is not None]


def run_broadcast(stage: BroadcastStage, ctx: StageContext) -> Plan:
    """Plan of a broadcast stage: at most one wave (the speakers' messages)."""
    groups, agents = ctx.grouping.groups, ctx.agents
    rows: list[dict[str, Any]] = []
    said: dict[int, tuple[int | None, str]] = {}
    if stage.speaker is None and stage.groups.by != "ego":
        for g, members in enumerate(groups):
            first = agents[members[0]]
            partners = [agents[b] for b in members[1:]]
            text = render(stage.prompt, first.context(stage, partners, ctx.round, ctx.rounds))
            said[g] = (None, text)
            rows.append({"kind": "broadcast", "group": f"g{g:03d}", "turn": 0,
                         "agent": "gm", "partners": [agents[b].key for b in members],
                         "text": text, "backend": "scripted", "status": "ok"})
    else:
        speakers = _speakers(stage, ctx)
        max_new = stage.max_new_tokens or ctx.max_new_tokens
        requests = [
            agents[a].dialogue_request(
                stage, [agents[b] for b in groups[g] if b != a], [], ctx.round, ctx.rounds,
                SamplingParams(max_new_tokens=max_new, temperature=ctx.temperature,
                               seed=ctx.seed_for(a, g, 0)))
            for g, a in speakers
        ]
        results = yield list(requests) if requests else []
        for (g, a), request, result in zip(speakers, requests, results, strict=True):
            assert isinstance(result, GenerateResult)
            agent = agents[a]
            failed = result.error is not None
            text, trimmed = ("", None) if failed else message_text(stage, result, agent.name)
            if not failed:
                said[g] = (a, text)
            rows.append(event_row(
                agent, kind="broadcast", group=f"g{g:03d}",
                partners=[agents[b] for b in groups[g] if b != a], text=text,
                prompt_hash=prompt_hash(request), prompt_tokens=result.num_prompt_tokens,
                new_tokens=result.num_new_tokens,
                status="failed" if failed else "ok", error=result.error,
                **({} if stage.stop_at is None else {"trimmed": trimmed})))
    _remember(stage, ctx, said)
    return rows + sit_out_rows(ctx)


def _remember(stage: BroadcastStage, ctx: StageContext,
              said: dict[int, tuple[int | None, str]]) -> None:
    """Every member of a group with a message remembers it (listeners of an ego: the ego)."""
    groups, agents = ctx.grouping.groups, ctx.agents
    ego = stage.groups.by == "ego"
    for g, (speaker, text) in said.items():
        who = agents[speaker].name if speaker is not None else GAME_MASTER
        for a in groups[g]:
            others: Sequence[Any]
            if ego and a != speaker and speaker is not None:
                others = [agents[speaker]]
            else:
                others = [agents[b] for b in groups[g] if b != a]
            agents[a].apply_conversation(stage, ctx.round, others, [(who, text)])
