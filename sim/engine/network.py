"""Build the social network of a scenario (nodes are agent indices 0..n-1)."""

from __future__ import annotations

import inspect

import networkx as nx
import numpy as np

from sim.errors import RunError, ScenarioError
from sim.scenario.spec import ScenarioSpec
from sim.scenario.validate import network_generator
from sim.scenario.validate.ego import ego_problem

__all__ = ["build_network"]


def build_network(spec: ScenarioSpec, rng: np.random.Generator) -> nx.Graph | None:
    """The scenario's network, seeded from the run's network stream; ``None`` if it has none.

    Raises:
        ScenarioError: if the generator rejects its parameters.
        RunError: if an ego stage's groups on the built network would exceed their bound
            (the largest degree of a generated network is known only once it is built).
    """
    net, size = spec.network, spec.population.size
    if net is None:
        return None
    if net.edges is not None:
        graph = nx.Graph()
        graph.add_nodes_from(range(size))
        graph.add_edges_from(tuple(e) for e in net.edges)
        return _bounded(spec, graph)  # a spec built in Python skipped the load-time check
    assert net.generator is not None
    generator = network_generator(net.generator)
    kwargs = dict(net.params)
    if "seed" in inspect.signature(generator).parameters:
        kwargs["seed"] = int(rng.integers(2**31))
    try:
        graph = generator(size, **kwargs)
    except Exception as exc:  # networkx raises many types for bad parameters
        raise ScenarioError(
            f"{net.generator}(n={size}, {net.params}) failed: {exc}.", field="network",
            fix="check the generator's parameters in the networkx documentation.") from None
    graph = nx.convert_node_labels_to_integers(nx.Graph(graph))
    if graph.number_of_nodes() != size:
        raise ScenarioError(
            f"{net.generator} made {graph.number_of_nodes()} nodes for {size} agents.",
            field="network.generator", value=net.generator,
            fix="use a generator whose first parameter is the number of nodes.")
    return _bounded(spec, graph)


def _bounded(spec: ScenarioSpec, graph: nx.Graph) -> nx.Graph:
    """``graph``, unless an ego stage's groups on it would exceed their bound."""
    problem = ego_problem(spec, ((int(a), int(b)) for a, b in graph.edges()))
    if problem is not None:
        raise RunError(f"before step 1: {problem}")
    return graph
