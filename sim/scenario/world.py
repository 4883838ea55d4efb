"""World state in a scenario: named variables that carry across rounds.

``state:`` declares global variables, ``agent_state:`` variables every agent has its own copy
of. A variable is numeric (``initial`` a number, optional ``min``/``max``) or categorical
(``values: [...]`` and ``initial`` one of them)::

    state:
      lake: {initial: 100, min: 0, max: 100}            # on_bound: clamp (the default)
      regime: {values: [open, closed], initial: open}
    agent_state:
      wealth: {initial: 0, min: 0, on_bound: refuse}

A stage changes state with ``update:``, a mapping from ``state.X`` or ``my.state.Y`` to a
formula (:mod:`sim.scenario.formula`), applied after the stage's rows exist, in the order
written: each update sees the values the updates before it left. A ``my.state.Y`` update is
evaluated for every agent. An update that leaves a numeric variable's bounds is clamped
to the bound (``on_bound: clamp``) or not applied at all (``on_bound: refuse``: the variable
keeps its value and the state row of that step says ``refused``); a run never stops on it.

``stop:`` (a formula on the scenario) ends a replica's run after the first stage execution
(updates applied) at which it is true; ``while: {state: ...}`` on a flow edge makes the edge
apply only while the formula is true. Both need ``rounds`` written explicitly, so that a
condition that never turns false still ends.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sim.scenario.fields import Formula, Name, Number, Strict

__all__ = ["UPDATE_KEY", "StateVarSpec", "Updates", "update_target"]

UPDATE_KEY = r"^(my\.)?state\.[A-Za-z][A-Za-z0-9_]{0,31}$"
"""The keys of a stage's ``update:`` mapping: ``state.NAME`` or ``my.state.NAME``."""

Updates = dict[Annotated[str, Field(pattern=UPDATE_KEY)], Formula]
"""A stage's ``update:``: target -> formula, applied in the order written."""


class StateVarSpec(Strict):
    """One state variable: numeric (``initial`` a number) or categorical (``values``).

    ``min``/``max`` bound a numeric variable; ``on_bound`` says what an update that leaves
    them does: ``clamp`` to the bound, or ``refuse`` (the update is not applied).
    """

    initial: Number | Annotated[str, Field(min_length=1, max_length=200)]
    min: Number | None = None
    max: Number | None = None
    on_bound: Literal["clamp", "refuse"] = "clamp"
    values: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]],
                      Field(min_length=1, max_length=64)] | None = None

    @property
    def categorical(self) -> bool:
        """Whether the variable holds one of ``values`` rather than a number."""
        return self.values is not None


def update_target(key: str) -> tuple[Literal["global", "agent"], Name]:
    """Scope and name of an update key: ``my.state.wealth`` -> ``("agent", "wealth")``."""
    scope: Literal["global", "agent"] = "agent" if key.startswith("my.") else "global"
    return scope, key.rsplit(".", 1)[1]
