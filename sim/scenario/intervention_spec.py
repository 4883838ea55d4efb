"""Interventions in a scenario: changes to a running world at a round or on a condition.

An intervention fires once per replica, at the start of a round (before the round's first
stage): at a given round (``at: {round: N}``) or at the first round start at which a
condition on state holds (``when: "state.lake < 30"``). It may set state and parameters,
announce a text to all agents or some (``to``), swap a cohort's scripted policy or its
conditioning, and add or remove network edges::

    interventions:
      - id: quota
        at: {round: 5}
        set: {state.lake: state.lake + 10, params.cap: 80, my.state.wealth: 0}
        announce: From now on each fisher may catch at most 5 tonnes.
        to: {role: fisher}
        policy: {cohort: greedy, policy: {name: always, option: "0"}}
        conditioning: {cohort: c1, conditioning: none}
        edges: {add: [[0, 3]], remove: [[1, 2]]}

The cross-field checks are in :mod:`sim.scenario.validate.interventions`; the run-time
side in :mod:`sim.engine.interventions`. ``PolicySpec`` is defined in
:mod:`sim.scenario.spec`, which imports this module, so :class:`PolicySwapSpec` is completed
there (``model_rebuild``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from sim.scenario.fields import Conditioning, Formula, Number, Slug, Strict

if TYPE_CHECKING:
    from sim.scenario.spec import PolicySpec

__all__ = ["SET_KEY", "AtSpec", "ConditioningSwapSpec", "EdgeChangeSpec", "InterventionSpec",
           "PolicySwapSpec", "ReachSpec", "set_target"]

SET_KEY = r"^((my\.)?state|params)\.[A-Za-z][A-Za-z0-9_]{0,31}$"
"""The keys of an intervention's ``set:``: ``state.X``, ``my.state.Y`` or ``params.Z``."""

Edge = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2, max_length=2)]


class AtSpec(Strict):
    """When a scheduled intervention fires: at the start of ``round``."""

    round: Annotated[int, Field(ge=1)]


class ReachSpec(Strict):
    """Who an announcement (and a ``my.state`` set) reaches: one of a role, a cohort, agents."""

    role: Slug | None = None
    cohort: Slug | None = None
    agents: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] | None = None


class PolicySwapSpec(Strict):
    """Every agent of ``cohort`` plays ``policy`` from now on."""

    cohort: Slug
    policy: PolicySpec


class ConditioningSwapSpec(Strict):
    """Every language-model agent of ``cohort`` is conditioned by ``conditioning`` from now on."""

    cohort: Slug
    conditioning: Conditioning


class EdgeChangeSpec(Strict):
    """Network edges (agent index pairs) to add and to remove, in that order."""

    add: list[Edge] = Field(default=[])
    remove: list[Edge] = Field(default=[])


class InterventionSpec(Strict):
    """One intervention: a trigger (``at`` or ``when``) and what it changes.

    ``set`` maps ``state.X``, ``my.state.Y`` or ``params.Z`` to a formula (or a number),
    applied in the order written, each seeing the values the ones above it left; a
    ``my.state.Y`` set applies to every agent, or to those of ``to``. ``announce`` reaches
    the memory of every agent, or of those of ``to``, as a game master's message.
    """

    id: Slug
    at: AtSpec | None = None
    when: Formula | None = None
    set: dict[Annotated[str, Field(pattern=SET_KEY)], Formula | Number] = Field(default={})
    announce: Annotated[str, Field(min_length=1, max_length=5000)] | None = None
    to: ReachSpec | None = None
    policy: PolicySwapSpec | None = None
    conditioning: ConditioningSwapSpec | None = None
    edges: EdgeChangeSpec | None = None


def set_target(key: str) -> tuple[str, str]:
    """Scope and name of a ``set`` key: ``my.state.w`` -> ``("agent", "w")``.

    Scopes: ``global`` (``state.X``), ``agent`` (``my.state.Y``), ``params``.
    """
    prefix, name = key.rsplit(".", 1)
    return {"state": "global", "my.state": "agent", "params": "params"}[prefix], name
