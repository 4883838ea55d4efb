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
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from sim.errors import RunError
from sim.records.schemas import (
    AGENT_SCHEMA,
    EVENT_SCHEMA,
    NETWORK_SCHEMA,
    PROMPT_SCHEMA,
    SURVEY_SCHEMA,
)

__all__ = ["LiveRun"]

_TABLES = {"events": EVENT_SCHEMA, "surveys": SURVEY_SCHEMA, "prompts": PROMPT_SCHEMA}


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
        self._checkpoint: tuple[int, dict[str, Any] | None] | None = None
        self.refresh()

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

    def refresh(self) -> bool:
        """Read the manifest and any newly committed shards; True if anything new was read."""
        with self._lock:
            manifest = json.loads((self.path / "manifest.json").read_text())
            self.manifest = manifest
            if not self.scenario and (self.path / "scenario.yaml").is_file():
                self.scenario = yaml.safe_load((self.path / "scenario.yaml").read_text()) or {}
            fresh = self._read_population()
            target = int(manifest.get("steps_completed", 0))
            if target < self.committed:  # a resume rewound past what we read: start over
                self._frames = {n: pl.DataFrame(schema=s) for n, s in _TABLES.items()}
                self.committed = 0
            if target == self.committed:
                return fresh
            for name in _TABLES:
                files = [self.path / name / f"step-{step:06d}.parquet"
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
        """The parsed ``checkpoint.json`` (the agents' state after its step), or None.

        Read once per committed step: it holds every agent's memory and can be large.
        """
        with self._lock:
            if self._checkpoint is None or self._checkpoint[0] != self.committed:
                file = self.path / "checkpoint.json"
                self._checkpoint = (self.committed, json.loads(file.read_text())
                                    if file.is_file() else None)
            return self._checkpoint[1]
