"""The named values a payoff or outcome formula sees, and evaluating formulas for a group.

For a member ``a`` of a group in stage ``S`` of round ``r`` (every name is a number):

- ``value``: a's choice in ``S`` as a number (a numeric option is its number, any other its
  index; 0 if a did not act); ``acted``: 1 if a acted; ``correct``: 1 if a's choice is the
  stage's ``answer``;
- ``partner_value``: the first other member's value; ``sum_values``, ``mean_values``,
  ``others_sum``: over the group; ``n``: group size; ``n_actors``: members who acted;
- ``<stage>`` and ``partner_<stage>``: a's and the first partner's value in another choice
  stage of this round (0 if none), for every choice stage whose id is a plain name;
- ``is_<role>``: 1 if a holds that role this round;
- every private value name (a's own, 0 if it has none) and every scenario ``params`` name;
- in dialogue stages with ``offers``: ``deal`` (1 if an offer was accepted) and ``price``
  (the accepted offer, 0 without a deal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from sim.scenario.formula import Formula
from sim.scenario.spec import ChoiceStage, DialogueStage, PayoffSpec, ScenarioSpec

if TYPE_CHECKING:
    from agents.agent import Agent

__all__ = ["BASE_NAMES", "DEAL_NAMES", "formula_names", "member_values", "parsed", "payoff_for"]

BASE_NAMES = ("value", "acted", "correct", "partner_value", "sum_values", "mean_values",
              "others_sum", "n", "n_actors")
DEAL_NAMES = ("deal", "price")


def _plain(name: str) -> bool:
    return name.isidentifier()


def formula_names(spec: ScenarioSpec, stage: object) -> set[str]:
    """Every name a formula of ``stage`` may use."""
    names = set(BASE_NAMES) | set(spec.params)
    for other in spec.stages:
        if isinstance(other, ChoiceStage) and _plain(other.id):
            names |= {other.id, f"partner_{other.id}"}
    names |= {f"is_{r.name}" for r in spec.roles if _plain(r.name)}
    names |= {k for r in spec.roles for k in r.private}
    if isinstance(stage, DialogueStage):
        names |= set(DEAL_NAMES)
    return names


@lru_cache(maxsize=256)
def parsed(source: str) -> Formula:
    """A formula parsed once (checked against its names at load time)."""
    return Formula.parse(source)


def member_values(agent: Agent, members: Sequence[Agent], values: Mapping[int, float],
                  round_: int, params: Mapping[str, float], *,
                  correct: bool = False, extra: Mapping[str, float] | None = None
                  ) -> dict[str, float]:
    """The named values of one group member (``values``: agent index -> value of actors)."""
    spec = agent.model.spec
    others = [m for m in members if m is not agent]
    partner = others[0] if others else None
    total = sum(values.values())
    mine = values.get(agent.index, 0.0)
    out: dict[str, float] = dict(params)
    out.update({k: 0.0 for r in spec.roles for k in r.private})
    out.update(agent.private)
    role = agent.role(round_)
    out.update({f"is_{r.name}": float(r.name == role) for r in spec.roles})
    for stage in spec.stages:
        if isinstance(stage, ChoiceStage) and _plain(stage.id):
            out[stage.id] = agent.value_in(stage.id, round_)
            out[f"partner_{stage.id}"] = partner.value_in(stage.id, round_) if partner else 0.0
    out.update(
        value=mine, acted=float(agent.index in values), correct=float(correct),
        partner_value=values.get(partner.index, 0.0) if partner else 0.0,
        sum_values=total, mean_values=total / len(values) if values else 0.0,
        others_sum=total - mine, n=float(len(members)), n_actors=float(len(values)),
    )
    out.update(extra or {})
    return out


def payoff_for(payoff: PayoffSpec, role: str | None, names: Mapping[str, float]
               ) -> float | None:
    """A formula payoff for one member (``None``: its role has no formula)."""
    formula = payoff.formula
    if formula is None:
        return None
    if isinstance(formula, str):
        return parsed(formula).evaluate(names)
    if role is None or role not in formula:
        return None
    return parsed(formula[role]).evaluate(names)
