"""Dialogue stages: members of each group speak in turn; turn k of all groups is one wave.

With ``lead: ROLE`` the member holding that role speaks first; with ``actors`` only those
roles speak. With ``offers: true`` every message is read for a numeric offer and an explicit
accept / reject act (:mod:`sim.engine.offers`); accepting the partner's standing offer makes a deal
at that price, and ``stop: accept`` ends the group's conversation there. Each member then
gets an ``outcome`` row with ``deal`` / ``price`` / ``turns`` and its formula payoff.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sim.engine.offers import detect_act, extract_offer
from sim.engine.stages.base import Plan, StageContext, event_row, prompt_hash, sit_out_rows
from sim.engine.stages.formulas import member_values, payoff_for
from sim.requests import GenerateResult, SamplingParams
from sim.scenario.spec import BroadcastStage, DialogueStage

__all__ = ["clean_message", "message_text", "run_dialogue", "speaking_order",
           "trim_to_sentence"]

# A sentence ends at . ! or ? (repeated: "...", "?!"), then any closing quotes or brackets,
# then a space or the end: "3.5" and "e.g.," do not end one.
_SENTENCE_END = re.compile(r"""[.!?]+["'\u201d\u2019\u00bb)\]]*(?=\s|$)""")


def clean_message(text: str, speaker: str) -> str:
    """Tidy generated text: collapse whitespace, drop a leading ``Name:`` the model added."""
    text = " ".join(text.split())
    return re.sub(rf"^{re.escape(speaker)}\s*:\s*", "", text)


def trim_to_sentence(text: str) -> tuple[str, bool]:
    """The text up to the end of its last complete sentence, and whether anything was cut.

    Text that ends a sentence, or holds no complete sentence, is returned whole.
    """
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not ends or ends[-1] == len(text):
        return text, False
    return text[:ends[-1]], True


def message_text(stage: DialogueStage | BroadcastStage, result: GenerateResult,
                 speaker: str) -> tuple[str, bool | None]:
    """A generated message as partners hear it, and its ``trimmed`` flag.

    With ``stop_at: sentence`` a message the token limit cut (``finish_reason == "length"``)
    ends at its last complete sentence; ``trimmed`` is ``None`` without a stop rule.
    """
    text = clean_message(result.text, speaker)
    if stage.stop_at is None:
        return text, None
    if result.finish_reason != "length":
        return text, False
    return trim_to_sentence(text)


def speaking_order(stage: DialogueStage, ctx: StageContext, members: tuple[int, ...]
                   ) -> list[int]:
    """Who speaks, in order: the ``lead`` role's members first, only ``actors``."""
    agents = ctx.agents
    speakers = [a for a in members if ctx.acts(agents[a], stage.actors)]
    if stage.lead is not None:
        speakers.sort(key=lambda a: agents[a].role(ctx.round) != stage.lead)
    return speakers


class _Deal:
    """The negotiation state of one group: standing offers and the deal, if any."""

    def __init__(self) -> None:
        self.standing: dict[int, float] = {}
        self.price: float | None = None
        self.turns = 0

    def read(self, speaker: int, text: str) -> tuple[float | None, str | None]:
        """Fold one message in; returns the offer and act it made."""
        act = detect_act(text)
        offer = extract_offer(text)
        theirs = [v for a, v in self.standing.items() if a != speaker]
        if act == "accept" and theirs and self.price is None:
            self.price = theirs[-1]
        elif offer is not None and act != "accept":
            self.standing.pop(speaker, None)
            self.standing[speaker] = offer
        return offer, act


def run_dialogue(stage: DialogueStage, ctx: StageContext) -> Plan:
    """Plan of a dialogue stage: up to ``turns`` waves, each with one speaker per group."""
    groups, agents = ctx.grouping.groups, ctx.agents
    transcripts: list[list[tuple[str, str]]] = [[] for _ in groups]
    orders = [speaking_order(stage, ctx, members) for members in groups]
    deals = [_Deal() for _ in groups]
    rows: list[dict[str, Any]] = []
    max_new = stage.max_new_tokens or ctx.max_new_tokens
    for turn in range(stage.turns):
        live = [g for g, order in enumerate(orders)
                if order and not (stage.stop == "accept" and deals[g].price is not None)]
        if not live:
            break
        speakers = [(g, orders[g][turn % len(orders[g])]) for g in live]
        requests = []
        for g, a in speakers:
            partners = [agents[b] for b in groups[g] if b != a]
            sampling = SamplingParams(max_new_tokens=max_new, temperature=ctx.temperature,
                                      seed=ctx.seed_for(a, g, turn))
            facts = _offer_facts(deals[g], a, turn) if stage.offers else None
            requests.append(agents[a].dialogue_request(
                stage, partners, transcripts[g], ctx.round, ctx.rounds, sampling, facts))
        results = yield list(requests)
        for (g, a), request, result in zip(speakers, requests, results, strict=True):
            assert isinstance(result, GenerateResult)
            agent = agents[a]
            failed = result.error is not None
            text, trimmed = ("", None) if failed else message_text(stage, result, agent.name)
            offer = None
            if not failed:
                transcripts[g].append((agent.name, text))
                if stage.offers:
                    offer, _act = deals[g].read(a, text)
                    deals[g].turns = turn + 1
            rows.append(event_row(
                agent, kind="message", group=f"g{g:03d}", turn=turn,
                partners=[agents[b] for b in groups[g] if b != a], text=text, offer=offer,
                prompt_hash=prompt_hash(request), prompt_tokens=result.num_prompt_tokens,
                new_tokens=result.num_new_tokens,
                status="failed" if failed else "ok", error=result.error,
                **({} if stage.stop_at is None else {"trimmed": trimmed}),
            ))
    for g, members in enumerate(groups):
        for a in members:
            agents[a].apply_conversation(stage, ctx.round,
                                         [agents[b] for b in members if b != a], transcripts[g])
    if stage.offers or stage.payoff is not None:
        rows += _outcome_rows(stage, ctx, deals)
    return rows + sit_out_rows(ctx)


def _offer_facts(deal: _Deal, speaker: int, turn: int) -> dict[str, Any]:
    theirs = [v for a, v in deal.standing.items() if a != speaker]
    return {"turn": turn, "my_offer": deal.standing.get(speaker),
            "partner_offer": theirs[-1] if theirs else None}


def _outcome_rows(stage: DialogueStage, ctx: StageContext, deals: list[_Deal]
                  ) -> list[dict[str, Any]]:
    """One ``outcome`` row per member: the deal, its price, the turns used, the payoff."""
    rows = []
    for g, members in enumerate(ctx.grouping.groups):
        deal = deals[g]
        group = [ctx.agents[a] for a in members]
        extra = {"deal": float(deal.price is not None), "price": deal.price or 0.0}
        outcomes = {"deal": deal.price is not None, "price": deal.price, "turns": deal.turns}
        for agent in group:
            partners = [m for m in group if m is not agent]
            names = member_values(agent, group, {}, ctx.round, ctx.params, extra=extra)
            payoff = payoff_for(stage.payoff, agent.role(ctx.round), names) \
                if stage.payoff is not None else None
            if payoff is not None:
                agent.apply_payoff(stage, ctx.round, partners, payoff,
                                   note=f"a deal at {deal.price:g}" if deal.price is not None
                                   else "no deal")
            rows.append(event_row(agent, kind="outcome", group=f"g{g:03d}", partners=partners,
                                  payoff=payoff, offer=deal.price,
                                  outcomes=json.dumps(outcomes, sort_keys=True)))
    return rows
