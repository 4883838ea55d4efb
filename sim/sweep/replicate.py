"""Run the replication suite: every cell of the selected benchmarks as one cohort.

The cells run in lock-step on one model (:func:`sim.sweep.cohort.run_cohort`), so step k of
every cell goes to the backend as one batch, the way a sweep's cells on one node do; Ray
is not needed for one machine, so none is started. Layout of a suite folder::

    <out>/
        suite.json        the run settings, the benchmarks, each cell's status and time
        cells/<cell-id>/  one complete run directory per finished cell
        .staging/         cells in progress, each recorded like a run with its checkpoint

A cell directory appears in ``cells/`` by one rename when the cell completes. After a kill
the same command resumes: the finished cells are kept and the others continue from the last
step that all of them committed, in the same cohort, so every batch the model sees from
there on is the one an uninterrupted suite sent it (see :mod:`sim.sweep.cohort`), and the
records and the scorecard are the same.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.backends.protocol import Backend
from sim.errors import RunError
from sim.records.recorder import atomic_write
from sim.scenario.spec import RunConfig
from sim.sweep.cohort import CellHooks, run_cohort
from sim.sweep.suite import Personas, Policies, Suite, cell_scenario

__all__ = ["SUITE_FILE", "SuiteResult", "run_suite"]

SUITE_FILE = "suite.json"
_SAME = ("backend", "model", "seed", "replicas", "dtype", "temperature", "max_new_tokens")


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """Where the suite went and how its cells ended."""

    path: Path
    manifest: dict[str, Any]

    @property
    def complete(self) -> bool:
        """Every cell finished."""
        return all(c["status"] == "complete" for c in self.manifest["cells"].values())


def _complete(path: Path) -> bool:
    try:
        return json.loads((path / "manifest.json").read_text()).get("status") == "complete"
    except (OSError, ValueError):
        return False


def _open(out: Path, config: RunConfig, policies: Policies | None, suite: Suite,
          cells: list[str], personas: Personas = "uniform") -> dict[str, Any]:
    """The suite manifest to continue, or a fresh one; refuses other settings in ``out``."""
    run = config.model_dump(mode="json", exclude={"out", "api"})
    file = out / SUITE_FILE
    if file.is_file():
        try:
            old = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise RunError(f"cannot read {file}: {exc}.") from None
        changed = [k for k in _SAME if old["run_config"].get(k) != run.get(k)]
        if old.get("policies") != policies:
            changed.append("policies")
        if old.get("personas", "uniform") != personas:
            changed.append("personas")
        if changed:
            raise RunError(f"{out} holds a suite run with other settings ({', '.join(changed)})."
                           " Fix: pass the same flags to resume it, or another --out.")
        for cid in cells:
            old["cells"].setdefault(cid, {"status": "pending", "seconds": None})
        old["benchmarks"] = sorted(set(old["benchmarks"]) | {b.name for b in suite.benchmarks})
        return old
    return {"run_config": run, "policies": policies, "personas": personas, "wall_s": [],
            "benchmarks": [b.name for b in suite.benchmarks],
            "cells": {cid: {"status": "pending", "seconds": None} for cid in cells}}


def run_suite(suite: Suite, config: RunConfig, out: str | Path, *,
              policies: Policies | None = None, backend: Backend | None = None,
              personas: Personas = "uniform", hooks: CellHooks | None = None) -> SuiteResult:
    """Run the cells of ``suite`` that are not complete in ``out`` and record them.

    Args:
        suite: the benchmarks (see :func:`sim.sweep.suite.load_suite`).
        config: the run settings shared by every cell (``out`` is ignored).
        out: the suite folder (created; resumed if it holds the same settings).
        policies: run every cell with its scripted ``human`` or ``contrary`` population.
        personas: ``"norms"`` samples personas around human Big Five norms in every cell.
        backend: a backend to reuse (default: opened from ``config`` if a cell must run).
        hooks: the hooks of each cell (:mod:`sim.records.hooks`; tests kill the suite there).

    Raises:
        RunError: ``out`` holds a suite run with other settings.
        ScenarioError: a cell's scenario is invalid (before anything runs).
    """
    out = Path(out)
    cells = suite.cell_ids()
    scenarios = {cid: cell_scenario(*suite.cells[cid], policies, personas) for cid in cells}
    out.mkdir(parents=True, exist_ok=True)
    manifest = _open(out, config, policies, suite, cells, personas)
    root = out / "cells"
    staging = out / ".staging"  # kept: the unfinished cells continue from their checkpoints
    for cid in cells:
        if _complete(root / cid):
            manifest["cells"][cid]["status"] = "complete"
        else:
            shutil.rmtree(root / cid, ignore_errors=True)  # a cell is never partial there
    pending = [cid for cid in cells if manifest["cells"][cid]["status"] != "complete"]
    _write(out, manifest)
    if pending:
        started = time.perf_counter()
        jobs = [{"id": cid, "params": {}, "seed": config.seed, "scenario": scenarios[cid],
                 "attempt": 1, "sweep": "replicate", "sweep_name": "replicate"}
                for cid in pending]
        shared = config.model_dump(mode="json", exclude={"out", "seed"}, exclude_none=True)
        results = run_cohort(jobs, shared, str(staging), str(root), node="local",
                             backend=backend, hooks=hooks, resume=True)
        for cid, result in results.items():
            manifest["cells"][cid] = {"status": result["status"], "seconds": result["seconds"],
                                      "error": result.get("error")}
        manifest["wall_s"].append(round(time.perf_counter() - started, 3))
        _write(out, manifest)
    return SuiteResult(out, manifest)


def _write(out: Path, manifest: dict[str, Any]) -> None:
    atomic_write(out / SUITE_FILE, lambda p: p.write_text(json.dumps(manifest, indent=2)
                                                          + "\n"))
