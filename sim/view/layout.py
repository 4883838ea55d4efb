"""Where the network panel draws each agent, and how a large population is drawn as groups.

Positions are computed once per replica on the server (seeded, so a page reload draws the same
picture) and sent in the unit square. Above :data:`MAX_NODES` agents the panel draws one node
per cohort, per role, or per block of agents instead of one per agent
(:func:`node_groups`): see docs/architecture.md for how the bound was measured.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import polars as pl

__all__ = ["MAX_NODES", "SPRING_MAX", "node_groups", "population", "positions"]

MAX_NODES = 2048
"""Default bound on nodes drawn one per agent (``traitlab view --max-nodes``)."""

SPRING_MAX = 1500
"""Networks up to this size get a force-directed layout; larger ones a circle (it is O(n^2))."""

_BLOCKS = 32  # groups drawn when a population without cohorts or roles is aggregated


def positions(keys: list[str], edges: list[tuple[str, str]]) -> list[tuple[float, float]]:
    """A position in [0, 1]^2 per agent key: spring layout on a network, else circle or grid."""
    n = len(keys)
    if n == 0:
        return []
    if edges and n <= SPRING_MAX:
        graph = nx.Graph()
        graph.add_nodes_from(keys)
        graph.add_edges_from(edges)
        laid = nx.spring_layout(graph, seed=0, iterations=60)
        return _unit([(float(laid[k][0]), float(laid[k][1])) for k in keys])
    if n <= 64 or edges:
        return [(0.5 + 0.45 * math.cos(2 * math.pi * i / n - math.pi / 2),
                 0.5 + 0.45 * math.sin(2 * math.pi * i / n - math.pi / 2)) for i in range(n)]
    side = math.ceil(math.sqrt(n))
    return [((i % side + 0.5) / side, (i // side + 0.5) / side) for i in range(n)]


def _unit(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points scaled into [0.05, 0.95]^2, keeping the aspect ratio."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    return [(0.05 + 0.9 * (x - min(xs)) / span, 0.05 + 0.9 * (y - min(ys)) / span)
            for x, y in points]


def node_groups(agents: pl.DataFrame) -> tuple[str, list[str]]:
    """How to aggregate a replica's agents (rows in index order): the key and each agent's group.

    Cohorts when the population has them, else roles when there are several, else blocks of
    consecutive agents (``a000-a031``), so the panel never has more than a few dozen nodes.
    """
    cohorts = agents["cohort"].to_list()
    if any(c is not None for c in cohorts):
        return "cohort", [c if c is not None else "(no cohort)" for c in cohorts]
    roles = agents["role"].to_list()
    if len({r for r in roles if r is not None}) > 1:
        return "role", [r if r is not None else "(no role)" for r in roles]
    keys = agents["agent"].to_list()
    size = max(1, math.ceil(len(keys) / _BLOCKS))
    return "block", [f"{keys[i - i % size]}-{keys[min(len(keys), i - i % size + size) - 1]}"
                     for i in range(len(keys))]


def population(agents: pl.DataFrame, network: pl.DataFrame, replica: int,
               max_nodes: int) -> dict[str, Any]:
    """The network panel's static part for one replica: nodes, edges, and groups if aggregated.

    Returns:
        ``mode`` (``agents`` or ``groups``), ``agents`` (key, name, cohort, role, policy,
        backend, x, y), ``edges`` (index pairs), ``group_by`` and ``groups`` (name, members as
        indices, x, y) when aggregated.
    """
    rows = agents.filter(pl.col("replica") == replica).sort("index")
    keys = rows["agent"].to_list()
    where = {k: i for i, k in enumerate(keys)}
    net = network.filter(pl.col("replica") == replica)
    edges = [(s, t) for s, t in zip(net["source"].to_list(), net["target"].to_list(),
                                    strict=True) if s in where and t in where]
    aggregate = len(keys) > max_nodes
    xy = [(0.5, 0.5)] * len(keys) if aggregate else positions(keys, edges)
    out: dict[str, Any] = {
        "mode": "groups" if aggregate else "agents",
        "agents": [{"key": k, "name": r["name"], "cohort": r["cohort"], "role": r["role"],
                    "policy": r["policy"], "backend": r["backend"], "x": x, "y": y}
                   for k, r, (x, y) in zip(keys, rows.iter_rows(named=True), xy, strict=True)],
        "edges": [] if aggregate else [[where[s], where[t]] for s, t in edges],
        "max_nodes": max_nodes,
    }
    if aggregate:
        by, labels = node_groups(rows)
        names = list(dict.fromkeys(labels))
        spots = positions(names, [])
        out["group_by"] = by
        out["groups"] = [{"name": g, "members": [i for i, lab in enumerate(labels) if lab == g],
                          "x": spots[j][0], "y": spots[j][1]} for j, g in enumerate(names)]
    return out
