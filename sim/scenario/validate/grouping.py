"""Checks of a stage's ``groups:``: options only some rules use, sizes, fixed groups."""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario.spec import GroupingSpec, ScenarioSpec
from sim.scenario.validate.roles import role_size
from sim.scenario.validate.suggest import Problems

__all__ = ["MAX_GROUP", "NETWORK_RULES", "OPTION_RULES", "check_grouping"]

NETWORK_RULES = ("neighbours", "neighbour_sample", "ego")
"""Grouping rules that read the social network."""

MAX_GROUP = 1_000
"""Largest group a stage may form: every member's record lists its partners, so one step of
a group of g writes g * (g - 1) partner entries (a million at this bound)."""

OPTION_RULES = {"size": ("groups_of",), "remainder": ("groups_of",),
                "redraw": ("random_pairs", "groups_of", "neighbour_sample"),
                "k": ("neighbour_sample",), "groups": ("fixed",),
                "roles": ("bipartite",),
                "among": ("all", "random_pairs", "groups_of", "round_robin")}
"""Each grouping option and the ``by`` rules that use it."""


def check_grouping(groups: GroupingSpec, spec: ScenarioSpec, where: str) -> Problems:
    """Check a stage's ``groups:``; ``where`` is its dotted path (``stages.0.groups``)."""
    for key, rules in OPTION_RULES.items():
        if key in groups.model_fields_set and groups.by not in rules:
            uses = " or ".join(f"by: {r}" for r in rules)
            yield ScenarioError(
                f"'{key}' is only used with {uses}, but the stage groups by {groups.by}.",
                field=f"{where}.{key}", value=getattr(groups, key),
                fix=f"remove '{key}' or set {uses}.",
            )
    n = spec.population.size
    if groups.by in NETWORK_RULES and spec.network is None:
        yield ScenarioError(f"groups.by '{groups.by}' needs a network.", field=f"{where}.by",
                            value=groups.by,
                            fix="add a 'network:' section or group by random_pairs.")
    if groups.k is not None and groups.k < 1:
        yield ScenarioError(
            f"k = {groups.k}: every agent must draw at least one neighbour.",
            field=f"{where}.k", value=groups.k,
            fix="use k: 1 (one random neighbour per round) or more; an agent with fewer "
                "neighbours plays all of them.")
    if groups.by == "groups_of":
        if groups.size is None:
            yield ScenarioError("groups.by 'groups_of' needs a 'size'.", field=where,
                                fix="add size: K, the number of agents per group (K >= 2).")
        elif groups.size < 2:
            yield ScenarioError(
                f"groups of {groups.size} agent(s) meet nobody.", field=f"{where}.size",
                value=groups.size, fix="use a size of at least 2.")
        elif groups.size > n:
            yield ScenarioError(
                f"groups of {groups.size} in a population of {n}: nobody would be grouped.",
                field=f"{where}.size", value=groups.size, fix=f"use a size of at most {n}.")
        elif groups.size > MAX_GROUP:
            yield ScenarioError(
                f"groups of {groups.size} are over the limit of {MAX_GROUP:,} agents.",
                field=f"{where}.size", value=groups.size,
                fix=f"use a size of at most {MAX_GROUP:,} (see 'Limits' in "
                    "docs/architecture.md).")
    if groups.by == "all":
        members = n if groups.among is None else sum(
            role_size(r, n) for r in spec.roles if r.name in groups.among)
        if members > MAX_GROUP:
            yield ScenarioError(
                f"groups.by 'all' puts {members:,} agents in one group, over the limit of "
                f"{MAX_GROUP:,}.", field=f"{where}.by", value="all",
                fix=f"use groups_of with a size of at most {MAX_GROUP:,}, neighbours on a "
                    "network, or random_pairs.")
    if groups.by == "fixed":
        yield from _check_fixed(groups, n, where)


def _check_fixed(groups: GroupingSpec, n: int, where: str) -> Problems:
    if not groups.groups:
        yield ScenarioError(
            "groups.by 'fixed' needs a non-empty list 'groups' of agent index lists.",
            field=f"{where}.groups" if groups.groups is not None else where,
            fix="add groups: [[0, 1, 2], [3, 4, 5]].")
        return
    seen: dict[int, int] = {}
    for j, group in enumerate(groups.groups):
        if len(group) < 2:
            yield ScenarioError(
                f"fixed group {j} has {len(group)} agent(s); a group needs at least 2.",
                field=f"{where}.groups.{j}", value=group,
                fix="add agents to the group or remove it (unlisted agents sit out).")
        for m, agent in enumerate(group):
            field = f"{where}.groups.{j}.{m}"
            if not 0 <= agent < n:
                yield ScenarioError(
                    f"agent index {agent} is outside the population of {n}.", field=field,
                    value=agent, fix=f"use agent indices 0..{n - 1}.")
            elif agent in seen:
                also = "earlier in this group" if seen[agent] == j else f"in group {seen[agent]}"
                yield ScenarioError(
                    f"agent {agent} is listed twice (also {also}).", field=field, value=agent,
                    fix="list every agent in at most one group.")
            seen[agent] = j
