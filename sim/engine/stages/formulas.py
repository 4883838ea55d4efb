"""The named values a payoff or outcome formula sees, and evaluating formulas for a group.

The names (and what each means) are listed once, in :mod:`sim.scenario.formula`
(:func:`~sim.scenario.formula.formula_names`); :func:`member_values` fills them for one member.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from sim.scenario.formula import Formula, is_plain_name
from sim.scenario.spec import ChoiceStage, PayoffSpec

if TYPE_CHECKING:
    from agents.agent import Agent

__all__ = ["member_values", "parsed", "payoff_for"]


@lru_cache(maxsize=256)
def parsed(source: str) -> Formula:
    """A formula parsed once (checked against its names at load time)."""
    return Formula.parse(source, texts=None)


def member_values(agent: Agent, members: Sequence[Agent], values: Mapping[int, float],
                  round_: int, params: Mapping[str, float], *,
                  correct: bool = False, extra: Mapping[str, float] | None = None
                  ) -> dict[str, float | str]:
    """The named values of one group member (``values``: agent index -> value of actors)."""
    spec = agent.model.spec
    others = [m for m in members if m is not agent]
    partner = others[0] if others else None
    total = sum(values.values())
    mine = values.get(agent.index, 0.0)
    out: dict[str, float | str] = dict(params)
    out.update(agent.model.world.names(round_, agent.index))  # round, state.X, my.state.Y
    out.update({k: 0.0 for r in spec.roles for k in r.private})
    out.update(agent.private)
    role = agent.role(round_)
    out.update({f"is_{r.name}": float(r.name == role) for r in spec.roles})
    for stage in spec.stages:
        if isinstance(stage, ChoiceStage) and is_plain_name(stage.id):
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


def payoff_for(payoff: PayoffSpec, role: str | None, names: Mapping[str, float | str]
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
