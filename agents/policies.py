"""Scripted rule policies: fixed-strategy partners and committed minorities, in one registry.

A policy answers from the agent's frozen ``PolicySpec`` (its parameters) and typed
:class:`~sim.requests.PolicyFacts` (what the agent observes); it never calls a model. The
scripted backend looks a request's policy up in :data:`POLICIES`; the agent applies a
stateful policy's learning rule after each round.

Policies (``PolicySpec.name``):
    always: plays ``option``.
    random: plays ``option`` with probability ``p`` (default 0.5; uniform over the options
        without an ``option``).
    tit_for_tat: cooperates first, then copies the partner's last choice.
    grim_trigger: cooperates until any partner has played something else against it.
    naming_game: the minimal naming game agent (Baronchelli et al. 2006): plays a name
        uniformly from its inventory, or invents one (uniform over the options) while the
        inventory is empty; with ``pick: frequency`` a name's chance is proportional to how
        often it was heard since the last success. :func:`naming_game_update` is its
        learning rule.
    threshold: a responder: plays ``option`` (default: the last option) when the partner's
        value this round (the largest, if several stages) is at least ``threshold``
        (default 0), else the first other option.
    haggle: a negotiator (dialogue): :func:`haggle_message`.
    trait_linked: behaviour planted on the agent's own assigned ``trait``:
        ``q = clip(base + slope * (trait - 0.5), 0, 1)``. With ``option``, it plays ``option``
        with probability ``q`` and the other options uniformly otherwise; without, it plays
        option ``i`` of ``k`` with the binomial probability ``C(k-1, i) q^i (1-q)^(k-1-i)``,
        so on evenly spaced levels its mean value is ``min + q (max - min)``. It exists to
        validate trait-to-behaviour analyses on known effects.
    share: on numeric options plays the one nearest the fraction ``p`` (default 0.5) of the
        way from the lowest to the highest; on other options plays as ``threshold`` when
        ``threshold`` is set, else ``option`` (default: the first).
    follow: on numeric options plays the one nearest ``p * r + (1 - p) * t``: ``r`` the first
        partner's latest number in this stage (before any, the middle of the range), ``t``
        ``option`` (default: the lowest); a conditional cooperator, or a level-k guesser in a
        beauty contest. On other options plays ``cooperate`` (default: the first).
    sustainable: a commons harvester. On numeric options plays the largest offered level at
        or below ``p`` (default 0.5) times the highest offered level (the lowest offered
        level if none is). In a stage whose levels are bounded by the stock shared among the
        ``n`` harvesters (``max_formula: state.stock / n_agents``) every catch is then at most
        ``p * stock / n``, so together they take at most ``p`` of the stock: with ``p = 0.5``
        a stock that doubles after the catch (``min(cap, 2 * (stock - total_value))``) never
        falls, whatever its level. On other options plays ``option`` (default: the first).
    greedy: plays the highest offered level (on other options ``option``, default: the last).

``cooperate`` / ``defect`` of the reactive policies default to the stage's first and second
options. The scalar defaults below apply where the spec leaves a field unset (``None``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sim.requests import PolicyFacts

if TYPE_CHECKING:
    from sim.scenario.spec import PolicySpec

__all__ = ["POLICIES", "Policy", "haggle_message", "naming_game_update", "policy_for"]

DEFAULT_P = 0.5
"""``random``: probability of ``option`` when ``p`` is unset."""
DEFAULT_THRESHOLD = 0.0
"""``threshold``: the value accepted when ``threshold`` is unset."""
DEFAULT_CONCESSION = 0.3
"""``haggle``: fraction of the remaining gap conceded per offer when ``concession`` is unset."""
DEFAULT_BASE = 0.5
"""``trait_linked``: ``q`` of an agent at the trait's midpoint when ``base`` is unset."""


def _uniform(options: Sequence[str]) -> list[float]:
    return [1.0 / len(options)] * len(options)


def _play(pick: str | None, options: Sequence[str]) -> list[float]:
    """All mass on ``pick``; uniform if it is not an option."""
    probs = [1.0 if o == pick else 0.0 for o in options]
    return probs if any(probs) else _uniform(options)


def _cooperate(spec: PolicySpec, options: Sequence[str]) -> str:
    return spec.cooperate if spec.cooperate is not None else options[0]


def _defect(spec: PolicySpec, options: Sequence[str]) -> str:
    if spec.defect is not None:
        return spec.defect
    return options[1] if len(options) > 1 else options[0]


class Policy:
    """A scripted rule. Subclasses override :meth:`probabilities` (and what else they use).

    Attributes:
        stateful: the policy keeps a per-stage inventory the agent updates after every round
            with :meth:`update`.
    """

    stateful: bool = False

    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        """Probability of each option (default: uniform)."""
        return _uniform(options)

    def message(self, spec: PolicySpec, facts: PolicyFacts) -> str | None:
        """The policy's next dialogue message; ``None``: the backend's stock phrase."""
        return None

    def update(self, inventory: Sequence[str], mine: str, theirs: Sequence[str]) -> list[str]:
        """A stateful policy's new inventory after a round.

        Raises:
            TypeError: the policy keeps no state.
        """
        raise TypeError(f"{type(self).__name__} keeps no inventory to update")


class _Always(Policy):
    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        return _play(spec.option, options)


class _Random(Policy):
    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        if spec.option is None or len(options) == 1:  # one option: a bound left only it
            return _uniform(options)
        p = float(spec.p if spec.p is not None else DEFAULT_P)
        rest = (1.0 - p) / (len(options) - 1)
        return [p if o == spec.option else rest for o in options]


class _TitForTat(Policy):
    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        last = facts.partner_last_choice
        return _play(last if last in options else _cooperate(spec, options), options)


class _GrimTrigger(Policy):
    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        cooperate = _cooperate(spec, options)
        betrayed = any(c != cooperate for c in facts.received)
        return _play(_defect(spec, options) if betrayed else cooperate, options)


class _NamingGame(Policy):
    stateful = True

    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        """Uniform over the distinct inventory names that are options.

        ``pick: frequency`` weights a name by how often it occurs; without known names it
        is uniform over all options (invention).
        """
        known = [n for n in facts.inventory if n in options]
        if not known:
            return _uniform(options)
        weights = Counter(known) if spec.pick == "frequency" else Counter(set(known))
        total = sum(weights.values())
        return [weights[o] / total for o in options]

    def update(self, inventory: Sequence[str], mine: str, theirs: Sequence[str]) -> list[str]:
        return naming_game_update(inventory, mine, theirs)


class _Threshold(Policy):
    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        yes = spec.option if spec.option is not None else options[-1]
        no = next((o for o in options if o != yes), yes)
        values = dict(facts.partner_values)
        offered = max(values.values()) if values else None
        limit = float(spec.threshold if spec.threshold is not None else DEFAULT_THRESHOLD)
        return _play(yes if offered is not None and offered >= limit else no, options)


class _TraitLinked(Policy):
    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        trait = dict(facts.traits).get(spec.trait or "", 0.5)
        base = float(spec.base if spec.base is not None else DEFAULT_BASE)
        q = min(1.0, max(0.0, base + float(spec.slope or 0.0) * (trait - 0.5)))
        k = len(options)
        if spec.option is not None and spec.option in options:
            if k == 1:
                return [1.0]
            rest = (1.0 - q) / (k - 1)
            return [q if o == spec.option else rest for o in options]
        return [math.comb(k - 1, i) * q ** i * (1.0 - q) ** (k - 1 - i) for i in range(k)]
def _numbers(options: Sequence[str]) -> list[float] | None:
    """The options as numbers, or ``None`` if any is not a number."""
    try:
        return [float(o) for o in options]
    except ValueError:
        return None


def _nearest(target: float, options: Sequence[str], numbers: Sequence[float]) -> list[float]:
    """All mass on the option nearest ``target`` (ties: the lower one)."""
    best = min(range(len(numbers)), key=lambda i: (abs(numbers[i] - target), numbers[i]))
    return _play(options[best], options)


class _Share(Policy):
    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        numbers = _numbers(options)
        if numbers is None:
            if spec.threshold is not None:
                return POLICIES["threshold"].probabilities(spec, facts, options)
            return _play(spec.option if spec.option in options else options[0], options)
        p = float(spec.p if spec.p is not None else DEFAULT_P)
        low, high = min(numbers), max(numbers)
        return _nearest(low + p * (high - low), options, numbers)


class _Follow(Policy):
    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        numbers = _numbers(options)
        if numbers is None:
            return _play(_cooperate(spec, options), options)
        low, high = min(numbers), max(numbers)
        last = facts.partner_last_choice
        reference = float(last) if last in options else (low + high) / 2
        anchor = float(spec.option) if spec.option in options else low
        p = float(spec.p if spec.p is not None else DEFAULT_P)
        return _nearest(p * reference + (1 - p) * anchor, options, numbers)


class _Sustainable(Policy):
    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        numbers = _numbers(options)
        if numbers is None:
            return _play(spec.option if spec.option in options else options[0], options)
        p = float(spec.p if spec.p is not None else DEFAULT_P)
        limit = p * max(numbers)
        within = [i for i, x in enumerate(numbers) if x <= limit]
        pick = max(within, key=numbers.__getitem__) if within \
            else min(range(len(numbers)), key=numbers.__getitem__)
        return _play(options[pick], options)


class _Greedy(Policy):
    def probabilities(self, spec: PolicySpec, facts: PolicyFacts, options: Sequence[str]
                      ) -> list[float]:
        numbers = _numbers(options)
        if numbers is None:
            return _play(spec.option if spec.option in options else options[-1], options)
        return _play(options[max(range(len(numbers)), key=numbers.__getitem__)], options)


class _Haggle(Policy):
    def message(self, spec: PolicySpec, facts: PolicyFacts) -> str | None:
        return haggle_message(spec, facts)


POLICIES: Mapping[str, Policy] = {
    "always": _Always(),
    "random": _Random(),
    "tit_for_tat": _TitForTat(),
    "grim_trigger": _GrimTrigger(),
    "naming_game": _NamingGame(),
    "threshold": _Threshold(),
    "haggle": _Haggle(),
    "trait_linked": _TraitLinked(),
    "share": _Share(),
    "follow": _Follow(),
    "sustainable": _Sustainable(),
    "greedy": _Greedy(),
}
"""Every scripted policy by ``PolicySpec.name``."""


def policy_for(name: str) -> Policy:
    """The registered policy called ``name``.

    Raises:
        ValueError: no policy has that name.
    """
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown scripted policy {name!r}") from None


def haggle_message(spec: PolicySpec, facts: PolicyFacts) -> str:
    """A ``haggle`` negotiator's next message.

    The side (buyer or seller) is ``side`` or the agent's role; the limit is its private
    ``reserve``. It accepts the partner's standing offer if it is within the reserve
    (buyer: at most, seller: at least); otherwise it opens 30% beyond its reserve (a buyer
    below, a seller above) and concedes ``concession`` of the remaining gap per offer,
    rounded to whole units on its own side of the reserve.
    """
    side = spec.side or facts.role
    reserve = dict(facts.private).get("reserve")
    if side not in ("buyer", "seller") or reserve is None:
        return "I would like to make a deal, but I need to think about the price."
    buyer = side == "buyer"
    theirs = facts.partner_offer
    if theirs is not None and (theirs <= reserve if buyer else theirs >= reserve):
        return f"I accept your offer of {theirs:g}."
    mine = facts.my_offer
    opening = reserve * (0.7 if buyer else 1.3)
    last = opening if mine is None else mine
    step = float(spec.concession if spec.concession is not None else DEFAULT_CONCESSION)
    offer = last + step * (reserve - last) if mine is not None else opening
    offer = math.floor(offer) if buyer else math.ceil(offer)
    offer = min(offer, reserve) if buyer else max(offer, reserve)
    return f"I offer {offer:g}."


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
