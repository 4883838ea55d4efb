"""Faults the tests inject through the run's hooks (:mod:`sim.records.hooks`).

* :class:`KillAt`: SIGKILL this process at one point of one step (crash-and-resume tests);
* :class:`FailCells`: sweep cells that raise before their first step on their first attempts;
* :class:`SlowCells`: every sweep cell sleeps before each step (time to kill a worker).

The sweep hooks travel to Ray workers by pickle, so they are plain module-level dataclasses
(the workers import this module: the project root is on their path).

``python -m tests.support.faults kill POINT:STEP <traitlab args>`` and
``python -m tests.support.faults slow SECONDS <traitlab args>`` run the ``traitlab`` command
line with those hooks installed, for tests that need a real process to kill.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sim.records.hooks import NO_HOOKS, Point, RunHooks


@dataclass(frozen=True)
class KillAt:
    """SIGKILL the process at ``"POINT:STEP"`` (e.g. ``"after-shard:3"``)."""

    where: str

    def at(self, point: Point, step: int) -> None:
        """Die here if this is the point."""
        if f"{point}:{step}" == self.where:
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


@dataclass(frozen=True)
class _Raise:
    cell_id: str
    attempt: int

    def at(self, point: Point, step: int) -> None:
        if point == "before-step":
            raise RuntimeError(f"test hook: cell {self.cell_id} fails on attempt "
                               f"{self.attempt}")


@dataclass(frozen=True)
class FailCells:
    """Cell id -> N: that cell raises before its first step on attempts 1..N."""

    attempts: dict[str, int] = field(default_factory=dict)

    def cell(self, cell_id: str, attempt: int) -> RunHooks:
        """A raising hook while ``attempt`` is within the cell's failing attempts."""
        if attempt <= self.attempts.get(cell_id, 0):
            return _Raise(cell_id, attempt)
        return NO_HOOKS


@dataclass(frozen=True)
class _Sleep:
    seconds: float

    def at(self, point: Point, step: int) -> None:
        if point == "before-step":
            time.sleep(self.seconds)


@dataclass(frozen=True)
class SlowCells:
    """Every cell sleeps ``seconds`` before each of its steps."""

    seconds: float

    def cell(self, cell_id: str, attempt: int) -> RunHooks:
        """The sleeping hook, for every cell and attempt."""
        return _Sleep(self.seconds)


def killed_runs(root: Path, scenario: Path, points: Iterable[str], args: Sequence[str],
                timeout: float = 120) -> dict[str, Path]:
    """Run ``traitlab run SCENARIO ARGS`` once per kill point, all at once, each SIGKILLed.

    Returns each point's run directory (under ``root/<point>/<scenario name>/``); a process
    that was not killed at its point fails the calling test with its stderr.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    project = Path(__file__).resolve().parents[2]
    procs = {}
    for point in points:
        out = root / point.replace(":", "-")
        procs[point] = (out, subprocess.Popen(
            [sys.executable, "-m", "tests.support.faults", "kill", point, "run", str(scenario),
             "--quiet", "--out", str(out), *args],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    dirs = {}
    for point, (out, proc) in procs.items():
        _stdout, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == -signal.SIGKILL, (point, stderr.decode()[-2000:])
        ((dirs[point],),) = [list(d.iterdir()) for d in out.iterdir()]
    return dirs


def main(argv: Sequence[str]) -> int:
    """``kill POINT:STEP ...`` or ``slow SECONDS ...``: the CLI with that fault installed."""
    import sim.run.runner
    import sim.sweep.runner
    from sim.cli.main import main as cli

    fault, value, *rest = argv
    if fault == "kill":  # the CLI looks these up when it runs, so the wrapped ones are used
        hooks = KillAt(value)
        sim.run.runner.run_scenario = functools.partial(sim.run.runner.run_scenario,
                                                        hooks=hooks)
        sim.run.runner.resume_run = functools.partial(sim.run.runner.resume_run, hooks=hooks)
    elif fault == "slow":
        sim.sweep.runner.run_sweep = functools.partial(sim.sweep.runner.run_sweep,
                                                       hooks=SlowCells(float(value)))
    else:
        raise SystemExit(f"unknown fault {fault!r}: use kill or slow")
    return cli(rest)


if __name__ == "__main__":
    from tests.support import faults  # the importable module, so hooks pickle by reference

    raise SystemExit(faults.main(sys.argv[1:]))
