"""Checks of the ``network:`` section, and resolving a networkx generator by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import networkx as nx

from sim.errors import ScenarioError
from sim.scenario.spec import ScenarioSpec
from sim.scenario.validate.suggest import Problems, did_you_mean

__all__ = ["check_network", "network_generator"]

_NOT_PARAMS = ("n", "create_using", "seed", "backend", "backend_kwargs")


def network_generator(name: str) -> Callable[..., object]:
    """Resolve a networkx graph generator by name.

    Raises:
        ScenarioError: if ``name`` is not a networkx generator function.
    """
    known = sorted(
        n for n in dir(nx.generators) if not n.startswith("_") and callable(getattr(nx, n, None))
        and (n.endswith("_graph") or n.endswith("_tree"))
    )
    if name not in known:
        raise ScenarioError(
            f"unknown networkx generator '{name}'.",
            field="network.generator", value=name,
            fix=f"{did_you_mean(name, known)}use a networkx generator such as "
                "watts_strogatz_graph, erdos_renyi_graph, barabasi_albert_graph, complete_graph.",
        )
    return getattr(nx, name)


def check_network(spec: ScenarioSpec) -> Problems:
    """Exactly one of generator or edges; edges within the population; known parameters."""
    net = spec.network
    if net is None:
        return
    if (net.generator is None) == (net.edges is None):
        yield ScenarioError("a network needs exactly one of 'generator' or 'edges'.",
                            field="network", fix="write generator: NAME or edges: [[0, 1], ...].")
        return
    if net.edges is not None:
        for i, (a, b) in enumerate(net.edges):
            if max(a, b) >= spec.population.size:
                yield ScenarioError(
                    f"edge [{a}, {b}] names an agent beyond the population of "
                    f"{spec.population.size}.", field=f"network.edges.{i}", value=[a, b],
                    fix=f"use agent indices 0..{spec.population.size - 1}.",
                )
        return
    assert net.generator is not None
    try:
        generator = network_generator(net.generator)
    except ScenarioError as exc:
        yield exc
        return
    params = inspect.signature(generator).parameters
    for key in net.params:
        if key not in params or key == "n":
            allowed = [p for p in params if p not in _NOT_PARAMS]
            yield ScenarioError(
                f"'{key}' is not a parameter of {net.generator}.", field=f"network.{key}",
                value=key, fix=f"{did_you_mean(key, allowed)}allowed: {', '.join(allowed)}."
                if allowed else f"remove it; {net.generator} takes only the number of agents.",
            )
