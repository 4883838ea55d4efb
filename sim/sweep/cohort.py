"""A cohort: several sweep cells run in lock-step on one model, their waves merged per step.

Cells of a sweep are small (a two-agent game gives a batch of two); run side by side, the
waves of all cells of a step go to the backend as one batch, which is where the speed of a
sweep comes from. A cohort runs in one process (a Ray task on one node, holding that node's
model replica) or in-process (the sequential baseline of ``bench/sweep.py``).

Each cell is recorded like a plain run (same recorder, shards, checkpoint, manifest) into a
staging directory, and moved to ``<sweep>/<cell-id>/`` by one ``rename`` when it completes, so
a cell directory is never partial and never written twice.

A cohort can continue from its staging directory (``resume=True``, :mod:`sim.sweep.replicate`)
and then sends the model exactly the batches an uninterrupted cohort would have sent. In bf16 a
row's logits depend in their last bits on the other rows of its batch, so this is what makes
the records of a resumed cohort equal to an uninterrupted one's. Two things ensure it:

* every cell goes back to the *same* step, the last step that every unfinished cell committed.
  A kill between two cells' commits of step k leaves some cells at k and others at k - 1, so
  a cell ahead goes back to its checkpoint of step k - 1 (a run's checkpoints keep every
  step, :mod:`sim.records.checkpoint`); the cohort then re-runs step k for all of them
  together, as before;
* a cell that finished is gone from the cohort from its last step on, in both runs; a cell is
  published only after every cell has committed that step, so a finished cell never belongs
  to a step that is re-run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sim.backends.protocol import Backend
from sim.engine.loop import Engine, StepReport, drive_engines
from sim.errors import RunError
from sim.executors.local import ExecutorStats, LocalExecutor
from sim.records.checkpoint import checkpoint_steps, read_checkpoint, verify_checkpoint
from sim.records.files import read_manifest
from sim.records.hooks import NO_HOOKS, RunHooks
from sim.records.recorder import Recorder, atomic_write
from sim.run.conditioning import prepare_run_conditioning
from sim.run.runner import record_steps
from sim.scenario.loader import spec_hash
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
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class _Saved:
    """A staging cell a resume can continue: its run directory and committed steps."""

    path: Path
    step: int
    prev: int | None


def run_cohort(jobs: list[dict[str, Any]], run_config: dict[str, Any], staging: str,
               final_root: str, *, node: str | None = None,
               backend: Backend | None = None, threads: int | None = None,
               hooks: CellHooks | None = None, resume: bool = False
               ) -> dict[str, dict[str, Any]]:
    """Run cells in lock-step on one backend; move each finished cell into ``final_root``.

    Every step of every running cell is one :func:`~sim.engine.loop.drive_engines` call over
    the cells' engines, so wave k of all cells goes to the backend as one batch. A cell whose
    step raises fails alone (``failed``, not moved); the others go on. On Ctrl-C the running
    cells are marked ``interrupted`` (their staging directories are kept) and the
    ``KeyboardInterrupt`` propagates.

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
        resume: continue the cells that ``staging`` holds from the last step all of them
            committed (the others start from their first step), so the batches from there
            on are those of an uninterrupted cohort.

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
    saved = _saved_cells(jobs, stage_dir) if resume else {}
    common = min((s.step for s in saved.values()), default=0)
    cells = []
    for job in jobs:
        cell_hooks = hooks.cell(job["id"], job["attempt"]) if hooks is not None else NO_HOOKS
        state = saved.get(job["id"])
        cell = (_reopen(job, state, common, run_config, executor, cell_hooks)
                if state is not None else None)
        cells.append(cell or _start(job, run_config, stage_dir, executor, cell_hooks))
    # a resumed cell may have ended at the common step (killed before it was published)
    active = [cell for cell in cells
              if not (cell.resumed and _settle(cell, None, Path(final_root), node))]
    try:
        while active:
            outcomes = drive_engines([cell.engine for cell in active], executor)
            for cell, outcome in zip(list(active), outcomes, strict=True):
                if _settle(cell, outcome, Path(final_root), node):
                    active.remove(cell)
    except KeyboardInterrupt:
        for cell in active:  # resumable from their staging directories
            if not cell.result:
                with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: go on
                    cell.recorder.finish("interrupted")
        raise
    shutil.rmtree(stage_dir, ignore_errors=True)
    return {c.job["id"]: c.result for c in cells}


def _settle(cell: _CellRun, outcome: StepReport | Exception | None, final_root: Path,
            node: str) -> bool:
    """End a cell that failed (``outcome`` an exception) or completed; ``True`` if it ended.

    Called after every cell of the cohort has recorded the step, so a cell published here
    never belongs to a step that a resume re-runs.
    """
    if isinstance(outcome, Exception):
        cell.error = f"{type(outcome).__name__}: {outcome}"
        cell.recorder.finish("failed")
        cell.result = _result(cell, "failed", node)
        return True
    if cell.engine.running:
        return False
    cell.recorder.finish("complete")
    cell.result = _result(cell, "complete", node)
    _publish(cell, final_root, node)
    return True


def _config(job: dict[str, Any], run_config: dict[str, Any], stage_dir: Path) -> RunConfig:
    return RunConfig.model_validate({**run_config, "seed": job["seed"],
                                     "out": str(stage_dir / job["id"])})


def _engine(spec: ScenarioSpec, config: RunConfig, executor: LocalExecutor, hooks: RunHooks,
            recorder: Recorder) -> Engine:
    """A cell's engine that records each step (its checkpoints keep every past step)."""
    engine = Engine(spec, config, executor, stats=ExecutorStats(), hooks=hooks)
    engine.callbacks.append(record_steps(engine, recorder))
    return engine


def _start(job: dict[str, Any], run_config: dict[str, Any], stage_dir: Path,
           executor: LocalExecutor, hooks: RunHooks) -> _CellRun:
    """A cell's recorder and engine (on the shared executor, with its own counters)."""
    shutil.rmtree(stage_dir / job["id"], ignore_errors=True)  # what a resume could not use
    spec = ScenarioSpec.model_validate(job["scenario"])
    config = _config(job, run_config, stage_dir)
    recorder = Recorder.create(config, spec, executor.model.info, hooks=hooks,
                               command=["traitlab", "sweep", job["sweep"], "--cell", job["id"]])
    prepare_run_conditioning(spec, executor.model, recorder.path)
    engine = _engine(spec, config, executor, hooks, recorder)
    recorder.write_population(engine.replicas)
    recorder.write_checkpoint(engine.state_dict())
    return _CellRun(job=job, engine=engine, recorder=recorder, started=time.perf_counter())


def _saved_cells(jobs: list[dict[str, Any]], stage_dir: Path) -> dict[str, _Saved]:
    """The staging cells a resume can continue (one run directory, a valid checkpoint).

    Failed cells, and anything unreadable, are left out: they start over.
    """
    saved: dict[str, _Saved] = {}
    for job in jobs:
        root = stage_dir / job["id"]
        runs = [d for d in root.glob("*/*") if (d / "manifest.json").is_file()]
        if len(runs) != 1:
            continue
        run = runs[0]
        try:
            manifest = read_manifest(run)
            digest = spec_hash(ScenarioSpec.model_validate(job["scenario"]))
            if manifest.get("status") == "failed" or manifest.get("spec_hash") != digest:
                continue
            current = read_checkpoint(run, digest)
        except (RunError, OSError):
            continue
        if current is not None:
            step = int(current["step"])
            prev = step - 1 if step - 1 in checkpoint_steps(run) else None
            saved[job["id"]] = _Saved(run, step, prev)
    return saved


def _reopen(job: dict[str, Any], saved: _Saved, step: int, run_config: dict[str, Any],
            executor: LocalExecutor, hooks: RunHooks) -> _CellRun | None:
    """Continue a staging cell from its checkpoint at ``step`` (``None``: unusable).

    A cell with no checkpoint at ``step`` (one that had started over after a failure, out of
    step with the others) continues from its own last one.
    """
    target = step if saved.step != step and saved.prev == step else saved.step
    spec = ScenarioSpec.model_validate(job["scenario"])
    try:
        checkpoint = read_checkpoint(saved.path, spec_hash(spec), target)
        if checkpoint is None:
            return None
        verify_checkpoint(saved.path, checkpoint, read_manifest(saved.path))
    except RunError:
        return None
    config = _config(job, run_config, saved.path.parent.parent.parent)
    recorder = Recorder.reopen(saved.path, checkpoint, hooks=hooks, command=[
        "traitlab", "sweep", job["sweep"], "--cell", job["id"], "--resume"])
    prepare_run_conditioning(spec, executor.model, recorder.path)
    engine = _engine(spec, config, executor, hooks, recorder)
    engine.load_state_dict(checkpoint["engine"])
    return _CellRun(job=job, engine=engine, recorder=recorder, started=time.perf_counter(),
                    resumed=True)


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
