"""Dialogue stages: members of each group speak in turn; turn k of all groups is one wave."""

from __future__ import annotations

import re
from typing import Any

from sim.backends.base import GenerateResult, SamplingParams
from sim.spec import DialogueStage
from sim.stages.base import Plan, StageContext, event_row, prompt_hash, sit_out_rows

__all__ = ["clean_message", "run_dialogue"]


def clean_message(text: str, speaker: str) -> str:
    """Tidy generated text: collapse whitespace, drop a leading ``Name:`` the model added."""
    text = " ".join(text.split())
    return re.sub(rf"^{re.escape(speaker)}\s*:\s*", "", text)


def run_dialogue(stage: DialogueStage, ctx: StageContext) -> Plan:
    """Plan of a dialogue stage: ``turns`` waves, each with one speaker per group."""
    groups, agents = ctx.grouping.groups, ctx.agents
    transcripts: list[list[tuple[str, str]]] = [[] for _ in groups]
    rows: list[dict[str, Any]] = []
    max_new = stage.max_new_tokens or ctx.max_new_tokens
    for turn in range(stage.turns):
        speakers = [members[turn % len(members)] for members in groups]
        requests = []
        for g, a in enumerate(speakers):
            partners = [agents[b] for b in groups[g] if b != a]
            sampling = SamplingParams(max_new_tokens=max_new, temperature=ctx.temperature,
                                      seed=ctx.seed_for(a, g, turn))
            requests.append(agents[a].dialogue_request(
                stage, partners, transcripts[g], ctx.round, ctx.rounds, sampling))
        results = yield list(requests)
        for g, (a, request, result) in enumerate(zip(speakers, requests, results, strict=True)):
            assert isinstance(result, GenerateResult)
            agent = agents[a]
            failed = result.error is not None
            text = "" if failed else clean_message(result.text, agent.name)
            if not failed:
                transcripts[g].append((agent.name, text))
            rows.append(event_row(
                agent, kind="message", group=f"g{g:03d}", turn=turn,
                partners=[agents[b] for b in groups[g] if b != a], text=text,
                prompt_hash=prompt_hash(request), prompt_tokens=result.num_prompt_tokens,
                new_tokens=result.num_new_tokens,
                status="failed" if failed else "ok", error=result.error,
            ))
    for g, members in enumerate(groups):
        for a in members:
            agents[a].apply_conversation(stage, ctx.round,
                                         [agents[b] for b in members if b != a], transcripts[g])
    return rows + sit_out_rows(ctx)
