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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.backends.protocol import Backend
from sim.engine.loop import Engine, StepReport
from sim.engine.stages import Plan
from sim.executors.local import ExecutorStats, LocalExecutor, Request
from sim.records.recorder import Recorder, atomic_write
from sim.requests import GenerateResult, ScoreRequest
from sim.run.conditioning import prepare_run_conditioning
from sim.scenario.spec import RunConfig, ScenarioSpec

__all__ = ["CELL_FILE", "WORKER_FILE", "run_cohort"]

CELL_FILE = "cell.json"
WORKER_FILE = "worker.json"


class _Account:
    """Stands in for a cell's executor: the cohort sends the waves, the cell keeps counts."""

    def __init__(self) -> None:
        self.stats = ExecutorStats()

    def run(self, requests: Sequence[Request]) -> list[Any]:  # pragma: no cover - unused
        raise RuntimeError("a cohort cell's waves are sent by the cohort")

    def begin_step(self) -> None:  # pragma: no cover - unused
        raise RuntimeError("a cohort cell's steps are begun by the cohort")


@dataclass
class _CellRun:
    job: dict[str, Any]
    engine: Engine
    recorder: Recorder
    account: _Account
    started: float
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


def run_cohort(jobs: list[dict[str, Any]], run_config: dict[str, Any], staging: str,
               final_root: str, *, node: str | None = None,
               backend: Backend | None = None,
               threads: int | None = None) -> dict[str, dict[str, Any]]:
    """Run cells in lock-step on one backend; move each finished cell into ``final_root``.

    Args:
        jobs: one dict per cell: ``id``, ``params``, ``seed``, ``scenario`` (scenario data),
            ``attempt``, ``sweep``, and the test hooks ``fail`` (raise in the first step while
            ``attempt <= fail``) and ``delay`` (sleep seconds per step).
        run_config: :class:`~sim.scenario.spec.RunConfig` fields shared by the cells (no seed,
            no out).
        staging: this cohort's own staging directory (removed at the end).
        final_root: the sweep directory; cell ``x`` ends up in ``final_root/x``.
        node: the node id to record (default: asked from Ray inside a task, else "local").
        backend: a backend to reuse (default: opened from ``run_config``).
        threads: torch threads for the model (default: the backend's choice, every core).

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
        from sim.run.runner import open_backend

        backend = open_backend(RunConfig.model_validate(run_config))
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    executor = LocalExecutor(backend)
    cells = [_start(job, run_config, stage_dir, backend) for job in jobs]
    active = list(cells)
    while active:
        _step(active, executor)
        for cell in list(active):
            if cell.error is not None:
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
           backend: Backend) -> _CellRun:
    spec = ScenarioSpec.model_validate(job["scenario"])
    config = RunConfig.model_validate({**run_config, "seed": job["seed"],
                                       "out": str(stage_dir / job["id"])})
    recorder = Recorder.create(config, spec, backend.info,
                               command=["traitlab", "sweep", job["sweep"], "--cell", job["id"]])
    prepare_run_conditioning(spec, backend, recorder.path)
    account = _Account()
    engine = Engine(spec, config, account)
    recorder.write_population(engine.replicas)
    recorder.write_checkpoint(engine.state_dict())
    return _CellRun(job=job, engine=engine, recorder=recorder, account=account,
                    started=time.perf_counter())


def _step(cells: list[_CellRun], executor: LocalExecutor) -> None:
    """One step of every cell: all their plans driven together, wave by wave."""
    started = time.perf_counter()
    executor.begin_step()
    plans: list[tuple[_CellRun, Plan]] = []
    for cell in cells:
        if cell.job.get("fail", 0) >= cell.job["attempt"]:
            cell.error = f"test hook: cell {cell.job['id']} fails on attempt {cell.job['attempt']}"
            continue
        if cell.job.get("delay"):
            time.sleep(float(cell.job["delay"]))
        plans.extend((cell, sim.plan_step()) for sim in cell.engine.running)
    outputs: dict[int, list[dict[str, Any]]] = {}
    waves: dict[int, list[Request]] = {}

    def advance(i: int, send: Any) -> None:
        cell, plan = plans[i]
        try:
            waves[i] = plan.send(send) if send is not None else next(plan)
        except StopIteration as stop:
            outputs[i] = stop.value
        except Exception as exc:  # a bug or bad data in one cell: that cell fails alone
            cell.error = f"{type(exc).__name__}: {exc}"

    for i in range(len(plans)):
        advance(i, None)
    while waves:
        order = [i for i in waves if plans[i][0].error is None]
        current = {i: waves[i] for i in order}
        waves.clear()
        if not current:
            break
        before = executor.stats.model_seconds
        results = executor.run([r for i in order for r in current[i]])
        model_share = (executor.stats.model_seconds - before) / max(len(results), 1)
        offset = 0
        for i in order:
            size = len(current[i])
            part = results[offset:offset + size]
            _count(plans[i][0].account.stats, current[i], part, model_share)
            offset += size
            advance(i, part)
    seconds = time.perf_counter() - started
    for cell in cells:
        if cell.error is not None:
            continue
        rows = [r for i, (c, _) in enumerate(plans) if c is cell for r in outputs.get(i, [])]
        engine = cell.engine
        engine.steps_done += 1
        stats = cell.account.stats
        stats.waves += 1
        report = StepReport(step=engine.steps_done, rows=rows, seconds=seconds, stages=(),
                            surveys=[r for s in engine.replicas for r in s.take_side_rows()])
        cell.recorder.record_step(
            report.step, report.rows, seconds=seconds, model_seconds=stats.model_seconds,
            failures=stats.failures, retries=stats.retries, state=engine.state_dict(),
            tokens={"prompt": stats.prompt_tokens, "new": stats.new_tokens,
                    "cached": stats.cached_tokens},
            surveys=report.surveys)


def _count(stats: ExecutorStats, requests: Sequence[Request], results: Sequence[Any],
           model_share: float) -> None:
    stats.requests += len(requests)
    for request, result in zip(requests, results, strict=True):
        stats.prompt_tokens += result.num_prompt_tokens
        stats.cached_tokens += result.num_cached_tokens
        if isinstance(result, GenerateResult):
            stats.new_tokens += result.num_new_tokens
        if result.error is not None:
            stats.failures += 1
        if request.policy is None:
            stats.model_seconds += model_share
        key = ("scripted" if request.policy is not None else "model") + \
              (".score" if isinstance(request, ScoreRequest) else ".generate")
        stats.calls[key] = stats.calls.get(key, 0) + 1


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
