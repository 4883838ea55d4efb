"""One replica of a scenario: a ``mesa.Model`` that owns its agents, RNG streams and flow.

It never calls a model and never writes a file: :meth:`Replica.plan_step` returns a plan
(a generator of request waves) that the :class:`~sim.engine.loop.Engine` drives together with the
plans of the other replicas, and the event rows it returns go to the recorder.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from agents.agent import Agent
from agents.conditioning import condition_agents
from agents.population import build_population
from agents.roles import assign_roles, draw_private
from sim.engine.groups import Grouping, cache_key, form_groups, stream_key
from sim.engine.interventions import Interventions, apply_intervention
from sim.engine.network import build_network
from sim.engine.stages import (
    Plan,
    StageContext,
    run_broadcast,
    run_choice,
    run_dialogue,
    run_sanction,
    run_survey,
)
from sim.engine.world import World
from sim.records.checkpoint import (
    flow_from_json,
    flow_to_json,
    grouping_from_json,
    grouping_to_json,
)
from sim.scenario.flow import FlowState, ScenarioGraph
from sim.scenario.spec import (
    BroadcastStage,
    ChoiceStage,
    DialogueStage,
    InterventionSpec,
    SanctionStage,
    ScenarioSpec,
    SurveyStage,
)

__all__ = ["Replica"]

# Named RNG streams: (stream id, ...) spawn keys under SeedSequence(seed, replica).
_POPULATION, _NETWORK, _GROUPS, _REQUESTS, _CHOICES, _ROLES = range(6)
_RUNNERS = {ChoiceStage: run_choice, DialogueStage: run_dialogue,
            BroadcastStage: run_broadcast, SanctionStage: run_sanction,
            SurveyStage: run_survey}


class Replica(mesa.Model):
    """A scenario replica. Same spec + seed + replica = same agents, groups and seeds.

    Attributes:
        spec: the scenario.
        seed: the run seed.
        replica: replica number (replica 0 of seed s is the plain run of seed s).
        population: agents by index.
        network: the social network, if the scenario has one.
        state: the flow position, ``None`` once the run is over.
        world: the world state (the scenario's ``state:`` and ``agent_state:`` variables).
        interventions: which interventions fired or wait, and what they changed.
        step_count: stages executed so far.
    """

    def __init__(self, spec: ScenarioSpec, *, seed: int, replica: int = 0,
                 max_new_tokens: int = 40, temperature: float = 0.7) -> None:
        super().__init__(rng=np.random.default_rng(np.random.SeedSequence([seed, replica])))
        self.spec = spec
        self.seed = seed
        # Draws made while the run goes on (groups, request seeds, choices) come from
        # ``draw_seed``: a fork's continuation may take new ones over the same population.
        self.draw_seed = seed
        self.replica = replica
        self.graph = ScenarioGraph.compile(spec)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        members = build_population(spec.population, self.stream(_POPULATION))
        roles_rng = self.stream(_ROLES)
        self.roles = assign_roles(spec.roles, len(members), roles_rng)
        private = draw_private(spec.roles, self.roles, roles_rng)
        self.population = [
            Agent(self, index=i, persona=m.persona, policy=m.policy, cohort=m.cohort,
                  preamble=spec.description.strip(), base_role=self.roles[i],
                  private=private[i])
            for i, m in enumerate(members)
        ]
        condition_agents(self.population, spec)
        self.network = build_network(spec, self.stream(_NETWORK))
        self.world = World(spec, len(self.population))
        self.interventions = Interventions(spec)
        self.state: FlowState | None = self.graph.first(self.world.holds)
        self.step_count = 0
        self._stages = {s.id: s for s in spec.stages}
        self._groupings: dict[tuple[int, str], Grouping] = {}
        # Request seeds and choice RNG are keyed by the number of non-survey stages run, so a
        # survey stage (a side channel) leaves every later draw as it would be without it.
        self.seed_step = 0
        self.side_rows: list[dict[str, Any]] = []  # survey rows of the last step
        self.state_rows: list[dict[str, Any]] = []  # world state after the last step

    def stream(self, *keys: int) -> np.random.Generator:
        """A named, independent RNG stream of this replica."""
        seq = np.random.SeedSequence(self.seed, spawn_key=(self.replica, *keys))
        return np.random.default_rng(seq)

    def draw_stream(self, *keys: int) -> np.random.Generator:
        """A named RNG stream of the run's later draws (keyed by ``draw_seed``)."""
        seq = np.random.SeedSequence(self.draw_seed, spawn_key=(self.replica, *keys))
        return np.random.default_rng(seq)

    def request_seed(self, *keys: int) -> int:
        """A deterministic 63-bit seed for one request, from (step, agent, group, turn)."""
        seq = np.random.SeedSequence(self.draw_seed,
                                     spawn_key=(self.replica, _REQUESTS, *keys))
        return int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1))

    def grouping(self, stage: ChoiceStage | DialogueStage | BroadcastStage | SanctionStage,
                 round_: int) -> Grouping:
        """Groups for a stage; stages with the same rule share them within a round."""
        key = cache_key(stage.groups, round_)
        if key not in self._groupings:
            rng = self.draw_stream(_GROUPS, *stream_key(stage.groups, round_))
            self._groupings[key] = form_groups(stage.groups, len(self.population),
                                               self.network, rng, round_=round_,
                                               roles=self.roles)
        return self._groupings[key]

    def drop_groupings(self) -> None:
        """Forget the groupings formed so far (the network changed: regroup on the new one)."""
        self._groupings = {}

    def intervene(self, item: str | InterventionSpec) -> InterventionSpec:
        """Apply an intervention at the next step boundary, before the next stage runs.

        ``item``: the id of one of the scenario's declared interventions, or a checked spec
        (:func:`sim.scenario.interventions.load_interventions`). It is recorded like a
        scheduled one and survives a checkpoint while it waits; a declared one applied this
        way does not fire again on its own trigger.

        Raises:
            RunError: the id names no intervention of the scenario.
        """
        return self.interventions.queue(item)

    def take_side_rows(self) -> list[dict[str, Any]]:
        """The survey rows of the last step, once."""
        rows, self.side_rows = self.side_rows, []
        return rows

    def take_state_rows(self) -> list[dict[str, Any]]:
        """The world-state rows after the last step, once (none without declared state)."""
        rows, self.state_rows = self.state_rows, []
        return rows

    def state_dict(self) -> dict[str, Any]:
        """Everything that changes while the replica runs, as JSON-ready data.

        RNG streams are stateless (derived from seed, replica and keys), so the flow position,
        the step count, the grouping cache of the current round and the agents' states are
        enough to continue exactly where the replica stopped.
        """
        return {
            "replica": self.replica,
            "flow": flow_to_json(self.state),
            "step_count": self.step_count,
            "seed_step": self.seed_step,
            "groupings": [grouping_to_json(k, g) for k, g in self._groupings.items()],
            "agents": [agent.state_dict() for agent in self.population],
            **({"world": self.world.state_dict()} if self.world.declared else {}),
            **({"draw_seed": self.draw_seed} if self.draw_seed != self.seed else {}),
            **({"interventions": self.interventions.state_dict()}
               if self.interventions.active else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state saved by :meth:`state_dict` into this freshly built replica.

        Raises:
            ValueError: if the state is of another replica or population.
        """
        if state["replica"] != self.replica or len(state["agents"]) != len(self.population):
            raise ValueError(f"state of replica {state['replica']} with {len(state['agents'])} "
                             f"agents does not fit replica {self.replica} with "
                             f"{len(self.population)} agents")
        self.state = flow_from_json(state["flow"])
        self.step_count = int(state["step_count"])
        self.seed_step = int(state.get("seed_step", self.step_count))
        self.draw_seed = int(state.get("draw_seed", self.seed))
        self._groupings = dict(grouping_from_json(g) for g in state["groupings"])
        for agent, agent_state in zip(self.population, state["agents"], strict=True):
            agent.load_state_dict(agent_state)
        if "world" in state:
            self.world.load_state_dict(state["world"])
        if "interventions" in state:
            self.interventions.restore(state["interventions"], self)

    def plan_step(self) -> Plan:
        """Plan of the next stage execution; returns its event rows (common fields set)."""
        assert self.state is not None, "the run is over"
        state = self.state
        step = self.step_count + 1
        stage = self._stages[state.stage]
        self.world.begin_step()
        # Interventions come before the stage (and before its groups are formed).
        fired = [apply_intervention(self, item, state.round, self.interventions)
                 for item in self.interventions.due(state.round, self.world.holds)]
        survey = isinstance(stage, SurveyStage)
        key = self.seed_step + (0 if survey else 1)
        grouping = (Grouping(groups=(tuple(range(len(self.population))),)) if survey
                    else self.grouping(stage, state.round))  # type: ignore[arg-type]
        ctx = StageContext(
            agents=self.population, grouping=grouping,
            round=state.round, rounds=self.spec.rounds,
            seed_for=lambda *k: self.request_seed(key, *k),
            rng_for=lambda *k: self.draw_stream(_CHOICES, key, *k),
            max_new_tokens=self.max_new_tokens, temperature=self.temperature,
            params=self.world.params, world=self.world,
        )
        runner = _RUNNERS[type(stage)]
        rows: list[dict[str, Any]] = yield from runner(stage, ctx)  # type: ignore[arg-type]
        rows = fired + rows
        for row in rows:
            row.update(replica=self.replica, step=step, round=state.round, stage=stage.id)
        for row in ctx.side:
            row.update(replica=self.replica, step=step, round=state.round, stage=stage.id)
        self.side_rows = ctx.side
        self.seed_step = key
        self.step_count = step
        self._groupings = {k: v for k, v in self._groupings.items() if k[0] >= state.round}
        self._end_step(stage, rows, state, step)
        return rows

    def _end_step(self, stage: Any, rows: list[dict[str, Any]], state: FlowState,
                  step: int) -> None:
        """Update the world, record it, and move the flow on (or stop the run)."""
        keys = [a.key for a in self.population]
        self.world.apply(getattr(stage, "update", {}), rows, state.round, keys)
        if self.world.declared:
            self.state_rows = [dict(r, replica=self.replica, step=step, round=state.round,
                                    stage=stage.id) for r in self.world.rows(keys)]
        stop = self.spec.stop
        if stop is not None and self.world.holds(stop, state.round):
            self.state = None
            return
        self.state = self.graph.advance(state, self.world.holds)
