"""The step loop: replicas in lock-step, every wave of every replica in one backend call.

The engine opens no files and prints nothing: each completed step goes to the callbacks
given at construction (the recorder, a progress bar).

Shape of the loop (:func:`drive_engines`; one engine for a run, several for a sweep cohort)::

    while an engine is running:
        plans = engine.plan_step() for every engine     # generators of request waves
        wave k of every plan of every engine            = one executor call
        engine.finish_step(rows, seconds)               # counters, StepReport, callbacks
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.engine.replica import Replica
from sim.engine.stages import Plan
from sim.engine.stages.base import prompt_hash
from sim.executors.local import Executor, ExecutorStats, Part, Request, Result
from sim.records.checkpoint import load_stats, stats_to_json
from sim.records.hooks import NO_HOOKS, RunHooks
from sim.scenario.spec import InterventionSpec, RunConfig, ScenarioSpec

__all__ = ["Engine", "StepReport", "drive", "drive_engines"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepReport:
    """What one lock-stepped step produced, handed to every callback."""

    step: int
    rows: list[dict[str, Any]]
    seconds: float
    stages: tuple[str, ...]
    surveys: list[dict[str, Any]] = field(default_factory=list)
    prompts: dict[str, Request] = field(default_factory=dict)
    """Every distinct request the step sent, by :func:`prompt_hash` (what agents were told)."""
    world: list[dict[str, Any]] = field(default_factory=list)
    """The world state after the step, one row per variable and replica (``state`` table)."""


@dataclass(slots=True)
class _Lane:
    """One plan of a step: its owner (an engine's index), its pending wave, its rows."""

    owner: int
    plan: Plan
    wave: list[Request] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    prompts: dict[str, Request] = field(default_factory=dict)


def drive(plans: Sequence[Plan], executor: Executor) -> list[list[dict[str, Any]]]:
    """Run plans side by side: their current waves go to the executor as one list.

    The executor's ``begin_step`` is called first, so nothing it keeps between waves (prompt
    KV) carries from one step into the next. The waves are counted into ``executor.stats``.

    Returns:
        Each plan's returned rows, in plan order.

    Raises:
        Exception: whatever a plan raised.
    """
    lanes = [_Lane(0, plan) for plan in plans]
    failed: dict[int, Exception] = {}
    _run_lanes(lanes, executor, [executor.stats], lambda _owner: None, failed)
    if failed:
        raise failed[0]
    return [lane.rows for lane in lanes]


def drive_engines(engines: Sequence[Engine],
                  executor: Executor) -> list[StepReport | Exception]:
    """One step of every engine, their waves merged: wave k of all their plans is one call.

    Each engine begins its step (:meth:`Engine.plan_step`); the plans of all engines are
    driven side by side, each engine's share of a wave counted into its own ``stats``; each
    engine then ends its step (:meth:`Engine.finish_step`) with its rows and the step's wall
    time. An engine whose planning, plans or hooks raise fails alone: its step is not
    finished, its remaining plans are dropped, and the others go on. Errors of the executor
    itself (every engine's wave) propagate.

    Returns:
        Per engine, in order: its :class:`StepReport`, or the exception that failed its step.
    """
    started = time.perf_counter()
    failed: dict[int, Exception] = {}
    lanes: list[_Lane] = []
    for e, engine in enumerate(engines):
        try:
            lanes.extend(_Lane(e, plan) for plan in engine.plan_step())
        except Exception as exc:  # a bug or bad data in one engine: it fails alone
            failed[e] = exc

    def after_wave(owner: int) -> None:
        engines[owner].hooks.at("in-wave", engines[owner].steps_done + 1)

    _run_lanes(lanes, executor, [engine.stats for engine in engines], after_wave, failed)
    seconds = time.perf_counter() - started
    return [failed[e] if e in failed else
            engine.finish_step([lane.rows for lane in lanes if lane.owner == e], seconds,
                               _prompts(lane for lane in lanes if lane.owner == e))
            for e, engine in enumerate(engines)]


def _prompts(lanes: Iterable[_Lane]) -> dict[str, Request]:
    """The distinct requests of some lanes, first occurrence first."""
    out: dict[str, Request] = {}
    for lane in lanes:
        for key, request in lane.prompts.items():
            out.setdefault(key, request)
    return out


def _run_lanes(lanes: list[_Lane], executor: Executor, stats: Sequence[ExecutorStats],
               after_wave: Callable[[int], None], failed: dict[int, Exception]) -> None:
    """Drive lanes (grouped by owner) wave by wave until every plan returned or failed.

    An exception from a plan or from ``after_wave`` goes to ``failed[owner]``; that owner's
    lanes get no further waves.
    """
    executor.begin_step()
    for lane in lanes:
        _advance(lane, None, failed)
    while live := [lane for lane in lanes if lane.wave is not None and lane.owner not in failed]:
        parts: list[Part] = []
        owners: list[int] = []
        for lane in live:
            size = len(lane.wave or ())
            if owners and owners[-1] == lane.owner:
                parts[-1] = (parts[-1][0] + size, parts[-1][1])
            else:
                owners.append(lane.owner)
                parts.append((size, stats[lane.owner]))
        results = executor.run([r for lane in live for r in lane.wave or ()], parts)
        for owner in owners:
            try:
                after_wave(owner)
            except Exception as exc:
                failed.setdefault(owner, exc)
        offset = 0
        for lane in live:
            size = len(lane.wave or ())
            if lane.owner in failed:
                lane.wave = None
            else:
                _advance(lane, results[offset:offset + size], failed)
            offset += size


def _advance(lane: _Lane, results: list[Result] | None, failed: dict[int, Exception]) -> None:
    """Start a lane's plan (``results`` None) or send it its wave's results."""
    try:
        lane.wave = next(lane.plan) if results is None else lane.plan.send(results)
        for request in lane.wave:
            lane.prompts.setdefault(prompt_hash(request), request)
    except StopIteration as stop:
        lane.wave, lane.rows = None, stop.value
    except Exception as exc:
        lane.wave = None
        failed.setdefault(lane.owner, exc)


class Engine:
    """Owns the loop of one run and its lock-stepped replicas.

    Args:
        spec: the scenario.
        config: seed, replicas, step limit, sampling defaults.
        executor: where waves go.
        callbacks: called with a :class:`StepReport` after every step.
        stats: where this engine's share of the executor's work is counted (default: the
            executor's own ``stats``; a sweep cohort gives each of its engines its own).
        hooks: called at ``before-step`` and ``in-wave`` (see :mod:`sim.records.hooks`).
    """

    def __init__(self, spec: ScenarioSpec, config: RunConfig, executor: Executor,
                 callbacks: Sequence[Callable[[StepReport], None]] = (), *,
                 stats: ExecutorStats | None = None, hooks: RunHooks = NO_HOOKS) -> None:
        self.spec = spec
        self.config = config
        self.executor = executor
        self.callbacks = list(callbacks)
        self.stats = stats if stats is not None else executor.stats
        self.hooks = hooks
        self.replicas = [
            Replica(spec, seed=config.seed, replica=r, max_new_tokens=config.max_new_tokens,
                       temperature=config.temperature)
            for r in range(config.replicas)
        ]
        self.steps_done = 0
        self._stepping: list[Replica] = []
        self._stages: tuple[str, ...] = ()

    @property
    def running(self) -> list[Replica]:
        """Replicas with stages left (and under the step limit)."""
        limit = self.config.steps
        return [s for s in self.replicas
                if s.state is not None and (limit is None or s.step_count < limit)]

    def step(self) -> StepReport:
        """Execute one stage in every running replica, batched together.

        Raises:
            Exception: whatever a stage plan or the hooks raised (the step is not counted).
        """
        (outcome,) = drive_engines([self], self.executor)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def plan_step(self) -> list[Plan]:
        """Begin a step: the plans of the running replicas, for :func:`drive_engines`.

        Raises:
            Exception: whatever the hooks raise at ``before-step``.
        """
        self.hooks.at("before-step", self.steps_done + 1)
        self._stepping = self.running
        self._stages = tuple(s.state.stage for s in self._stepping if s.state is not None)
        return [sim.plan_step() for sim in self._stepping]

    def finish_step(self, outputs: Sequence[list[dict[str, Any]]],
                    seconds: float, prompts: dict[str, Request] | None = None) -> StepReport:
        """End the step begun by :meth:`plan_step`: count it and report it to every callback.

        Args:
            outputs: each plan's returned rows, in plan order.
            seconds: wall time of the step.
            prompts: the step's distinct requests by prompt hash.
        """
        stepping, self._stepping = self._stepping, []
        self.steps_done += 1
        report = StepReport(step=self.steps_done, rows=[r for rows in outputs for r in rows],
                            seconds=seconds, stages=self._stages,
                            surveys=[r for s in stepping for r in s.take_side_rows()],
                            prompts=dict(prompts or {}),
                            world=[r for s in stepping for r in s.take_state_rows()])
        for callback in self.callbacks:
            callback(report)
        return report

    def intervene(self, item: str | InterventionSpec) -> None:
        """Apply an intervention in every running replica at the next step boundary.

        ``item``: a declared intervention's id or a checked spec (see
        :meth:`~sim.engine.replica.Replica.intervene`); it is recorded as an ``intervention``
        event row of the next step and checkpointed while it waits.

        Raises:
            RunError: the id names no intervention of the scenario.
        """
        for replica in self.running:
            replica.intervene(item)

    def state_dict(self) -> dict[str, Any]:
        """The engine's state after its last step: counters and every replica's state."""
        return {
            "steps_done": self.steps_done,
            "executor": stats_to_json(self.stats),
            "replicas": [sim.state_dict() for sim in self.replicas],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` output (on an engine built from the same spec).

        Raises:
            ValueError: if the state has another number of replicas.
        """
        if len(state["replicas"]) != len(self.replicas):
            raise ValueError(f"the checkpoint has {len(state['replicas'])} replicas, the run "
                             f"config {len(self.replicas)}")
        self.steps_done = int(state["steps_done"])
        if state["executor"] is not None:
            load_stats(self.stats, state["executor"])
        for sim, sim_state in zip(self.replicas, state["replicas"], strict=True):
            sim.load_state_dict(sim_state)

    def run(self) -> int:
        """Step until every replica is done; returns the number of steps."""
        while self.running:
            self.step()
        return self.steps_done
