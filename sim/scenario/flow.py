"""The scenario graph: stages and typed transitions, compiled once into a networkx DiGraph.

Every round walks from the virtual node ``start`` to ``end``; the run repeats rounds
``1..rounds``. Out of a node, the first edge (in file order) whose conditions hold for the
current round is taken; a node with no applicable edge ends the round. Within a round the
stages form a DAG, so a round always terminates.

A ``while: {state: ...}`` condition is asked of a ``holds(formula, round)`` callable that the
replica passes (its world state); without one (counting steps ahead of a run) it counts as
true, so :meth:`ScenarioGraph.num_steps` is an upper bound for flows on state.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx

from sim.errors import ScenarioError
from sim.scenario.spec import EdgeSpec, ScenarioSpec

__all__ = ["FlowState", "ScenarioGraph", "edge_applies"]

START, END = "start", "end"
Holds = Callable[[str, int], bool]
"""Whether a state condition (a formula) holds in a round."""


@dataclass(frozen=True, slots=True)
class FlowState:
    """Where the run is: the round (1-based) and the stage about to execute."""

    round: int
    stage: str


def edge_applies(edge: EdgeSpec, round_: int, holds: Holds | None = None) -> bool:
    """Whether ``edge``'s conditions hold in round ``round_`` (1-based)."""
    if edge.every is not None and (round_ - 1 < edge.offset
                                   or (round_ - 1 - edge.offset) % edge.every):
        return False
    if edge.rounds is not None and round_ not in edge.rounds:
        return False
    if edge.while_ is not None:
        if edge.while_.round_lt is not None and not round_ < edge.while_.round_lt:
            return False
        if edge.while_.round_le is not None and not round_ <= edge.while_.round_le:
            return False
        if edge.while_.state is not None and holds is not None \
                and not holds(edge.while_.state, round_):
            return False
    return True


class ScenarioGraph:
    """Compiled flow of a scenario. Build with :meth:`compile`."""

    def __init__(self, graph: nx.DiGraph, edges: dict[str, list[EdgeSpec]], rounds: int) -> None:
        self.graph = graph
        self._edges = edges
        self.rounds = rounds

    @classmethod
    def compile(cls, spec: ScenarioSpec) -> ScenarioGraph:
        """Compile and check a scenario's flow.

        Raises:
            ScenarioError: if a stage is unreachable or the stages of a round form a cycle.
        """
        ids = [s.id for s in spec.stages]
        flow = spec.flow
        if flow is None:
            chain = [START, *ids, END]
            flow = [EdgeSpec.model_validate({"from": a, "to": b})
                    for a, b in itertools.pairwise(chain)]
        graph = nx.DiGraph()
        graph.add_nodes_from([START, *ids, END])
        edges: dict[str, list[EdgeSpec]] = {}
        for edge in flow:
            graph.add_edge(edge.source, edge.to)
            edges.setdefault(edge.source, []).append(edge)
        if not nx.is_directed_acyclic_graph(graph):
            cycle = nx.find_cycle(graph)
            back = max(i for i, e in enumerate(flow) if (e.source, e.to) in cycle)
            loop = " -> ".join([*(a for a, _b in cycle), cycle[0][0]])
            raise ScenarioError(
                f"the flow has a cycle within a round ({loop}).", field=f"flow.{back}",
                value=f"{flow[back].source} -> {flow[back].to}",
                fix="rounds repeat by themselves (set 'rounds: N'); send the last stage of a "
                    "round to 'end' instead of back to an earlier stage.",
            )
        reachable = nx.descendants(graph, START)
        for stage_id in ids:
            if stage_id not in reachable:
                raise ScenarioError(
                    f"stage '{stage_id}' is never reached from 'start'.", field="flow",
                    value=stage_id, fix=f"add an edge {{from: ..., to: {stage_id}}}.",
                )
        return cls(graph, edges, spec.rounds)

    def _next(self, node: str, round_: int, holds: Holds | None = None) -> str:
        for edge in self._edges.get(node, ()):
            if edge_applies(edge, round_, holds):
                return edge.to
        return END

    def first(self, holds: Holds | None = None) -> FlowState | None:
        """The first stage of the run, or ``None`` if no round executes any stage."""
        return self._enter(1, holds)

    def _enter(self, round_: int, holds: Holds | None = None) -> FlowState | None:
        while round_ <= self.rounds:
            stage = self._next(START, round_, holds)
            if stage != END:
                return FlowState(round_, stage)
            round_ += 1
        return None

    def advance(self, state: FlowState, holds: Holds | None = None) -> FlowState | None:
        """The state after ``state``'s stage has executed; ``None`` when the run is over.

        ``holds``: the replica's answer to ``while: {state: ...}`` conditions.
        """
        stage = self._next(state.stage, state.round, holds)
        if stage != END:
            return FlowState(state.round, stage)
        return self._enter(state.round + 1, holds)

    def num_steps(self) -> int:
        """How many stage executions a full run has."""
        count, state = 0, self.first()
        while state is not None:
            count += 1
            state = self.advance(state)
        return count
