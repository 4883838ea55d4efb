"""Interventions at run time: when they fire in a replica, what they change, how they resume.

A replica asks :meth:`Interventions.due` at the start of every step, before the stage runs.
Scheduled interventions (the scenario's ``interventions:``) are considered once per round,
at the first step of the round: ``at: {round: N}`` fires at the first round start at or after
round N, ``when:`` at the first round start at which its condition holds; each fires at most
once per replica. Interventions queued by :meth:`Interventions.queue` (a live control, a
fork) fire at the next step, whatever their trigger. :func:`apply_intervention` applies one
and returns its event row.

What an intervention changes outside the checkpointed world and memories (parameters, the
policies and conditioning of cohorts, network edges) is kept here as overrides, so that
:meth:`Interventions.restore` can redo it on a freshly built replica when a run resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from agents.conditioning import condition_agent
from agents.memory import Moment
from sim.errors import RunError
from sim.scenario.intervention_spec import InterventionSpec, ReachSpec
from sim.scenario.spec import PolicySpec, ScenarioSpec
from sim.scenario.templates import render

if TYPE_CHECKING:
    from sim.engine.replica import Replica

__all__ = ["Interventions", "announcement", "apply_intervention"]


class Interventions:
    """Which interventions of one replica fired, which wait, and what they changed.

    Attributes:
        fired: ids of the interventions applied so far, in order.
        pending: interventions queued for the next step.
        checked: the last round whose start was checked for scheduled interventions.
        params: parameters set by interventions (the world holds the values in use).
        policies: cohort -> the policy (as JSON) an intervention gave it.
        conditioning: cohort -> the conditioning an intervention gave it.
        edges: network changes in order, ``[op, a, b]`` with ``op`` ``add`` or ``remove``.
    """

    def __init__(self, spec: ScenarioSpec) -> None:
        self.spec = spec
        self.fired: list[str] = []
        self.pending: list[InterventionSpec] = []
        self.checked = 0
        self.params: dict[str, float] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.conditioning: dict[str, str] = {}
        self.edges: list[list[Any]] = []

    @property
    def active(self) -> bool:
        """Whether there is anything to checkpoint (else the state is left out, as before)."""
        return bool(self.spec.interventions or self.fired or self.pending)

    def queue(self, item: str | InterventionSpec) -> InterventionSpec:
        """Queue an intervention (a declared one by id, or a spec) for the next step.

        Raises:
            RunError: the id names no intervention of the scenario.
        """
        if isinstance(item, str):
            known = {i.id: i for i in self.spec.interventions}
            if item not in known:
                raise RunError(f"no intervention '{item}' in scenario '{self.spec.name}'. Fix: "
                               f"use one of: {', '.join(known) or 'none declared'}.")
            item = known[item]
        self.pending.append(item)
        return item

    def due(self, round_: int, holds: Callable[[str, int], bool]) -> list[InterventionSpec]:
        """The interventions to apply before this step's stage, in order; marks them fired.

        Scheduled ones (at a round's first step only) in the order declared, then queued ones.
        """
        out: list[InterventionSpec] = []
        if round_ > self.checked:
            self.checked = round_
            for item in self.spec.interventions:
                if item.id in self.fired:
                    continue
                if (item.at is not None and round_ >= item.at.round) or (
                        item.when is not None and holds(item.when, round_)):
                    out.append(item)
                    self.fired.append(item.id)
        # Taken in one swap: a control thread may queue while the run thread plans.
        pending, self.pending = self.pending, []
        for item in pending:
            out.append(item)
            if item.id not in self.fired:
                self.fired.append(item.id)
        return out

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state (pending interventions as their specs)."""
        return {"fired": list(self.fired), "checked": self.checked,
                "pending": [i.model_dump(mode="json", by_alias=True, exclude_defaults=True)
                            for i in self.pending],
                "params": dict(self.params), "policies": dict(self.policies),
                "conditioning": dict(self.conditioning), "edges": [list(e) for e in self.edges]}

    def restore(self, state: Mapping[str, Any], replica: Replica) -> None:
        """Load :meth:`state_dict` output and redo its overrides on a fresh ``replica``."""
        self.fired = list(state["fired"])
        self.checked = int(state["checked"])
        self.pending = [InterventionSpec.model_validate(i) for i in state["pending"]]
        self.params = {k: float(v) for k, v in state["params"].items()}
        replica.world.params.update(self.params)
        for cohort, policy in state["policies"].items():
            _swap_policy(replica, cohort, PolicySpec.model_validate(policy))
        for cohort, method in state["conditioning"].items():
            _swap_conditioning(replica, cohort, method)
        for op, a, b in state["edges"]:
            _change_edge(replica, op, int(a), int(b))
        self.policies = dict(state["policies"])
        self.conditioning = dict(state["conditioning"])
        self.edges = [list(e) for e in state["edges"]]


def _reached(replica: Replica, reach: ReachSpec | None, round_: int) -> list[int]:
    """Indices of the agents ``to`` chooses (all without it)."""
    agents = replica.population
    if reach is None:
        return list(range(len(agents)))
    if reach.agents is not None:
        return sorted(set(reach.agents))
    if reach.cohort is not None:
        return [a.index for a in agents if a.cohort == reach.cohort]
    return [a.index for a in agents if a.role(round_) == reach.role]


def _swap_policy(replica: Replica, cohort: str, policy: PolicySpec) -> None:
    for agent in replica.population:
        if agent.cohort == cohort:
            agent.policy = policy


def _swap_conditioning(replica: Replica, cohort: str, method: str) -> None:
    strength = replica.spec.population.steering_strength
    for agent in replica.population:
        if agent.cohort == cohort and agent.policy is None:
            condition_agent(agent, method, strength)


def _change_edge(replica: Replica, op: str, a: int, b: int) -> None:
    network = replica.network
    assert network is not None, "checked when the scenario loaded"
    if op == "add":
        network.add_edge(a, b)
    elif network.has_edge(a, b):
        network.remove_edge(a, b)


def announcement(replica: Replica, template: str, round_: int) -> str:
    """An ``announce`` text with its fields filled from the world as it is now.

    Values are numbers (written with ``:g``) or a categorical variable's declared value, so
    no agent text reaches an announcement. A template the loader did not check (one built
    in Python) that does not parse is announced as written.
    """
    world = replica.world
    fields: dict[str, object] = {
        "round": round_, "rounds": replica.spec.rounds, "n_agents": len(replica.population),
        **{f"params.{k}": f"{v:g}" for k, v in world.params.items()},
        **{f"state.{k}": v if isinstance(v, str) else f"{v:g}"
           for k, v in world.shared.items()}}
    try:
        return render(template, fields)
    except ValueError:
        return template


def apply_intervention(replica: Replica, item: InterventionSpec, round_: int,
                       book: Interventions) -> dict[str, Any]:
    """Apply one intervention to ``replica`` now; returns its event row (common fields unset).

    In order: ``set`` (each entry seeing the values the ones above it left), the
    announcement, the policy and conditioning swaps, the edges (removing an absent edge does
    nothing). Groupings already formed this round are dropped when edges change, so the next
    stage meets on the new network.
    """
    reached = _reached(replica, item.to, round_)
    for target, source in item.set.items():
        mine = target.startswith("my.") and item.to is not None
        replica.world.assign(target, source, round_, reached if mine else None)
        if target.startswith("params."):
            name = target.split(".", 1)[1]
            book.params[name] = replica.world.params[name]
    text = None if item.announce is None else announcement(replica, item.announce, round_)
    if text is not None:
        for index in reached:
            replica.population[index].memory.add(
                Moment(round=round_, stage=item.id, partners=(), announced=text))
    if item.policy is not None:
        _swap_policy(replica, item.policy.cohort, item.policy.policy)
        book.policies[item.policy.cohort] = item.policy.policy.model_dump(
            mode="json", exclude_defaults=True)
    if item.conditioning is not None:
        swap = item.conditioning
        _swap_conditioning(replica, swap.cohort, swap.conditioning)
        book.conditioning[swap.cohort] = swap.conditioning
    if item.edges is not None:
        for op, pairs in (("add", item.edges.add), ("remove", item.edges.remove)):
            for a, b in pairs:
                _change_edge(replica, op, a, b)
                book.edges.append([op, a, b])
        replica.drop_groupings()
    return {"kind": "intervention", "agent": None, "group": "-", "turn": 0, "partners": [],
            "text": text, "intervention": item.id, "status": "ok"}
