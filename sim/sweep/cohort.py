"""A cohort: several sweep cells run in lock-step on one model, their waves merged per step.

Cells of a sweep are small (a two-agent game gives a batch of two); run side by side, the
waves of all cells of a step go to the backend as one batch, which is where the speed of a
sweep comes from. A cohort runs in one process (a Ray task on one node, holding that node's
model replica) or in-process (the sequential baseline of ``bench/sweep.py``).

Each cell is recorded like a plain run (same recorder, shards, checkpoint, manifest) into a
staging directory, and moved to ``<sweep>/<cell-id>/`` by one ``rename`` when it completes, so
a cell directory is never partial and never written twice.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sim.backends.protocol import Backend
from sim.engine.loop import Engine, drive_engines
from sim.executors.local import ExecutorStats, LocalExecutor
from sim.records.hooks import NO_HOOKS, RunHooks
from sim.records.recorder import Recorder, atomic_write
from sim.run.conditioning import prepare_run_conditioning
from sim.run.runner import record_steps
from sim.scenario.spec import RunConfig, ScenarioSpec

__all__ = ["CELL_FILE", "WORKER_FILE", "CellHooks", "run_cohort"]

CELL_FILE = "cell.json"
WORKER_FILE = "worker.json"


class CellHooks(Protocol):
    """The hooks of each cell's attempt (picklable: a sweep sends them to its Ray tasks)."""

    def cell(self, cell_id: str, attempt: int) -> RunHooks:
        """Hooks for attempt ``attempt`` (1-based) of cell ``cell_id``."""
        ...


@dataclass
class _CellRun:
    job: dict[str, Any]
    engine: Engine
    recorder: Recorder
    started: float
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


def run_cohort(jobs: list[dict[str, Any]], run_config: dict[str, Any], staging: str,
               final_root: str, *, node: str | None = None,
               backend: Backend | None = None, threads: int | None = None,
               hooks: CellHooks | None = None) -> dict[str, dict[str, Any]]:
    """Run cells in lock-step on one backend; move each finished cell into ``final_root``.

    Every step of every running cell is one :func:`~sim.engine.loop.drive_engines` call over
    the cells' engines, so wave k of all cells goes to the backend as one batch. A cell whose
    step raises fails alone (``failed``, not moved); the others go on.

    Args:
        jobs: one dict per cell: ``id``, ``params``, ``seed``, ``scenario`` (scenario data),
            ``attempt``, ``sweep`` (the sweep file) and ``sweep_name``.
        run_config: :class:`~sim.scenario.spec.RunConfig` fields shared by the cells (no seed,
            no out).
        staging: this cohort's own staging directory (removed at the end).
        final_root: the sweep directory; cell ``x`` ends up in ``final_root/x``.
        node: the node id to record (default: asked from Ray inside a task, else "local").
        backend: a backend to reuse (default: opened from ``run_config``).
        threads: torch threads for the model (default: the backend's choice, every core).
        hooks: the hooks of each cell (:mod:`sim.records.hooks`; default: none).

    Returns:
        Cell id -> ``{"status": "complete" | "failed", "error", "node", "seconds", ...}``.
    """
    if node is None:
        from sim.executors.ray import current_node

        node = current_node()
    stage_dir = Path(staging)
    stage_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(stage_dir / WORKER_FILE, lambda p: p.write_text(json.dumps(
        {"pid": os.getpid(), "node": node, "cells": [j["id"] for j in jobs]})))
    if backend is None:
        from sim.backends.factory import open_backend

        backend = open_backend(RunConfig.model_validate(run_config))
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    executor = LocalExecutor(backend)
    cells = [_start(job, run_config, stage_dir, executor,
                    hooks.cell(job["id"], job["attempt"]) if hooks is not None else NO_HOOKS)
             for job in jobs]
    active = list(cells)
    while active:
        outcomes = drive_engines([cell.engine for cell in active], executor)
        for cell, outcome in zip(list(active), outcomes, strict=True):
            if isinstance(outcome, Exception):
                cell.error = f"{type(outcome).__name__}: {outcome}"
                cell.recorder.finish("failed")
                cell.result = _result(cell, "failed", node)
                active.remove(cell)
            elif not cell.engine.running:
                cell.recorder.finish("complete")
                cell.result = _result(cell, "complete", node)
                _publish(cell, Path(final_root), node)
                active.remove(cell)
    shutil.rmtree(stage_dir, ignore_errors=True)
    return {c.job["id"]: c.result for c in cells}


def _start(job: dict[str, Any], run_config: dict[str, Any], stage_dir: Path,
           executor: LocalExecutor, hooks: RunHooks) -> _CellRun:
    """A cell's recorder and engine (on the shared executor, with its own counters)."""
    spec = ScenarioSpec.model_validate(job["scenario"])
    config = RunConfig.model_validate({**run_config, "seed": job["seed"],
                                       "out": str(stage_dir / job["id"])})
    recorder = Recorder.create(config, spec, executor.model.info, hooks=hooks,
                               command=["traitlab", "sweep", job["sweep"], "--cell", job["id"]])
    prepare_run_conditioning(spec, executor.model, recorder.path)
    engine = Engine(spec, config, executor, stats=ExecutorStats(), hooks=hooks)
    engine.callbacks.append(record_steps(engine, recorder))
    recorder.write_population(engine.replicas)
    recorder.write_checkpoint(engine.state_dict())
    return _CellRun(job=job, engine=engine, recorder=recorder, started=time.perf_counter())


def _result(cell: _CellRun, status: str, node: str) -> dict[str, Any]:
    return {"status": status, "error": cell.error, "node": node, "pid": os.getpid(),
            "seconds": round(time.perf_counter() - cell.started, 3),
            "steps": cell.engine.steps_done, "events": cell.recorder.manifest["events"]}


def _publish(cell: _CellRun, final_root: Path, node: str) -> None:
    """Move a finished cell's run directory to ``final_root/<cell-id>`` in one rename."""
    job = cell.job
    atomic_write(cell.recorder.path / CELL_FILE, lambda p: p.write_text(json.dumps({
        "sweep": job["sweep_name"], "cell": job["id"], "params": job["params"],
        "seed": job["seed"], "node": node, "attempt": job["attempt"]}, indent=2) + "\n"))
    final_root.mkdir(parents=True, exist_ok=True)
    target = final_root / job["id"]
    try:
        os.rename(cell.recorder.path, target)
    except OSError:  # already there (a lost attempt that did finish): keep the first
        shutil.rmtree(cell.recorder.path, ignore_errors=True)
        cell.result["duplicate"] = True
