"""Who meets whom in a stage: groups of agent indices plus the agents sitting out.

:func:`form_groups` is pure: the caller passes the RNG stream. Rules that keep their draw for
the whole run (``redraw: never``, ``round_robin``, ``fixed``) must get the same stream every
round; :func:`stream_key` says which stream a rule draws from in a round and
:func:`cache_key` names a grouping so that stages with the same rule share it within a round.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from sim.scenario.spec import GroupingSpec

__all__ = ["RULES", "Grouping", "cache_key", "form_groups", "stream_key"]

RULES = ("all", "random_pairs", "neighbours", "groups_of", "round_robin", "fixed", "bipartite",
         "neighbour_sample", "ego")
"""Every ``by`` value; the index of a rule with no options is its stream key (stable)."""


@dataclass(frozen=True, slots=True)
class Grouping:
    """The groups of one stage execution.

    Attributes:
        groups: tuples of agent indices; an agent may be in several groups (``neighbours``).
        sitting_out: agents in no group this time (the odd one out of random pairs).
    """

    groups: tuple[tuple[int, ...], ...]
    sitting_out: tuple[int, ...] = ()


def _options(spec: GroupingSpec) -> dict[str, object]:
    """The options besides ``by`` that differ from their defaults (old rules keep their key)."""
    return spec.model_dump(exclude={"by"}, exclude_defaults=True)


def cache_key(spec: GroupingSpec, round_: int) -> tuple[int, str]:
    """The key of a grouping in a simulation's per-round cache: ``(round, rule)``.

    The rule is ``by`` alone when no option is set (``"random_pairs"``), else ``by`` plus
    its options as compact JSON, so stages with different sizes or groups never share.

    Args:
        spec: the grouping rule.
        round_: the 1-based round.
    """
    options = _options(spec)
    if not options:
        return round_, spec.by
    return round_, f"{spec.by}:{json.dumps(options, sort_keys=True, separators=(',', ':'))}"


def stream_key(spec: GroupingSpec, round_: int) -> tuple[int, int]:
    """The ``(round, rule)`` spawn key of the RNG stream a grouping is drawn from.

    The round is 1 for rules that keep their draw (``redraw: never``, ``round_robin``,
    ``fixed``), else ``round_``. The rule is its index in :data:`RULES` when no option is
    set, else a stable 31-bit digest of :func:`cache_key`'s rule, so different options draw
    independently.

    Args:
        spec: the grouping rule.
        round_: the 1-based round.
    """
    keeps = spec.redraw == "never" or spec.by in ("round_robin", "fixed", "bipartite")
    draw_round = 1 if keeps else round_
    rule = cache_key(spec, round_)[1]
    if rule == spec.by:
        return draw_round, RULES.index(spec.by)
    digest = hashlib.blake2b(rule.encode(), digest_size=4).digest()
    return draw_round, int.from_bytes(digest, "big") >> 1


def form_groups(spec: GroupingSpec, size: int, network: nx.Graph | None,
                rng: np.random.Generator, *, round_: int = 1,
                roles: Sequence[str | None] | None = None) -> Grouping:
    """Form the groups of a stage for a population of ``size`` agents.

    Args:
        spec: how to group.
        size: number of agents (indices ``0..size-1``).
        network: the social network (needed for ``neighbours``, ``neighbour_sample`` and
            ``ego``).
        rng: the stream of :func:`stream_key` (the same every round for kept draws).
        round_: the 1-based round (selects the rotation of ``round_robin``).
        roles: every agent's role (needed for ``bipartite`` and ``among``).

    Raises:
        ValueError: if the rule cannot group ``size`` agents (checked earlier for scenarios
            by :mod:`sim.scenario.validate`).
    """
    if spec.among is not None:
        return _among(spec, size, rng, round_, roles or [None] * size)
    if spec.by == "bipartite":
        return _bipartite(spec, size, rng, round_, roles or [None] * size)
    if spec.by == "all":
        return Grouping(groups=(tuple(range(size)),))
    if spec.by == "random_pairs":
        return _chunks([int(i) for i in rng.permutation(size)], 2, merge=False)
    if spec.by == "groups_of":
        if spec.size is None or spec.size < 2:
            raise ValueError(f"groups_of needs a size of at least 2, got {spec.size}")
        order = [int(i) for i in rng.permutation(size)]
        return _chunks(order, spec.size, merge=spec.remainder == "merge")
    if spec.by == "round_robin":
        return _round_robin([int(i) for i in rng.permutation(size)], round_)
    if spec.by == "fixed":
        return _fixed(spec.groups or [], size)
    if network is None:
        raise ValueError(f"grouping by {spec.by} needs a network")
    if spec.by == "neighbour_sample":
        return _neighbour_sample(network, size, spec.k or 1, rng)
    if spec.by == "ego":
        return _ego(network, size)
    edges = tuple(sorted((min(a, b), max(a, b)) for a, b in network.edges() if a != b))
    linked = {n for edge in edges for n in edge}  # a self-loop links an agent to nobody
    alone = tuple(n for n in range(size) if n not in linked)
    return Grouping(groups=edges, sitting_out=alone)


def _near(network: nx.Graph, agent: int) -> list[int]:
    """An agent's network neighbours in index order (a self-loop is no neighbour)."""
    return sorted(int(b) for b in network.adj.get(agent, ()) if b != agent)


def _neighbour_sample(network: nx.Graph, size: int, k: int, rng: np.random.Generator
                      ) -> Grouping:
    """Each agent, in index order, draws ``min(k, degree)`` distinct neighbours; one pair each.

    The draws come from one stream in agent order, so the same seed and round give the same
    pairs. Pairs list the initiator first, its drawn partners in index order.
    """
    pairs: list[tuple[int, int]] = []
    for agent in range(size):
        near = _near(network, agent)
        if not near:
            continue
        drawn = rng.choice(len(near), size=min(k, len(near)), replace=False)
        pairs.extend((agent, near[int(j)]) for j in sorted(drawn))
    paired = {x for pair in pairs for x in pair}
    return Grouping(groups=tuple(pairs),
                    sitting_out=tuple(a for a in range(size) if a not in paired))


def _ego(network: nx.Graph, size: int) -> Grouping:
    """One group per agent with neighbours: the agent first, then its neighbours."""
    groups, alone = [], []
    for agent in range(size):
        near = _near(network, agent)
        if near:
            groups.append((agent, *near))
        else:
            alone.append(agent)
    return Grouping(groups=tuple(groups), sitting_out=tuple(alone))


def _chunks(order: list[int], k: int, *, merge: bool) -> Grouping:
    """Consecutive groups of ``k``; the ``len(order) % k`` left over sit out or are merged.

    Merged leftovers join the last groups one each (the last group first, cycling back).
    """
    count = len(order) // k
    groups = [order[i * k:(i + 1) * k] for i in range(count)]
    rest = order[count * k:]
    if merge and groups:
        for i, agent in enumerate(rest):
            groups[count - 1 - i % count].append(agent)
        rest = []
    return Grouping(groups=tuple(tuple(g) for g in groups), sitting_out=tuple(rest))


def _round_robin(order: list[int], round_: int) -> Grouping:
    """Circle method: the first slot stays, the others rotate by one slot per round.

    With an odd number of agents an empty slot is added; whoever faces it sits out.
    """
    slots: list[int | None] = [None, *order] if len(order) % 2 else list(order)
    if len(slots) < 2:
        return Grouping(groups=(), sitting_out=tuple(order))
    turn = (round_ - 1) % (len(slots) - 1)
    rest = slots[1:]
    rotated = [slots[0], *rest[turn:], *rest[:turn]]
    half = len(rotated) // 2
    pairs = [(rotated[i], rotated[-1 - i]) for i in range(half)]
    groups = tuple((a, b) for a, b in pairs if a is not None and b is not None)
    out = tuple(x for a, b in pairs if a is None or b is None for x in (a, b) if x is not None)
    return Grouping(groups=groups, sitting_out=out)


def _fixed(groups: list[list[int]], size: int) -> Grouping:
    """Explicit groups; every agent at most once, agents in no group sit out."""
    seen: set[int] = set()
    for group in groups:
        for agent in group:
            if not 0 <= agent < size or agent in seen:
                raise ValueError(f"fixed groups: agent {agent} is out of range 0..{size - 1} "
                                 "or repeated")
            seen.add(agent)
    return Grouping(groups=tuple(tuple(g) for g in groups),
                    sitting_out=tuple(a for a in range(size) if a not in seen))


def _among(spec: GroupingSpec, size: int, rng: np.random.Generator, round_: int,
           roles: Sequence[str | None]) -> Grouping:
    """Group only the agents whose role is in ``among``; everyone else sits out."""
    assert spec.among is not None
    pool = [i for i in range(size) if roles[i] in spec.among]
    inner = form_groups(spec.model_copy(update={"among": None}), len(pool), None, rng,
                        round_=round_, roles=[roles[i] for i in pool])
    out = {i for i in range(size) if roles[i] not in spec.among}
    return Grouping(groups=tuple(tuple(pool[a] for a in g) for g in inner.groups),
                    sitting_out=tuple(sorted(out | {pool[a] for a in inner.sitting_out})))


def _bipartite(spec: GroupingSpec, size: int, rng: np.random.Generator, round_: int,
               roles: Sequence[str | None]) -> Grouping:
    """Pairs across two roles, rotating.

    Member ``i`` of the smaller side meets member ``(i + round - 1) mod L`` of the larger
    side (``L`` members), so every cross pair meets once in ``L`` rounds. Pairs list the
    first role's member first.
    """
    if spec.roles is None:
        raise ValueError("bipartite grouping needs two roles")
    first, second = ([i for i in range(size) if roles[i] == r] for r in spec.roles)
    first = [first[int(k)] for k in rng.permutation(len(first))]
    second = [second[int(k)] for k in rng.permutation(len(second))]
    small, large = (first, second) if len(first) <= len(second) else (second, first)
    if not small:
        return Grouping(groups=(), sitting_out=tuple(range(size)))
    turn = round_ - 1
    pairs = [(s, large[(i + turn) % len(large)]) for i, s in enumerate(small)]
    if small is second:
        pairs = [(b, a) for a, b in pairs]
    paired = {x for p in pairs for x in p}
    return Grouping(groups=tuple(pairs),
                    sitting_out=tuple(i for i in range(size) if i not in paired))
