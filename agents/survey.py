"""Administer a questionnaire to respondents: one item per request, with controls as factors.

Each row of the result is one administered item with its controls recorded as factors:

- ``order``: the response options listed ascending (``asc``: 1 = very inaccurate first) or
  descending (``desc``); the answer is always mapped back to the scale value.
- ``paraphrase``: which of the instruction paraphrases (:data:`INSTRUCTIONS`) was used.
- ``repeat``: repetition index (score mode is deterministic, so repeats matter for sampled
  generation; identical requests are prefilled once by the backend anyway).

Score mode (backends with log-likelihoods) scores the option labels ``1``..``5`` as the
assistant's reply and records the renormalised distribution's expected value, its argmax
and its entropy (nats), plus ``mass``, the probability the model gave to the valid labels at
all. Generate mode (backends without log-likelihoods) parses the reply strictly (a single
scale number), re-asks up to ``max_reasks`` times, and records a refusal when no valid answer
came back. Refusals are rows with ``refused = True`` and no answer, never imputed.

Prompts put everything that is the same for all items first (persona, instruction, scale),
and the item last, so the backend's shared-prefix cache prefills a persona's prefix once for
all its items. Agents build requests; the backend batches them (one ``score`` call per
survey).

Example:
    >>> from agents.instruments import load_instrument
    >>> inst = load_instrument("mini-ipip")
    >>> reqs = survey_requests(inst, [Respondent("r0", "You are Ada.")], SurveyDesign())
    >>> len(reqs)  # 20 items x 2 orders
    40
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.instruments import Instrument, Item
from sim.requests import GenerateRequest, Message, SamplingParams, ScoreRequest

__all__ = [
    "INSTRUCTIONS",
    "Respondent",
    "SurveyDesign",
    "administer",
    "parse_answer",
    "rows_from_scores",
    "score_row",
    "survey_requests",
]

# Instruction paraphrases written for this project; ``{scale}`` is the option list.
INSTRUCTIONS: tuple[str, ...] = (
    "Rate how accurately the statement below describes you, on this scale:\n{scale}\n"
    "Answer with the number only.",
    "How well does the following statement describe you? Use this scale:\n{scale}\n"
    "Reply with just one number.",
    "Read the statement and say how much it applies to you. The options are:\n{scale}\n"
    "Give only the number of your answer.",
)
_REASK = "Please answer with a single number from {lo} to {hi}, nothing else."


@dataclass(frozen=True)
class Respondent:
    """Who answers: an id, a system prompt (``None`` = persona-free) and steering.

    Attributes:
        id: respondent id (the ``agent`` column).
        system: system-prompt text, or ``None`` for the persona-free baseline.
        steering: per-trait steering coefficients for every request of this respondent.
        context: text shown before the instruction (e.g. the agent's memory, ``in_situ``).
        meta: extra columns copied to every row (method, persona template, ...).
        paraphrase: fixed instruction paraphrase for this respondent (with
            ``paraphrase_by="respondent"``; default: the respondent's index modulo the number).
    """

    id: str
    system: str | None = None
    steering: tuple[tuple[str, float], ...] = ()
    context: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    paraphrase: int | None = None


@dataclass(frozen=True)
class SurveyDesign:
    """Which controls are administered.

    Attributes:
        orders: option orders, each ``asc`` or ``desc`` (both: order symmetry is measurable).
        paraphrases: number of instruction paraphrases in use (1..3).
        paraphrase_by: ``respondent`` (respondent ``i`` gets paraphrase ``i % n`` for all
            items: one shared prefix per respondent and order), ``item`` (rotates over items)
            or ``crossed`` (every item under every paraphrase).
        repeats: repetitions of each (item, order, paraphrase).
        items: item ids to administer (default: all, in instrument order).
        mode: ``score`` (option log-likelihoods) or ``generate`` (strict parsing).
        max_reasks: re-asks in generate mode before a refusal is recorded.
    """

    orders: tuple[Literal["asc", "desc"], ...] = ("asc", "desc")
    paraphrases: int = 3
    paraphrase_by: Literal["respondent", "item", "crossed"] = "respondent"
    repeats: int = 1
    items: tuple[str, ...] | None = None
    mode: Literal["score", "generate"] = "score"
    max_reasks: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.paraphrases <= len(INSTRUCTIONS):
            raise ValueError(f"paraphrases={self.paraphrases}: allowed 1..{len(INSTRUCTIONS)}")
        if not self.orders or any(o not in ("asc", "desc") for o in self.orders):
            raise ValueError(f"orders={self.orders}: use 'asc' and/or 'desc'")
        if self.repeats < 1:
            raise ValueError(f"repeats={self.repeats}: must be at least 1")


def _values(inst: Instrument, order: str) -> list[int]:
    values = list(range(inst.scale_min, inst.scale_max + 1))
    return values if order == "asc" else values[::-1]


def _user_text(inst: Instrument, item: Item, order: str, paraphrase: int, context: str) -> str:
    scale = "\n".join(f"{v} = {inst.anchors[v - inst.scale_min]}" for v in _values(inst, order))
    head = f"{context}\n\n" if context else ""
    return f"{head}{INSTRUCTIONS[paraphrase].format(scale=scale)}\n\nStatement: {item.text}"


def _plan(inst: Instrument, respondents: Sequence[Respondent], design: SurveyDesign
          ) -> list[dict[str, Any]]:
    items = [inst.item(i) for i in design.items] if design.items else list(inst.items)
    plan = []
    for r_index, resp in enumerate(respondents):
        for j, item in enumerate(items):
            if design.paraphrase_by == "crossed":
                paraphrases = list(range(design.paraphrases))
            elif design.paraphrase_by == "item":
                paraphrases = [(j + r_index) % design.paraphrases]
            else:
                fixed = resp.paraphrase
                paraphrases = [(fixed if fixed is not None else r_index) % design.paraphrases]
            for order in design.orders:
                for paraphrase in paraphrases:
                    for repeat in range(design.repeats):
                        plan.append({"respondent": resp, "item": item, "order": order,
                                     "paraphrase": paraphrase, "repeat": repeat})
    return plan


def _messages(resp: Respondent, user: str) -> tuple[Message, ...]:
    head = (Message("system", resp.system),) if resp.system is not None else ()
    return (*head, Message("user", user))


def survey_requests(inst: Instrument, respondents: Sequence[Respondent],
                    design: SurveyDesign) -> list[tuple[dict[str, Any], ScoreRequest]]:
    """Build one score request per administered (respondent, item, order, paraphrase, repeat).

    Returns:
        ``(factors, request)`` pairs; the request's options are the scale labels in the
        order shown.
    """
    out = []
    for p in _plan(inst, respondents, design):
        resp: Respondent = p["respondent"]
        user = _user_text(inst, p["item"], p["order"], p["paraphrase"], resp.context)
        options = tuple(str(v) for v in _values(inst, p["order"]))
        out.append((p, ScoreRequest(messages=_messages(resp, user), options=options,
                                    steering=resp.steering)))
    return out


def _base_row(inst: Instrument, p: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    resp: Respondent = p["respondent"]
    item: Item = p["item"]
    return {"run_id": run_id, "replica": 0, "agent": resp.id, "instrument": inst.name,
            "item_id": item.id, "trait": item.trait, "keyed": item.keyed, "order": p["order"],
            "paraphrase": p["paraphrase"], "repeat": p["repeat"], **dict(resp.meta)}


def score_row(inst: Instrument, order: str, logprobs: Sequence[float]) -> dict[str, Any]:
    """Expected value, argmax, entropy and valid-label mass from option log-likelihoods.

    Args:
        inst: the instrument (scale).
        order: ``asc`` or ``desc``: how ``logprobs`` are ordered.
        logprobs: one log-likelihood per option, in the order shown.
    """
    values = _values(inst, order)
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    probs = [w / total for w in weights]
    expected = sum(p * v for p, v in zip(probs, values, strict=True))
    best = max(range(len(probs)), key=lambda k: (probs[k], -k))
    entropy = -sum(p * math.log(p) for p in probs if p > 0)
    mass = math.exp(top) * total
    by_value = sorted(zip(values, probs, strict=True))
    return {"expected": expected, "argmax": values[best], "entropy": entropy,
            "mass": mass, "probs": [round(p, 6) for _v, p in by_value], "refused": False,
            "error": None}


_ANSWER = re.compile(r"^\s*([0-9]+)\s*(?:[.)]|=|-|:)?(?:\s.*)?$", re.DOTALL)


def parse_answer(text: str, lo: int, hi: int) -> int | None:
    """Strictly parse a reply as one scale number (``"4"``, ``"4."``, ``"4 - agree"``)."""
    m = _ANSWER.match(text)
    if not m:
        return None
    value = int(m.group(1))
    return value if lo <= value <= hi else None


def administer(backend: Any, inst: Instrument, respondents: Sequence[Respondent],
               design: SurveyDesign | None = None, *, run_id: str = "survey",
               seed: int = 0) -> list[dict[str, Any]]:
    """Administer ``inst`` to every respondent; return the long survey table as row dicts.

    Score mode sends every request in one ``backend.score`` call (the backend batches and
    shares prefixes). Generate mode sends one ``generate`` wave per re-ask round.
    """
    design = design or SurveyDesign()
    if design.mode == "generate":
        return _administer_generate(backend, inst, respondents, design, run_id, seed)
    pairs = survey_requests(inst, respondents, design)
    results = backend.score([req for _p, req in pairs])
    return rows_from_scores(inst, pairs, results, run_id=run_id)


def rows_from_scores(inst: Instrument, pairs: Sequence[tuple[dict[str, Any], ScoreRequest]],
                     results: Sequence[Any], *, run_id: str = "survey") -> list[dict[str, Any]]:
    """Turn score results (in the order of ``pairs``) into survey rows."""
    rows = []
    for (p, _req), res in zip(pairs, results, strict=True):
        row = _base_row(inst, p, run_id)
        if res.error or not res.logprobs:
            row.update(expected=None, argmax=None, entropy=None, mass=None, probs=None,
                       refused=True, error=res.error or "no log-likelihoods",
                       decided_by="failed")
        else:
            row.update(score_row(inst, p["order"], res.logprobs),
                       decided_by=getattr(res, "decided_by", None))
        row["reasks"] = 0
        rows.append(row)
    return rows


def _administer_generate(backend: Any, inst: Instrument, respondents: Sequence[Respondent],
                         design: SurveyDesign, run_id: str, seed: int) -> list[dict[str, Any]]:
    plan = _plan(inst, respondents, design)
    chats: list[tuple[Message, ...]] = []
    for p in plan:
        resp: Respondent = p["respondent"]
        chats.append(_messages(resp, _user_text(inst, p["item"], p["order"], p["paraphrase"],
                                                resp.context)))
    answers: list[int | None] = [None] * len(plan)
    raw: list[str] = [""] * len(plan)
    reasks = [0] * len(plan)
    pending = list(range(len(plan)))
    reask = _REASK.format(lo=inst.scale_min, hi=inst.scale_max)
    for attempt in range(design.max_reasks + 1):
        if not pending:
            break
        reqs = [GenerateRequest(
            messages=chats[k],
            sampling=SamplingParams(max_new_tokens=8, temperature=0.0,
                                    seed=seed * 1_000_003 + k * 31 + plan[k]["repeat"]),
            steering=plan[k]["respondent"].steering) for k in pending]
        results = backend.generate(reqs)
        still = []
        for k, res in zip(pending, results, strict=True):
            raw[k] = res.text
            value = None if res.error else parse_answer(res.text, inst.scale_min, inst.scale_max)
            if value is None:
                reasks[k] = attempt + 1 if attempt < design.max_reasks else attempt
                chats[k] = (*chats[k], Message("assistant", res.text), Message("user", reask))
                still.append(k)
            else:
                answers[k] = value
        pending = still
    rows = []
    for k, p in enumerate(plan):
        row = _base_row(inst, p, run_id)
        value = answers[k]
        row.update(expected=float(value) if value is not None else None, argmax=value,
                   entropy=None, mass=None, probs=None, refused=value is None,
                   error=None if value is not None else f"no valid answer: {raw[k]!r}",
                   reasks=reasks[k], raw=raw[k],
                   decided_by="parsed" if value is not None else "failed")
        rows.append(row)
    return rows
