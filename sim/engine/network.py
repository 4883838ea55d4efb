"""Build the social network of a scenario (nodes are agent indices 0..n-1)."""

from __future__ import annotations

import inspect

import networkx as nx
import numpy as np

from sim.errors import ScenarioError
from sim.scenario.spec import ScenarioSpec
from sim.scenario.validate import network_generator
from sim.scenario.validate.grouping import MAX_GROUP

__all__ = ["build_network"]


def build_network(spec: ScenarioSpec, rng: np.random.Generator) -> nx.Graph | None:
    """The scenario's network, seeded from the run's network stream; ``None`` if it has none.

    Raises:
        ScenarioError: if the generator rejects its parameters, or an ``ego`` group (an
            agent and all its neighbours) would be over :data:`MAX_GROUP`.
    """
    net, size = spec.network, spec.population.size
    if net is None:
        return None
    if net.edges is not None:
        graph = nx.Graph()
        graph.add_nodes_from(range(size))
        graph.add_edges_from(tuple(e) for e in net.edges)
        _check_ego_size(spec, graph)
        return graph
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
    _check_ego_size(spec, graph)
    return graph


def _check_ego_size(spec: ScenarioSpec, graph: nx.Graph) -> None:
    """Refuse an ego group over the bound the other grouping rules keep before it is formed.

    Its size depends on the built network (a generator's is seeded), so it is checked here:
    a hub of a star network would otherwise make one group of the whole population.
    """
    ego = [i for i, s in enumerate(spec.stages)
           if getattr(getattr(s, "groups", None), "by", None) == "ego"]
    if not ego or graph.number_of_nodes() == 0:
        return
    hub, degree = max(graph.degree, key=lambda pair: pair[1])
    if degree + 1 > MAX_GROUP:
        raise ScenarioError(
            f"groups.by 'ego' makes a group of {degree + 1:,} agents (agent {hub} and its "
            f"{degree:,} neighbours), over the limit of {MAX_GROUP:,}.",
            field=f"stages.{ego[0]}.groups.by", value="ego",
            fix=f"use a network whose agents have at most {MAX_GROUP - 1:,} neighbours, or "
                "group by neighbours or neighbour_sample.")
