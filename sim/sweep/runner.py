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
from sim.sweep.cohort import run_cohort
from sim.sweep.spec import LoadedSweep, apply_overrides

__all__ = ["SWEEP_FILE", "SweepInterrupted", "SweepResult", "run_sweep"]

SWEEP_FILE = "sweep.json"
STAGING = ".staging"
# Test hooks (read when a sweep starts): "CELL:N[,CELL:N]" makes CELL fail its attempts 1..N;
# a number of seconds to sleep before every step of every cell (to kill a worker mid-sweep).
_FAIL_ENV, _DELAY_ENV = "TRAITLAB_TEST_SWEEP_FAIL", "TRAITLAB_TEST_SWEEP_DELAY"


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


def _test_hooks() -> tuple[dict[str, int], float]:
    fails = {}
    for item in filter(None, os.environ.get(_FAIL_ENV, "").split(",")):
        cell, _, times = item.partition(":")
        fails[cell] = int(times or 1_000_000)
    return fails, float(os.environ.get(_DELAY_ENV) or 0)


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
              command: list[str] | None = None, poll_s: float = 0.5) -> SweepResult:
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
    cells = {c["id"]: c for c in manifest["cells"]}
    for entry in cells.values():
        if _cell_complete(root, entry["id"]):
            entry["status"] = "complete"
        else:
            entry.update(status="pending", attempts=0)
    manifest["invocations"].append({"at": _now(), "command": command, "resume": resume})
    started = time.perf_counter()
    wall_before = float(manifest.get("wall_s") or 0.0)

    def save() -> None:
        manifest["wall_s"] = round(wall_before + time.perf_counter() - started, 3)
        text = json.dumps(manifest, indent=2, default=str) + "\n"
        atomic_write(root / SWEEP_FILE, lambda p: p.write_text(text))
        if on_update is not None:
            on_update(manifest)

    queue = [c.id for c in sweep.cells if cells[c.id]["status"] != "complete"]
    if not queue:
        manifest.update(status="complete", finished_at=_now())
        save()
        return SweepResult(root, "complete", manifest)
    save()
    owns_ray = not rayx.is_initialized()
    rayx.init_ray(ray_address)
    nodes = rayx.alive_nodes()
    manifest["nodes"] = [{"id": n["id"], "address": n["address"], "cpus": n["cpus"],
                          "gpus": n["gpus"]} for n in nodes]
    gpus = 1 if sweep.run.device == "cuda" else 0
    usable = [n for n in nodes if n["gpus"] >= 1] if gpus else nodes
    if not usable:
        if owns_ray:
            rayx.shutdown_ray()
        what = "a GPU" if gpus else "CPUs"
        raise RunError(f"no node of the Ray cluster has {what}; {len(queue)} cells cannot run. "
                       "Fix: add such a node, or set run.device to cpu in the sweep file.")
    slots = [n["id"] for _ in range(sweep.spec.cohorts_per_node) for n in usable]
    fails, delay = _test_hooks()
    by_id = {c.id: c for c in sweep.cells}
    run_config = sweep.run.model_dump(mode="json", exclude={"out", "seed"})
    inflight: dict[Any, tuple[str, list[str], str]] = {}  # handle -> (node, cells, staging)
    counter = 0

    def job(cell_id: str) -> dict[str, Any]:
        cell, entry = by_id[cell_id], cells[cell_id]
        return {"id": cell_id, "params": cell.params, "seed": cell.seed,
                "scenario": apply_overrides(sweep.base.raw, cell.params),
                "attempt": entry["attempts"], "sweep": str(sweep.path),
                "sweep_name": sweep.spec.name, "fail": fails.get(cell_id, 0), "delay": delay}

    def submit() -> None:
        nonlocal counter
        busy = Counter(node for node, _, _ in inflight.values())
        free = []
        for slot in slots:
            if busy[slot] > 0:
                busy[slot] -= 1
            else:
                free.append(slot)
        if not free or not queue:
            return
        size = math.ceil(len(queue) / len(free))
        for node in free:
            batch, queue[:] = queue[:size], queue[size:]
            if not batch:
                break
            for cell_id in batch:
                cells[cell_id].update(status="running", node=node, started_at=_now(),
                                      attempts=cells[cell_id]["attempts"] + 1)
            counter += 1
            staging = str(root / STAGING / f"cohort-{os.getpid()}-{counter:04d}")
            handle = rayx.submit(run_cohort, [job(c) for c in batch], run_config, staging,
                                 str(root), node=node, num_gpus=gpus,
                                 kwargs={"threads": sweep.spec.threads})
            inflight[handle] = (node, batch, staging)

    def settle(cell_id: str, result: dict[str, Any] | None, error: str | None) -> None:
        entry = cells[cell_id]
        if result is not None:
            entry.update(node=result.get("node") or entry["node"], seconds=result["seconds"],
                         events=result.get("events"))
        if _cell_complete(root, cell_id):
            entry.update(status="complete", finished_at=_now())
            return
        entry["errors"].append({"attempt": entry["attempts"], "node": entry["node"],
                                "error": error or "unknown error"})
        if entry["attempts"] <= retries:
            entry["status"] = "pending"
            queue.append(cell_id)
        else:
            entry.update(status="failed", finished_at=_now())

    try:
        submit()
        save()
        while inflight:
            done = rayx.wait_any(list(inflight), timeout=poll_s)
            for handle in done:
                _node, batch, staging = inflight.pop(handle)
                result = rayx.outcome(handle)
                for cell_id in batch:
                    value = result.value.get(cell_id) if isinstance(result.value, dict) else None
                    settle(cell_id, value, (value or {}).get("error") or result.error)
                shutil.rmtree(staging, ignore_errors=True)
            if done:
                submit()
            save()
    except KeyboardInterrupt:
        rayx.cancel(list(inflight))
        for _node, batch, _staging in inflight.values():
            for cell_id in batch:
                if not _cell_complete(root, cell_id):
                    cells[cell_id].update(status="pending", attempts=cells[cell_id]["attempts"]
                                          - 1)
                else:
                    cells[cell_id]["status"] = "complete"
        manifest.update(status="interrupted", finished_at=_now())
        save()
        shutil.rmtree(root / STAGING, ignore_errors=True)
        raise SweepInterrupted(root, sweep.path) from None
    finally:
        if owns_ray:
            rayx.shutdown_ray()
    shutil.rmtree(root / STAGING, ignore_errors=True)
    complete = all(c["status"] == "complete" for c in manifest["cells"])
    manifest.update(status="complete" if complete else "failed", finished_at=_now())
    save()
    return SweepResult(root, manifest["status"], manifest)
