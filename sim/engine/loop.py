"""The step loop: replicas in lock-step, every wave of every replica in one backend call.

The engine opens no files and prints nothing: each completed step goes to the callbacks
given at construction (the recorder, a progress bar).

Shape of the loop::

    while replicas are running:
        plans = [sim.plan_step() for sim in running]     # generators of request waves
        rows  = drive(plans, executor)                   # wave k of all plans = one call
        for callback in callbacks: callback(report)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.engine.replica import Replica
from sim.engine.stages import Plan
from sim.executors.local import Executor, LocalExecutor, Request
from sim.records.checkpoint import load_stats, stats_to_json
from sim.records.recorder import _maybe_die
from sim.scenario.spec import RunConfig, ScenarioSpec

__all__ = ["Engine", "StepReport", "drive"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepReport:
    """What one lock-stepped step produced, handed to every callback."""

    step: int
    rows: list[dict[str, Any]]
    seconds: float
    stages: tuple[str, ...]
    surveys: list[dict[str, Any]] = field(default_factory=list)


def drive(plans: Sequence[Plan], executor: Executor, *,
          step: int = 0) -> list[list[dict[str, Any]]]:
    """Run plans side by side: their current waves go to the executor as one list.

    The executor's ``begin_step`` is called first, so nothing it keeps between waves (prompt
    KV) carries from one step into the next.

    Args:
        plans: the plans of one step.
        executor: where the waves go.
        step: the step number (only for the ``in-wave`` test hook of the recorder).

    Returns:
        Each plan's returned rows, in plan order.
    """
    outputs: list[list[dict[str, Any]]] = [[] for _ in plans]
    waves: dict[int, list[Request]] = {}
    executor.begin_step()
    for i, plan in enumerate(plans):
        try:
            waves[i] = next(plan)
        except StopIteration as stop:
            outputs[i] = stop.value
    while waves:
        order = list(waves)
        results = executor.run([r for i in order for r in waves[i]])
        _maybe_die("in-wave", step)
        offset, next_waves = 0, {}
        for i in order:
            size = len(waves[i])
            try:
                next_waves[i] = plans[i].send(results[offset:offset + size])
            except StopIteration as stop:
                outputs[i] = stop.value
            offset += size
        waves = next_waves
    return outputs


class Engine:
    """Owns the loop of one run and its lock-stepped replicas.

    Args:
        spec: the scenario.
        config: seed, replicas, step limit, sampling defaults.
        executor: where waves go (default: a local executor over ``backend``).
        callbacks: called with a :class:`StepReport` after every step.
    """

    def __init__(self, spec: ScenarioSpec, config: RunConfig, executor: Executor | LocalExecutor,
                 callbacks: Sequence[Callable[[StepReport], None]] = ()) -> None:
        self.spec = spec
        self.config = config
        self.executor = executor
        self.callbacks = list(callbacks)
        self.replicas = [
            Replica(spec, seed=config.seed, replica=r, max_new_tokens=config.max_new_tokens,
                       temperature=config.temperature)
            for r in range(config.replicas)
        ]
        self.steps_done = 0

    @property
    def running(self) -> list[Replica]:
        """Replicas with stages left (and under the step limit)."""
        limit = self.config.steps
        return [s for s in self.replicas
                if s.state is not None and (limit is None or s.step_count < limit)]

    def step(self) -> StepReport:
        """Execute one stage in every running replica, batched together."""
        _maybe_die("before-step", self.steps_done + 1)
        started = time.perf_counter()
        running = self.running
        stages = tuple(s.state.stage for s in running if s.state is not None)
        outputs = drive([s.plan_step() for s in running], self.executor,
                        step=self.steps_done + 1)
        self.steps_done += 1
        report = StepReport(step=self.steps_done, rows=[r for rows in outputs for r in rows],
                            seconds=time.perf_counter() - started, stages=stages,
                            surveys=[r for s in running for r in s.take_side_rows()])
        for callback in self.callbacks:
            callback(report)
        return report

    def state_dict(self) -> dict[str, Any]:
        """The engine's state after its last step: counters and every replica's state."""
        stats = getattr(self.executor, "stats", None)
        return {
            "steps_done": self.steps_done,
            "executor": stats_to_json(stats) if stats is not None else None,
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
        stats = getattr(self.executor, "stats", None)
        if stats is not None and state["executor"] is not None:
            load_stats(stats, state["executor"])
        for sim, sim_state in zip(self.replicas, state["replicas"], strict=True):
            sim.load_state_dict(sim_state)

    def run(self) -> int:
        """Step until every replica is done; returns the number of steps."""
        while self.running:
            self.step()
        return self.steps_done
