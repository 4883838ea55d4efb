"""Bounds of ``groups: {by: ego}``: one group per agent, the agent and all its neighbours.

An ego group has ``degree + 1`` members, so the network's largest degree decides the largest
group (a star network of n agents makes a group of n). The bounds are those of every group:
:data:`~sim.scenario.validate.stages.MAX_CHAT_SIZE` in a dialogue (one chat),
:data:`~sim.scenario.validate.grouping.MAX_GROUP` elsewhere. Where the degree is known when
the scenario loads (listed ``edges:``, or a generator whose parameters fix it) it is checked
then; otherwise :func:`ego_problem` checks the network a run builds, before any step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sim.errors import ScenarioError
from sim.scenario.spec import DialogueStage, ScenarioSpec, StageBase
from sim.scenario.validate.grouping import MAX_GROUP
from sim.scenario.validate.suggest import Problems

__all__ = ["GENERATOR_DEGREE", "added_edges", "check_ego", "ego_limit", "ego_problem",
           "largest_degree"]


def _ring(n: int, p: dict[str, Any]) -> int:
    return min(n - 1, 2 * (int(p.get("k", 0)) // 2))


GENERATOR_DEGREE: dict[str, Callable[[int, dict[str, Any]], int]] = {
    "complete_graph": lambda n, _p: n - 1,
    "wheel_graph": lambda n, _p: n - 1,
    "watts_strogatz_graph": _ring,
    "newman_watts_strogatz_graph": _ring,
    "connected_watts_strogatz_graph": _ring,
    "barabasi_albert_graph": lambda n, p: min(n - 1, int(p.get("m", 0))),
}
"""Generators whose parameters fix a degree some agent reaches or exceeds, for n agents: the
ring's 2 * (k // 2) (rewiring keeps the mean degree, so some agent has at least it), the
hub of a wheel, every agent of a complete graph, every newcomer's m in Barabasi-Albert."""


def ego_limit(stage: StageBase) -> int:
    """The largest group ``stage`` may form: a dialogue's chat bound, else every group's."""
    from sim.scenario.validate.stages import MAX_CHAT_SIZE  # it imports this module

    return MAX_CHAT_SIZE if isinstance(stage, DialogueStage) else MAX_GROUP


def added_edges(spec: ScenarioSpec) -> list[tuple[int, int]]:
    """Every edge the scenario's interventions add (at some round start, maybe)."""
    return [(a, b) for item in spec.interventions if item.edges is not None
            for a, b in item.edges.add]


def largest_degree(edges: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """``(agent, degree)`` of the agent with the most distinct neighbours (``(0, 0)``: none)."""
    pairs = {(min(a, b), max(a, b)) for a, b in edges if a != b}
    counts = Counter(n for pair in pairs for n in pair)
    if not counts:
        return 0, 0
    agent = min(counts, key=lambda n: (-counts[n], n))
    return agent, counts[agent]


def _message(stage: StageBase, agent: int | None, degree: int, limit: int, how: str) -> str:
    who = f"agent {agent} has" if agent is not None else "some agent has at least"
    kind = "dialogue group" if isinstance(stage, DialogueStage) else "group"
    return (f"stage '{stage.id}': groups.by 'ego' makes one group of each agent and its "
            f"neighbours; {who} {degree:,} neighbours {how}, a group of {degree + 1:,}, over the "
            f"limit of {limit:,} agents per {kind}.")


def _fix(limit: int) -> str:
    return (f"group by neighbours (one pair per edge) or neighbour_sample, or use a network "
            f"in which every agent has at most {limit - 1:,} neighbours.")


def check_ego(stage: StageBase, spec: ScenarioSpec, where: str) -> Problems:
    """An ego stage on a network whose degree is known now: every group within the bound."""
    net = spec.network
    if stage.groups.by != "ego" or net is None:
        return
    limit = ego_limit(stage)
    if net.edges is not None:
        agent, degree = largest_degree([*((a, b) for a, b in net.edges), *added_edges(spec)])
        how = "in network.edges" + (" (with the edges interventions add)"
                                    if added_edges(spec) else "")
        if degree + 1 > limit:
            yield ScenarioError(_message(stage, agent, degree, limit, how),
                                field=f"{where}.groups.by", value="ego", fix=_fix(limit))
        return
    rule = GENERATOR_DEGREE.get(net.generator or "")
    if rule is None:
        return  # the run checks the network it builds (ego_problem)
    try:
        degree = rule(spec.population.size, net.params)
    except (TypeError, ValueError):
        return  # a bad parameter has its own error (network checks)
    if degree + 1 > limit:
        shown = ", ".join(f"{k}={v}" for k, v in net.params.items())
        call = f"{net.generator}({shown})" if shown else net.generator
        how = f"in {call} of {spec.population.size:,} agents"
        yield ScenarioError(_message(stage, None, degree, limit, how),
                            field=f"{where}.groups.by", value="ego", fix=_fix(limit))


def ego_problem(spec: ScenarioSpec, edges: Iterable[tuple[int, int]]) -> str | None:
    """Why an ego stage's groups on this built network would exceed their bound, or ``None``.

    The edges the scenario's interventions add count too; the message is one line with the
    fix.
    """
    stages = [s for s in spec.stages if s.groups.by == "ego"]
    if not stages:
        return None
    agent, degree = largest_degree([*edges, *added_edges(spec)])
    for stage in stages:
        limit = ego_limit(stage)
        if degree + 1 > limit:
            name = spec.network.generator if spec.network is not None else None
            how = f"in the {name or 'listed'} network built for this run"
            return f"{_message(stage, agent, degree, limit, how)} Fix: {_fix(limit)}"
    return None
