"""The names each kind of formula may use.

What each name means is listed once, in the docstring of :mod:`sim.scenario.formula`; they
are filled at run time by :mod:`sim.engine.stages.formulas` and :mod:`sim.engine.world`.
"""

from __future__ import annotations

import ast

from sim.scenario.spec import ChoiceStage, DialogueStage, ScenarioSpec, StageBase

__all__ = ["AGENT_UPDATE_NAMES", "BASE_NAMES", "DEAL_NAMES", "UPDATE_NAMES", "WORLD_NAMES",
           "condition_names", "dotted", "formula_names", "is_plain_name", "state_names",
           "update_names"]

BASE_NAMES = ("value", "acted", "correct", "partner_value", "sum_values", "mean_values",
              "others_sum", "n", "n_actors")
DEAL_NAMES = ("deal", "price")
WORLD_NAMES = ("round", "rounds", "n_agents")
UPDATE_NAMES = ("total_value", "mean_value", "n_actors", "total_payoff", "mean_payoff")
AGENT_UPDATE_NAMES = ("value", "acted", "payoff")


def is_plain_name(name: str) -> bool:
    """Whether a stage id or role name can be a formula variable (a Python identifier)."""
    return name.isidentifier()


def formula_names(spec: ScenarioSpec, stage: StageBase) -> set[str]:
    """Every name a formula of ``stage`` may use (see the module docstring)."""
    names = set(BASE_NAMES) | set(spec.params)
    for other in spec.stages:
        if isinstance(other, ChoiceStage) and is_plain_name(other.id):
            names |= {other.id, f"partner_{other.id}"}
    names |= {f"is_{r.name}" for r in spec.roles if is_plain_name(r.name)}
    names |= {k for r in spec.roles for k in r.private}
    if isinstance(stage, DialogueStage):
        names |= set(DEAL_NAMES)
    return names | condition_names(spec, agent=True)


def state_names(spec: ScenarioSpec, *, agent: bool) -> tuple[set[str], set[str]]:
    """The numeric and the text (categorical) state names (``state.X``, ``my.state.Y``)."""
    numeric: set[str] = set()
    text: set[str] = set()
    scopes = [("state", spec.state)] + ([("my.state", spec.agent_state)] if agent else [])
    for prefix, variables in scopes:
        for key, var in variables.items():
            (text if var.categorical else numeric).add(f"{prefix}.{key}")
    return numeric, text


def condition_names(spec: ScenarioSpec, *, agent: bool = False) -> set[str]:
    """Names of ``stop``, ``while: {state}`` and ``max_formula`` (``agent``: ``my.state``).

    The text names among them are :func:`state_names`' second set.
    """
    numeric, text = state_names(spec, agent=agent)
    return set(spec.params) | set(WORLD_NAMES) | numeric | text


def update_names(spec: ScenarioSpec, *, agent: bool) -> tuple[set[str], set[str]]:
    """Names of ``update:`` formulas (``agent``: a ``my.state.Y`` one), and the text ones."""
    names = condition_names(spec, agent=agent) | set(UPDATE_NAMES)
    text = state_names(spec, agent=agent)[1]
    if agent:
        names |= {*AGENT_UPDATE_NAMES, "my.choice"}
        text.add("my.choice")
    return names, text


def dotted(node: ast.AST) -> str | None:
    """``state.lake`` for an attribute chain of plain names, else ``None``."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or not parts:
        return None
    return ".".join([node.id, *reversed(parts)])
