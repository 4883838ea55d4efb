"""Run a sweep's cells on Ray: cohorts per node, retries, a manifest, resume.

Layout of a sweep directory::

    <out>/<sweep>/
        sweep.json          cells, params, status, node, attempts, timings (atomic rewrites)
        sweep.yaml          the sweep file as given
        <cell-id>/          one complete run directory per finished cell (+ cell.json)
        .staging/           cells in progress (never read; cleared on start and at the end)

Pending cells are split into cohorts, one per node (``cohorts_per_node`` more), each a Ray
task pinned to its node that runs its cells in lock-step on one model (see
:mod:`sim.sweep.cohort`). A cohort whose worker dies, or a cell that raises, costs the cells
concerned one attempt; a cell is retried until ``max_retries`` retries are spent and then
marked ``failed`` while the others go on. Ctrl-C cancels the running cohorts and leaves a
sweep that ``--resume`` continues; ``--resume`` skips every complete cell.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sim.errors import RunError, RunInterrupted
from sim.records.recorder import atomic_write
from sim.sweep.cohort import CellHooks, run_cohort
from sim.sweep.spec import LoadedSweep, apply_overrides

__all__ = ["SWEEP_FILE", "SweepInterrupted", "SweepResult", "run_sweep"]

SWEEP_FILE = "sweep.json"
STAGING = ".staging"


class SweepInterrupted(RunInterrupted):
    """Ctrl-C stopped a sweep; complete cells are kept and ``--resume`` runs the rest."""

    def __init__(self, path: Path, sweep_file: Path) -> None:
        super().__init__(path)
        self.sweep_file = sweep_file

    @property
    def resume_command(self) -> str:
        """The shell command that continues the sweep."""
        import shlex

        return (f"traitlab sweep {shlex.quote(str(self.sweep_file))} --resume --out "
                f"{shlex.quote(str(self.path.parent))}")


@dataclass(frozen=True, slots=True)
class SweepResult:
    """How a sweep ended."""

    path: Path
    status: str
    manifest: dict[str, Any]

    def count(self, status: str) -> int:
        """Cells with this status."""
        return sum(1 for c in self.manifest["cells"] if c["status"] == status)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _cell_complete(root: Path, cell_id: str) -> bool:
    manifest = root / cell_id / "manifest.json"
    try:
        return json.loads(manifest.read_text()).get("status") == "complete"
    except (OSError, ValueError):
        return False


def _fresh_manifest(sweep: LoadedSweep, max_retries: int) -> dict[str, Any]:
    return {
        "sweep": sweep.spec.name, "sweep_file": str(sweep.path.resolve()),
        "base_scenario": str((sweep.path.parent / sweep.spec.scenario).resolve()),
        "run_config": sweep.run.model_dump(mode="json", exclude={"out", "seed"}),
        "max_retries": max_retries, "status": "running", "started_at": _now(),
        "finished_at": None, "wall_s": 0.0, "nodes": [], "invocations": [],
        "cells": [{"id": c.id, "index": c.index, "params": c.params, "seed": c.seed,
                   "status": "pending", "node": None, "attempts": 0, "errors": [],
                   "started_at": None, "finished_at": None, "seconds": None, "events": None}
                  for c in sweep.cells],
    }


def _open(sweep: LoadedSweep, root: Path, resume: bool, max_retries: int) -> dict[str, Any]:
    """The sweep manifest to continue (resume) or a fresh one."""
    file = root / SWEEP_FILE
    if not file.is_file():
        return _fresh_manifest(sweep, max_retries)
    if not resume:
        raise RunError(f"{root} already holds a sweep. Fix: pass --resume to continue it, or "
                       "--out with another directory.")
    try:
        manifest = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {file}: {exc}.") from None
    known = {c["id"] for c in manifest.get("cells", [])}
    wanted = {c.id for c in sweep.cells}
    if known != wanted:
        raise RunError(f"{file} lists other cells than {sweep.path} expands to (the sweep "
                       "file changed). Fix: resume with the original file, or use another "
                       "--out.")
    manifest.update(max_retries=max_retries, status="running", finished_at=None)
    return manifest


def run_sweep(sweep: LoadedSweep, *, out: str | Path = "runs", resume: bool = False,
              max_retries: int | None = None, ray_address: str | None = None,
              on_update: Callable[[dict[str, Any]], None] | None = None,
              command: list[str] | None = None, poll_s: float = 0.5,
              hooks: CellHooks | None = None) -> SweepResult:
    """Run (or resume) a sweep; returns when every cell is complete or failed.

    Args:
        sweep: a loaded sweep (:func:`~sim.sweep.spec.load_sweep_spec`).
        out: output root; the sweep goes to ``out/<sweep name>/``.
        resume: continue the sweep already in that directory (complete cells are skipped).
        max_retries: retries per cell (default: the sweep file's ``max_retries``).
        ray_address: join this Ray cluster (default: local Ray).
        on_update: called with the sweep manifest whenever a cell changes (live view).
        command: the command line, for the manifest.
        poll_s: how often to look at running cohorts.
        hooks: the hooks of each cell's attempts, sent with its cohort
            (:class:`~sim.sweep.cohort.CellHooks`; tests use them to fail or slow cells).

    Raises:
        RunError: the directory holds another sweep, or the cluster cannot be reached.
        SweepInterrupted: Ctrl-C; complete cells are kept, ``--resume`` runs the rest.
    """
    from sim.executors import ray as rayx

    retries = sweep.spec.max_retries if max_retries is None else max_retries
    root = (Path(out).expanduser() / sweep.spec.name).resolve()
    root.mkdir(parents=True, exist_ok=True)
    manifest = _open(sweep, root, resume, retries)
    shutil.rmtree(root / STAGING, ignore_errors=True)
    atomic_write(root / "sweep.yaml", lambda p: p.write_text(sweep.path.read_text()))
    for entry in manifest["cells"]:
        if _cell_complete(root, entry["id"]):
            entry["status"] = "complete"
        else:
            entry.update(status="pending", attempts=0)
    manifest["invocations"].append({"at": _now(), "command": command, "resume": resume})
    run = _SweepRun(sweep, root, manifest, retries, on_update, hooks)
    if not run.queue:
        manifest.update(status="complete", finished_at=_now())
        run.save()
        return SweepResult(root, "complete", manifest)
    run.save()
    owns_ray = not rayx.is_initialized()
    rayx.init_ray(ray_address)
    try:
        run.slots = _slots(sweep, manifest, rayx.alive_nodes(), len(run.queue))
        run.loop(poll_s)
    finally:
        if owns_ray:
            rayx.shutdown_ray()
    shutil.rmtree(root / STAGING, ignore_errors=True)
    complete = all(c["status"] == "complete" for c in manifest["cells"])
    manifest.update(status="complete" if complete else "failed", finished_at=_now())
    run.save()
    return SweepResult(root, manifest["status"], manifest)


def _slots(sweep: LoadedSweep, manifest: dict[str, Any], nodes: list[dict[str, Any]],
           pending: int) -> list[str]:
    """Record the cluster's nodes; one cohort slot per usable node and ``cohorts_per_node``.

    Raises:
        RunError: if no node has what the cells need (a GPU, or CPUs).
    """
    manifest["nodes"] = [{"id": n["id"], "address": n["address"], "cpus": n["cpus"],
                          "gpus": n["gpus"]} for n in nodes]
    gpus = sweep.run.device == "cuda"
    usable = [n for n in nodes if n["gpus"] >= 1] if gpus else nodes
    if not usable:
        what = "a GPU" if gpus else "CPUs"
        raise RunError(f"no node of the Ray cluster has {what}; {pending} cells cannot run. "
                       "Fix: add such a node, or set run.device to cpu in the sweep file.")
    return [n["id"] for _ in range(sweep.spec.cohorts_per_node) for n in usable]


class _SweepRun:
    """The driver side of one sweep invocation: the queue, the cohorts in flight, the manifest."""

    def __init__(self, sweep: LoadedSweep, root: Path, manifest: dict[str, Any], retries: int,
                 on_update: Callable[[dict[str, Any]], None] | None,
                 hooks: CellHooks | None) -> None:
        self.sweep, self.root, self.manifest = sweep, root, manifest
        self.retries, self.on_update, self.hooks = retries, on_update, hooks
        self.cells = {c["id"]: c for c in manifest["cells"]}
        self.by_id = {c.id: c for c in sweep.cells}
        self.queue = [c.id for c in sweep.cells if self.cells[c.id]["status"] != "complete"]
        self.slots: list[str] = []
        self.inflight: dict[Any, tuple[str, list[str], str]] = {}  # handle: node, cells, staging
        self.counter = 0
        self.started = time.perf_counter()
        self.wall_before = float(manifest.get("wall_s") or 0.0)
        self.run_config = sweep.run.model_dump(mode="json", exclude={"out", "seed"})

    def save(self) -> None:
        """Rewrite ``sweep.json`` (atomically) and tell the live view."""
        self.manifest["wall_s"] = round(self.wall_before + time.perf_counter() - self.started, 3)
        text = json.dumps(self.manifest, indent=2, default=str) + "\n"
        atomic_write(self.root / SWEEP_FILE, lambda p: p.write_text(text))
        if self.on_update is not None:
            self.on_update(self.manifest)

    def loop(self, poll_s: float) -> None:
        """Submit cohorts and settle their cells until none is in flight.

        Raises:
            SweepInterrupted: on Ctrl-C, after cancelling the cohorts in flight.
        """
        from sim.executors import ray as rayx

        try:
            self.submit()
            self.save()
            while self.inflight:
                done = rayx.wait_any(list(self.inflight), timeout=poll_s)
                for handle in done:
                    _node, batch, staging = self.inflight.pop(handle)
                    result = rayx.outcome(handle)
                    for cell_id in batch:
                        value = (result.value.get(cell_id) if isinstance(result.value, dict)
                                 else None)
                        self.settle(cell_id, value, (value or {}).get("error") or result.error)
                    shutil.rmtree(staging, ignore_errors=True)
                if done:
                    self.submit()
                self.save()
        except KeyboardInterrupt:
            self.interrupt()
            raise SweepInterrupted(self.root, self.sweep.path) from None

    def job(self, cell_id: str) -> dict[str, Any]:
        """The payload of one cell for its cohort."""
        cell, entry = self.by_id[cell_id], self.cells[cell_id]
        return {"id": cell_id, "params": cell.params, "seed": cell.seed,
                "scenario": apply_overrides(self.sweep.base.raw, cell.params),
                "attempt": entry["attempts"], "sweep": str(self.sweep.path),
                "sweep_name": self.sweep.spec.name}

    def submit(self) -> None:
        """Split the queue over the free slots: one cohort task per slot."""
        from sim.executors import ray as rayx

        busy = Counter(node for node, _, _ in self.inflight.values())
        free = []
        for slot in self.slots:
            if busy[slot] > 0:
                busy[slot] -= 1
            else:
                free.append(slot)
        if not free or not self.queue:
            return
        size = math.ceil(len(self.queue) / len(free))
        for node in free:
            batch, self.queue[:] = self.queue[:size], self.queue[size:]
            if not batch:
                break
            for cell_id in batch:
                self.cells[cell_id].update(status="running", node=node, started_at=_now(),
                                           attempts=self.cells[cell_id]["attempts"] + 1)
            self.counter += 1
            staging = str(self.root / STAGING / f"cohort-{os.getpid()}-{self.counter:04d}")
            handle = rayx.submit(run_cohort, [self.job(c) for c in batch], self.run_config,
                                 staging, str(self.root), node=node,
                                 num_gpus=1 if self.sweep.run.device == "cuda" else 0,
                                 kwargs={"threads": self.sweep.spec.threads,
                                         "hooks": self.hooks})
            self.inflight[handle] = (node, batch, staging)

    def settle(self, cell_id: str, result: dict[str, Any] | None, error: str | None) -> None:
        """A cell's cohort ended: complete, pending again (a retry left) or failed."""
        entry = self.cells[cell_id]
        if result is not None:
            entry.update(node=result.get("node") or entry["node"], seconds=result["seconds"],
                         events=result.get("events"))
        if _cell_complete(self.root, cell_id):
            entry.update(status="complete", finished_at=_now())
            return
        entry["errors"].append({"attempt": entry["attempts"], "node": entry["node"],
                                "error": error or "unknown error"})
        if entry["attempts"] <= self.retries:
            entry["status"] = "pending"
            self.queue.append(cell_id)
        else:
            entry.update(status="failed", finished_at=_now())

    def interrupt(self) -> None:
        """Ctrl-C: cancel the cohorts, give their unfinished cells their attempt back."""
        from sim.executors import ray as rayx

        rayx.cancel(list(self.inflight))
        for _node, batch, _staging in self.inflight.values():
            for cell_id in batch:
                if not _cell_complete(self.root, cell_id):
                    self.cells[cell_id].update(status="pending",
                                               attempts=self.cells[cell_id]["attempts"] - 1)
                else:
                    self.cells[cell_id]["status"] = "complete"
        self.manifest.update(status="interrupted", finished_at=_now())
        self.save()
        shutil.rmtree(self.root / STAGING, ignore_errors=True)
