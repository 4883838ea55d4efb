"""Checks of the ``flow:`` edges, then of the flow graph they form."""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario.flow import ScenarioGraph
from sim.scenario.spec import ScenarioSpec
from sim.scenario.validate.suggest import Problems, did_you_mean

__all__ = ["check_flow"]


def check_flow(spec: ScenarioSpec) -> Problems:
    """Edges name known stages and one bound each; then the graph is acyclic and connected.

    The graph is compiled only when every edge is valid and the stage ids are unique and not
    reserved: a graph of misnamed or repeated stages would only repeat those problems as
    cycles or unreachable stages.
    """
    ids = [s.id for s in spec.stages]
    found = len(set(ids)) != len(ids) or bool(set(ids) & {"start", "end"})
    for i, edge in enumerate(spec.flow or []):
        for key, value, valid in (("from", edge.source, [*ids, "start"]),
                                  ("to", edge.to, [*ids, "end"])):
            if value not in valid:
                found = True
                yield ScenarioError(
                    f"flow edge {key} unknown stage '{value}'.", field=f"flow.{i}.{key}",
                    value=value, fix=f"{did_you_mean(value, valid)}known: {', '.join(valid)}.",
                )
        bounds = 0 if edge.while_ is None else \
            (edge.while_.round_lt is not None) + (edge.while_.round_le is not None)
        if edge.while_ is not None and (bounds > 1 or bounds + (edge.while_.state is not None)
                                        == 0):
            found = True
            yield ScenarioError("'while' needs exactly one of round_lt or round_le (and/or "
                                "state).",
                                field=f"flow.{i}.while", fix="write while: {round_lt: 10}.")
    if not found:
        try:
            ScenarioGraph.compile(spec)
        except ScenarioError as exc:
            yield exc
