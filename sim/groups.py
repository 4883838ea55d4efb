"""Who meets whom in a stage: groups of agent indices plus the agents sitting out."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from sim.spec import GroupingSpec

__all__ = ["Grouping", "form_groups"]


@dataclass(frozen=True, slots=True)
class Grouping:
    """The groups of one stage execution.

    Attributes:
        groups: tuples of agent indices; an agent may be in several groups (``neighbours``).
        sitting_out: agents in no group this time (the odd one out of random pairs).
    """

    groups: tuple[tuple[int, ...], ...]
    sitting_out: tuple[int, ...] = ()


def form_groups(spec: GroupingSpec, size: int, network: nx.Graph | None,
                rng: np.random.Generator) -> Grouping:
    """Form the groups of a stage for a population of ``size`` agents.

    Args:
        spec: how to group.
        size: number of agents (indices ``0..size-1``).
        network: the social network (needed for ``neighbours``).
        rng: a stream dedicated to this round's grouping.
    """
    if spec.by == "all":
        return Grouping(groups=(tuple(range(size)),))
    if spec.by == "random_pairs":
        order = [int(i) for i in rng.permutation(size)]
        pairs = tuple((order[i], order[i + 1]) for i in range(0, size - 1, 2))
        return Grouping(groups=pairs, sitting_out=tuple(order[len(pairs) * 2:]))
    if network is None:
        raise ValueError("grouping by neighbours needs a network")
    edges = tuple(sorted((min(a, b), max(a, b)) for a, b in network.edges() if a != b))
    alone = tuple(sorted(n for n in range(size) if network.degree(n) == 0))
    return Grouping(groups=edges, sitting_out=alone)
