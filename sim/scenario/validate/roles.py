"""Checks of roles: how members are given, private values, and every reference to a role."""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario.spec import BroadcastStage, RoleSpec, ScenarioSpec, StageBase
from sim.scenario.validate.suggest import Problems, did_you_mean

__all__ = ["check_role_ref", "check_roles", "check_stage_roles", "role_size"]


def role_size(role: RoleSpec, n: int) -> int:
    """How many agents ``role`` asks for in a population of ``n``."""
    if role.agents is not None:
        return len(role.agents)
    return role.count if role.count is not None else round((role.fraction or 0.0) * n)


def check_roles(spec: ScenarioSpec) -> Problems:
    """Role names, how members are given, explicit indices, totals and private values."""
    n, taken = spec.population.size, {}
    names = [r.name for r in spec.roles]
    for i, role in enumerate(spec.roles):
        where = f"roles.{i}"
        if names.index(role.name) != i:
            yield ScenarioError(f"duplicate role '{role.name}'.", field=f"{where}.name",
                                value=role.name, fix="give every role a unique name.")
        given = [k for k in ("agents", "count", "fraction") if getattr(role, k) is not None]
        if len(given) != 1:
            yield ScenarioError(
                "a role needs exactly one of 'agents', 'count' or 'fraction'.", field=where,
                fix="write agents: [0], count: 10 or fraction: 0.5.")
        for j, agent in enumerate(role.agents or []):
            if agent >= n or agent in taken:
                yield ScenarioError(
                    f"agent {agent} is outside the population of {n}." if agent >= n
                    else f"agent {agent} is already in role '{taken[agent]}'.",
                    field=f"{where}.agents.{j}", value=agent,
                    fix=f"use agent indices 0..{n - 1}, each in at most one role.")
            taken[agent] = role.name
        for key, private in role.private.items():
            fixed = private.value is not None
            ranged = private.min is not None and private.max is not None
            if fixed == ranged or (ranged and private.min > private.max):  # type: ignore[operator]
                yield ScenarioError(
                    "a private value needs 'value', or 'min' <= 'max'.",
                    field=f"{where}.private.{key}",
                    fix="write {value: 60} or {min: 40, max: 80, step: 5}.")
            elif ranged and (private.max - private.min) / private.step > MAX_PRIVATE_STEPS:  # type: ignore[operator]
                yield ScenarioError(
                    f"the range {private.min:g}..{private.max:g} in steps of {private.step:g} "
                    f"has over {MAX_PRIVATE_STEPS:,} values.", field=f"{where}.private.{key}.step",
                    value=private.step, fix="use a coarser step (values are drawn on its grid).")
    total = sum(role_size(role, n) for role in spec.roles)
    if total > n:
        yield ScenarioError(f"roles add up to {total} agents, more than the population of {n}.",
                            field="roles", value=total, fix="lower the role counts or fractions.")
    if spec.alternate_roles and len(spec.roles) < 2:
        yield ScenarioError("alternate_roles swaps the first two roles, but there are "
                            f"{len(spec.roles)}.", field="alternate_roles",
                            fix="define two roles or remove alternate_roles.")


MAX_PRIVATE_STEPS = 1_000_000
"""Most grid points of a drawn private value: a finer grid is indistinguishable in prompts
and its index would leave the range of exact floats."""


def check_role_ref(value: str, spec: ScenarioSpec, field: str) -> Problems:
    """``value`` (at ``field``) names a role defined under ``roles:``."""
    known = [r.name for r in spec.roles]
    if value not in known:
        yield ScenarioError(
            f"unknown role '{value}'.", field=field, value=value,
            fix=f"{did_you_mean(value, known)}known roles: {', '.join(known)}." if known
            else "define it under 'roles:' first.")


def check_stage_roles(stage: StageBase, spec: ScenarioSpec, where: str) -> Problems:
    """Every role a stage names (actors, lead, speaker, grouping roles) exists."""
    groups = stage.groups
    refs = [(f"{where}.actors.{i}", r) for i, r in enumerate(stage.actors or [])]
    refs += [(f"{where}.groups.roles.{i}", r) for i, r in enumerate(groups.roles or [])]
    refs += [(f"{where}.groups.among.{i}", r) for i, r in enumerate(groups.among or [])]
    for key in ("lead", "speaker"):
        if getattr(stage, key, None) is not None:
            refs.append((f"{where}.{key}", getattr(stage, key)))
    for field, value in refs:
        yield from check_role_ref(value, spec, field)
    if groups.by == "bipartite" and groups.roles is None:
        yield ScenarioError("groups.by 'bipartite' needs two 'roles'.", field=f"{where}.groups",
                            fix="add roles: [buyer, seller].")
    if isinstance(stage, BroadcastStage) and stage.speaker is None \
            and stage.max_new_tokens is not None and groups.by != "ego":
        yield ScenarioError("'max_new_tokens' is only used with a 'speaker'.",
                            field=f"{where}.max_new_tokens",
                            fix="remove it or add speaker: ROLE (or groups: {by: ego}).")
