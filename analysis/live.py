"""Read a run directory that may still be written: only committed shards, read once each.

:func:`analysis.io.load_run` reads a finished run in one go. A viewer of a live run rereads
often, so :class:`LiveRun` keeps what it read and, on :meth:`LiveRun.refresh`, reads only the
shards of steps committed since. A step is committed when the manifest counts it
(``steps_completed`` is written after the step's checkpoint), and every file appears by an
atomic rename, so a shard it reads is never half-written and never one that a resume would
delete.

Example:
    >>> live = LiveRun("runs/prisoners-dilemma/20261123T101500Z-1a2b3c")  # doctest: +SKIP
    >>> live.refresh(); live.events.height                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from analysis.io import reading_run
from sim.errors import RunError
from sim.records.checkpoint import checkpoint_steps, engine_state_at
from sim.records.lineage import Ancestor, lineage
from sim.records.schemas import (
    AGENT_SCHEMA,
    EVENT_SCHEMA,
    NETWORK_SCHEMA,
    PROMPT_SCHEMA,
    STATE_SCHEMA,
    SURVEY_SCHEMA,
)

__all__ = ["LiveRun"]

_TABLES = {"events": EVENT_SCHEMA, "surveys": SURVEY_SCHEMA, "prompts": PROMPT_SCHEMA,
           "state": STATE_SCHEMA}
_STATES_KEPT = 4  # engine states rebuilt from the checkpoint chain kept (each holds memories)


class LiveRun:
    """A run directory read incrementally (thread-safe).

    Attributes:
        path: the run directory.
        manifest: the manifest as of the last :meth:`refresh`.
        committed: the last committed step read.

    Raises:
        RunError: if ``path`` holds no ``manifest.json`` (a sweep directory: pass one cell).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        if not (self.path / "manifest.json").is_file():
            hint = (" It is a sweep: pass one of its cells, e.g. "
                    f"{self.path}/<cell-id>." if (self.path / "sweep.json").is_file() else
                    " Fix: pass a directory like runs/<scenario>/<time>-<id>/.")
            raise RunError(f"{self.path} is not a run directory (no manifest.json).{hint}")
        self._lock = threading.RLock()
        self.manifest: dict[str, Any] = {}
        self.scenario: dict[str, Any] = {}
        self.committed = 0
        self._frames: dict[str, pl.DataFrame] = {n: pl.DataFrame(schema=s)
                                                 for n, s in _TABLES.items()}
        self.agents = pl.DataFrame(schema=AGENT_SCHEMA)
        self.network = pl.DataFrame(schema=NETWORK_SCHEMA)
        self._states: OrderedDict[int, dict[str, Any] | None] = OrderedDict()
        self._ancestors: list[Ancestor] | None = None  # a fork's lineage, read once
        self.refresh()

    def owner(self, step: int) -> Path:
        """The directory holding step ``step``'s records and checkpoint.

        A fork's steps up to its fork step are its parent's (read from the parent's
        directory, as :func:`analysis.io.load_run` does), and so on up the lineage.
        """
        owner = self.path
        for ancestor in self._ancestors or ():  # nearest first, fork steps not increasing
            if step > ancestor.step:
                break
            owner = ancestor.path
        return owner

    @property
    def events(self) -> pl.DataFrame:
        """Event rows of the committed steps."""
        return self._frames["events"]

    @property
    def surveys(self) -> pl.DataFrame:
        """Survey rows of the committed steps."""
        return self._frames["surveys"]

    @property
    def prompts(self) -> pl.DataFrame:
        """Stored prompts of the committed steps."""
        return self._frames["prompts"]

    @property
    def state(self) -> pl.DataFrame:
        """World-state rows of the committed steps (empty without declared state)."""
        return self._frames["state"]

    def refresh(self) -> bool:
        """Read the manifest and any newly committed shards; True if anything new was read.

        Raises:
            RunError: naming a file of the run that cannot be read.
        """
        with self._lock, reading_run(self.path):
            manifest = json.loads((self.path / "manifest.json").read_text())
            self.manifest = manifest
            if self._ancestors is None:
                self._ancestors = lineage(self.path, manifest=manifest) \
                    if "parent" in manifest else []
            if not self.scenario and (self.path / "scenario.yaml").is_file():
                self.scenario = yaml.safe_load((self.path / "scenario.yaml").read_text()) or {}
            fresh = self._read_population()
            target = int(manifest.get("steps_completed", 0))
            if target < self.committed:  # a resume rewound past what we read: start over
                self._frames = {n: pl.DataFrame(schema=s) for n, s in _TABLES.items()}
                self._states.clear()
                self.committed = 0
            if target == self.committed:
                return fresh
            for name in _TABLES:
                files = [self.owner(step) / name / f"step-{step:06d}.parquet"
                         for step in range(self.committed + 1, target + 1)]
                new = [pl.read_parquet(f) for f in files if f.is_file()]
                if new:
                    self._frames[name] = pl.concat([self._frames[name], *new],
                                                   how="vertical_relaxed")
            self.committed = target
            return True

    def _read_population(self) -> bool:
        """Read agents and network once they exist (they are written before step 1)."""
        if self.agents.height or not (self.path / "agents.parquet").is_file():
            return False
        self.agents = pl.read_parquet(self.path / "agents.parquet")
        if (self.path / "network.parquet").is_file():
            self.network = pl.read_parquet(self.path / "network.parquet")
        return True

    def checkpoint(self) -> dict[str, Any] | None:
        """``{"step", "engine"}``: the engine state after the committed step, or None."""
        state = self.engine_state(self.committed)
        return None if state is None else {"step": self.committed, "engine": state}

    def engine_state(self, step: int) -> dict[str, Any] | None:
        """The engine state after committed step ``step`` (0: before the first), or None.

        Rebuilt from the run's checkpoint chain
        (:func:`sim.records.checkpoint.engine_state_at`: one full document and a few deltas)
        and kept for the last few steps asked, so moving back and forth between steps reads
        each once. None if ``step`` is not committed, has no checkpoint or fails its checks.
        """
        with self._lock:
            if step in self._states:
                self._states.move_to_end(step)
                return self._states[step]
            if not 0 <= step <= self.committed:
                return None  # not cached: the step may be committed later
            state = None
            if step in checkpoint_steps(self.owner(step)):
                try:
                    state = engine_state_at(self.owner(step), step)
                except RunError:
                    state = None
            self._states[step] = state
            while len(self._states) > _STATES_KEPT:
                self._states.popitem(last=False)
            return state
