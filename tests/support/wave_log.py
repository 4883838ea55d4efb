"""A scripted backend that logs the requests of every call: the composition of each batch.

Resume tests compare the batches a resumed suite sends with those of an uninterrupted one.
``python -m tests.support.wave_log OUT LOG [CELL:POINT:STEP]`` runs a small replicate suite
into ``OUT``, appending each call to the JSON-lines file ``LOG`` as it happens (so a log
survives a SIGKILL), with the process killed at that point of that cell if one is given.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.backends.scripted import ScriptedBackend
from sim.records.hooks import NO_HOOKS, RunHooks
from sim.requests import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult
from tests.support.faults import KillAt

SUITE = ["ultimatum", "dictator", "prisoners_dilemma", "beauty_contest"]
"""Benchmarks whose cells end at different steps (the prisoner's dilemma ones first)."""


def request_key(request: GenerateRequest | ScoreRequest) -> str:
    """A short hash of everything in a request (messages, options, sampling, policy)."""
    return hashlib.sha256(repr(request).encode()).hexdigest()[:12]


class WaveLog(ScriptedBackend):
    """The scripted backend, logging ``[kind, request keys...]`` for every call."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self.path = path
        self.waves: list[list[str]] = []

    def _log(self, kind: str, requests: Sequence[GenerateRequest | ScoreRequest]) -> None:
        entry = [kind, *(request_key(r) for r in requests)]
        self.waves.append(entry)
        if self.path is not None:
            with self.path.open("a") as stream:
                stream.write(json.dumps(entry) + "\n")

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Log the call, then answer as the scripted backend."""
        self._log("score", requests)
        return super().score(requests)

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Log the call, then answer as the scripted backend."""
        self._log("generate", requests)
        return super().generate(requests)


@dataclass(frozen=True)
class CellFault:
    """Cell hooks: ``make(where)`` for cell ``cell`` (e.g. a kill at ``after-shard:3``)."""

    cell_id: str
    where: str
    kill: bool = True

    def cell(self, cell_id: str, attempt: int) -> RunHooks:
        """The fault for its cell, no hooks for the others."""
        if cell_id != self.cell_id:
            return NO_HOOKS
        return KillAt(self.where) if self.kill else Interrupt(self.where)


@dataclass(frozen=True)
class Interrupt:
    """Ctrl-C (``KeyboardInterrupt``) at ``"POINT:STEP"``."""

    where: str

    def at(self, point: str, step: int) -> None:
        """Interrupt here if this is the point."""
        if f"{point}:{step}" == self.where:
            raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
    """Run the small suite with a logging backend (and a kill, if asked)."""
    from sim.scenario.spec import RunConfig
    from sim.sweep.replicate import run_suite
    from sim.sweep.suite import load_suite

    out, log, *fault = argv
    hooks = None
    if fault:
        cell, where = fault[0].split(":", 1)
        hooks = CellFault(cell, where)
    run_suite(load_suite().select(SUITE), RunConfig(backend="scripted", replicas=2, seed=0),
              out, policies="human", backend=WaveLog(Path(log)), hooks=hooks)
    return 0


if __name__ == "__main__":
    from tests.support import wave_log  # the importable module, so hooks are these classes

    raise SystemExit(wave_log.main(sys.argv[1:]))
