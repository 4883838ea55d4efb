"""Rule policies answering requests without a model.

These are real experimental conditions (fixed-strategy partners, committed minorities) and
the fast deterministic backend of the tests. A request without a policy gets the ``random``
policy: uniform over options, and a short stock message for dialogue.

Policies (``PolicySpec.name``):
    always: plays ``option``.
    random: plays ``option`` with probability ``p`` (uniform over options without one).
    tit_for_tat: cooperates first, then copies the partner's last choice.
    grim_trigger: cooperates until any partner has played something else against it.
    naming_game: the minimal naming game agent (Baronchelli et al. 2006): plays a name
        uniformly from its inventory (the ``inventory`` fact), or invents one (uniform over
        the options) while the inventory is empty; with ``pick: frequency`` a name's chance
        is proportional to how often it was heard since the last success.
        :func:`naming_game_update` is its learning rule, applied by the agent after each
        round.
    threshold: a responder: plays ``option`` when the partner's value this round (the
        largest, if several stages) is at least ``threshold``, else the first other option.
    haggle: a negotiator (dialogue): :func:`haggle_message`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sim.requests import (
    GenerateRequest,
    GenerateResult,
    ModelInfo,
    PolicyCall,
    ScoreRequest,
    ScoreResult,
)

__all__ = ["STATEFUL_POLICIES", "ScriptedBackend", "haggle_message", "naming_game_update",
           "policy_probabilities"]

#: Policies that keep a per-stage inventory the agent updates after every round.
STATEFUL_POLICIES = frozenset({"naming_game"})

_PHRASES = (
    "Hello! I think we can both do well if we trust each other.",
    "I have been thinking about the last round, and I want to be fair.",
    "Let us keep it simple and play it straight this time.",
    "I am not sure yet; what are you planning to do?",
    "Good to meet you. I usually keep my promises.",
    "Honestly, I care most about how this ends for both of us.",
)


def policy_probabilities(policy: PolicyCall | None, options: Sequence[str]) -> list[float]:
    """Probability of each option under a policy (the scripted 'distribution')."""
    n = len(options)
    if policy is None:
        return [1.0 / n] * n
    params, facts = policy.params, policy.facts
    cooperate = params.get("cooperate", options[0])
    defect = params.get("defect", options[1] if n > 1 else options[0])
    if policy.name == "always":
        pick = params["option"]
    elif policy.name == "random":
        if "option" not in params:
            return [1.0 / n] * n
        p = float(params.get("p", 0.5))
        rest = (1.0 - p) / (n - 1)
        return [p if o == params["option"] else rest for o in options]
    elif policy.name == "tit_for_tat":
        last = facts.get("partner_last_choice")
        pick = last if last in options else cooperate
    elif policy.name == "grim_trigger":
        betrayed = any(c != cooperate for c in facts.get("received", ()))
        pick = defect if betrayed else cooperate
    elif policy.name == "naming_game":
        return _from_inventory(facts.get("inventory", ()), options,
                               frequency=params.get("pick") == "frequency")
    elif policy.name == "threshold":
        pick = _threshold_pick(params, facts, options)
    elif policy.name == "haggle":
        return [1.0 / n] * n
    else:
        raise ValueError(f"unknown scripted policy {policy.name!r}")
    probs = [1.0 if o == pick else 0.0 for o in options]
    return probs if any(probs) else [1.0 / n] * n


def _threshold_pick(params: Mapping[str, Any], facts: Mapping[str, Any],
                    options: Sequence[str]) -> str:
    yes = params.get("option", options[-1])
    no = next((o for o in options if o != yes), yes)
    values = dict(facts.get("partner_values") or {})
    offered = max(values.values()) if values else None
    return yes if offered is not None and offered >= float(params.get("threshold", 0)) else no


def haggle_message(policy: PolicyCall) -> str:
    """A ``haggle`` negotiator's next message.

    The side (buyer or seller) is ``side`` or the agent's role; the limit is its private
    ``reserve``. It accepts the partner's standing offer if it is within the reserve
    (buyer: at most, seller: at least); otherwise it opens 30% beyond its reserve (a buyer
    below, a seller above) and concedes ``concession`` (default 0.3) of the remaining gap
    per offer, rounded to whole units on its own side of the reserve.
    """
    params, facts = policy.params, policy.facts
    side = params.get("side") or facts.get("role")
    reserve = (facts.get("private") or {}).get("reserve")
    if side not in ("buyer", "seller") or reserve is None:
        return "I would like to make a deal, but I need to think about the price."
    buyer = side == "buyer"
    theirs = facts.get("partner_offer")
    if theirs is not None and (theirs <= reserve if buyer else theirs >= reserve):
        return f"I accept your offer of {theirs:g}."
    mine = facts.get("my_offer")
    opening = reserve * (0.7 if buyer else 1.3)
    last = opening if mine is None else mine
    step = float(params.get("concession", 0.3))
    offer = last + step * (reserve - last) if mine is not None else opening
    offer = math.floor(offer) if buyer else math.ceil(offer)
    offer = min(offer, reserve) if buyer else max(offer, reserve)
    return f"I offer {offer:g}."


def _from_inventory(inventory: Sequence[str], options: Sequence[str], *, frequency: bool
                    ) -> list[float]:
    """Pick distribution of a naming game agent over ``options``.

    Uniform over the distinct inventory names that are options (``frequency``: weighted by
    how often each occurs); uniform over all options (invention) if there are none.
    """
    known = [n for n in inventory if n in options]
    if not known:
        return [1.0 / len(options)] * len(options)
    weights = Counter(known) if frequency else Counter(set(known))
    total = sum(weights.values())
    return [weights[o] / total for o in options]


def naming_game_update(inventory: Sequence[str], mine: str, theirs: Sequence[str]
                       ) -> list[str]:
    """The minimal naming game's learning rule, symmetric variant (both members speak).

    Success (every partner chose ``mine``): the inventory collapses to the winning name.
    Failure: the agent keeps its names, adds its own if new (an invented name is
    remembered) and then every partner's name, once per hearing (repeats count for
    ``pick: frequency``; the minimal game's uniform pick ignores them).

    Args:
        inventory: names heard since the last success, in order, one entry per hearing.
        mine: the name this agent played.
        theirs: the names its partners played.

    Returns:
        The new inventory.
    """
    if theirs and all(t == mine for t in theirs):
        return [mine]
    out = list(inventory)
    if mine not in out:
        out.append(mine)
    out.extend(theirs)
    return out


class ScriptedBackend:
    """Answers score requests with policy distributions and generate requests with stock text.

    Attributes:
        calls: number of ``generate`` / ``score`` calls (tests count batching with it).
    """

    def __init__(self) -> None:
        self.calls = {"generate": 0, "score": 0}

    @property
    def info(self) -> ModelInfo:
        """Identity for the manifest."""
        return ModelInfo(backend="scripted", model_id="scripted-policies")

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Log-probability of every option under each request's policy."""
        self.calls["score"] += 1
        return [
            ScoreResult(logprobs=tuple(math.log(p) if p > 0 else -math.inf
                                       for p in policy_probabilities(r.policy, r.options)))
            for r in requests
        ]

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """A stock phrase per request, picked by the request's seed."""
        self.calls["generate"] += 1
        out = []
        for r in requests:
            if r.policy is not None and r.policy.name == "haggle":
                text = haggle_message(r.policy)
                out.append(GenerateResult(text=text, num_new_tokens=len(text.split())))
                continue
            rng = np.random.default_rng(r.sampling.seed)
            text = _PHRASES[int(rng.integers(len(_PHRASES)))]
            out.append(GenerateResult(text=text, num_new_tokens=len(text.split())))
        return out
