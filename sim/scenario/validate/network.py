"""Checks of the ``network:`` section, and resolving a networkx generator by name."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import networkx as nx

from sim.errors import ScenarioError
from sim.scenario.spec import ScenarioSpec
from sim.scenario.validate.suggest import Problems, did_you_mean

__all__ = ["MAX_EDGES", "check_network", "network_generator"]

_NOT_PARAMS = ("n", "create_using", "seed", "backend", "backend_kwargs")
MAX_EDGES = 2_000_000
"""Most edges of a social network: networkx keeps ~200 bytes per edge, and every edge is a
row of network.parquet and a partner entry in neighbour groups."""
_PROBE_LIMIT = 64  # probes up to this size, then an extrapolation, decide the network's size


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
            elif a == b:
                yield ScenarioError(
                    f"edge [{a}, {b}] joins agent {a} to itself.", field=f"network.edges.{i}",
                    value=[a, b], fix="remove it; an agent is never its own neighbour.")
        return
    assert net.generator is not None
    try:
        generator = network_generator(net.generator)
    except ScenarioError as exc:
        yield exc
        return
    params = inspect.signature(generator).parameters
    bad = False
    for key in net.params:
        if key not in params or key == "n":
            bad = True
            allowed = [p for p in params if p not in _NOT_PARAMS]
            yield ScenarioError(
                f"'{key}' is not a parameter of {net.generator}.", field=f"network.{key}",
                value=key, fix=f"{did_you_mean(key, allowed)}allowed: {', '.join(allowed)}."
                if allowed else f"remove it; {net.generator} takes only the number of agents.",
            )
        elif (problem := _type_problem(net.generator, key, net.params[key],
                                       params[key].default)) is not None:
            bad = True
            yield problem
    if not bad:
        yield from _check_size(generator, net.generator, net.params, spec.population.size)


def _type_problem(name: str, key: str, value: object, default: object) -> ScenarioError | None:
    """A parameter whose value is not of its default's type (an int, a number, a bool)."""
    if isinstance(default, bool):
        ok, what = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, what = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok, what = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    else:
        return None
    if ok:
        return None
    return ScenarioError(f"{name} parameter '{key}' should be {what}, got {value!r}.",
                         field=f"network.{key}", value=value, fix=f"write {what}.")


_TRUSTED_PROBE = 16  # the smallest probe whose growth an estimate relies on


def _probe_sizes(n: int) -> list[int]:
    sizes = list(range(2, min(n, _TRUSTED_PROBE) + 1))
    while sizes and sizes[-1] < n:
        sizes.append(min(n, 2 * sizes[-1]))
    return sizes


def _check_size(generator: Callable[..., object], name: str, params: dict[str, object],
                n: int) -> Problems:
    """Probe the generator at small sizes before anything builds it for ``n`` agents.

    It must make one node per agent (``hypercube_graph(n)`` makes 2**n and is refused at
    n = 2), and its edge count, extrapolated from the two largest probes (at most
    :data:`_PROBE_LIMIT`, growth taken between linear and quadratic), must stay within
    :data:`MAX_EDGES`. A generator that fails at the largest size tried is refused with
    its own error.
    """
    seeded = "seed" in inspect.signature(generator).parameters
    done: list[tuple[int, int]] = []
    error: Exception | None = None
    for size in _probe_sizes(n):
        if len(done) >= 2 and done[-1][0] >= _PROBE_LIMIT:
            break
        if not done and size > 4096:
            break
        try:
            graph = generator(size, **params, **({"seed": 0} if seeded else {}))
        except Exception as exc:  # networkx raises many types for bad parameters
            error = exc
            continue
        error = None
        nodes, edges = graph.number_of_nodes(), graph.number_of_edges()  # type: ignore[attr-defined]
        if nodes != size:
            yield ScenarioError(
                f"'{name}' makes {nodes} nodes for {size} agents, not one node per agent.",
                field="network.generator", value=name,
                fix="use a generator whose first parameter is the number of nodes, or list "
                    "the edges.")
            return
        done.append((size, edges))
        estimate = _extrapolate(done, n)
        # Tiny graphs say little about growth (wheel_graph's 1 then 3 edges look quadratic).
        if estimate > MAX_EDGES and (size >= _TRUSTED_PROBE or size >= n):
            yield ScenarioError(
                f"'{name}' makes about {estimate:,.0f} edges for {n:,} agents, over the limit "
                f"of {MAX_EDGES:,}.", field="network.generator", value=name,
                fix="use a sparser generator or parameters (see 'Limits' in "
                    "docs/architecture.md).")
            return
    if error is not None:  # the largest size tried fails: so would the run
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        yield ScenarioError(f"{name}({shown}) fails: {error}.", field="network",
                            fix="check the generator's parameters in the networkx "
                                "documentation.")


def _extrapolate(done: list[tuple[int, int]], n: int) -> float:
    size, edges = done[-1]
    if size >= n:
        return float(edges)
    growth = 2.0
    if len(done) >= 2 and done[-2][1] > 0 and edges > 0:
        before, before_edges = done[-2]
        growth = math.log(edges / before_edges) / math.log(size / before)
    return max(edges, 1) * (n / size) ** min(2.0, max(1.0, growth))
