"""What checkpointing costs per step early and late in a long run, and what reopening costs.

Usage::

    .venv/bin/python bench/checkpoint_cost.py [--steps 2010] [--out /tmp/ckpt-bench]

Runs ``bench/pd_pair.yaml`` (two scripted agents, a chat then a move each round) with a
million rounds, stopped after ``--steps`` steps, as a normal recorded run. Each step's
checkpoint (the engine's state dict plus the chain document written from it) is timed
separately from the step itself. Prints the median checkpoint time over steps 5-25, 500-520
(agents' memory is full, 100 moments, from about step 100 on) and the last 21 steps, then the
median time to reopen the run (:func:`sim.run.reopen.reopen`: verify, rebuild the engine
state, build the engine; 15 times each) at step 10, 1,000 and 1,049 (the worst case: 49
deltas after the last full document), and the ratios. The last line is the JSON of the
figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.engine.loop import Engine  # noqa: E402
from sim.records.recorder import Recorder  # noqa: E402
from sim.run.reopen import reopen  # noqa: E402
from sim.run.runner import run_scenario  # noqa: E402
from sim.scenario.loader import load_scenario  # noqa: E402
from sim.scenario.spec import RunConfig  # noqa: E402


def _timed_run(steps: int, out: Path) -> tuple[Path, dict[int, float]]:
    """A recorded run of ``steps`` steps; the seconds each step's checkpoint took (the
    engine's state dict and the document written from it)."""
    spec = load_scenario(ROOT / "bench" / "pd_pair.yaml").spec
    spec = spec.model_copy(update={"rounds": 1_000_000})
    seconds: dict[int, float] = {}
    state_dict, write_checkpoint = Engine.state_dict, Recorder.write_checkpoint

    def timed_state(self: Engine) -> dict[str, Any]:
        started = time.perf_counter()
        state = state_dict(self)
        seconds[self.steps_done] = time.perf_counter() - started
        return state

    def timed_write(self: Recorder, state: dict[str, Any]) -> None:
        started = time.perf_counter()
        write_checkpoint(self, state)
        seconds[state["steps_done"]] += time.perf_counter() - started

    Engine.state_dict = timed_state  # type: ignore[method-assign]
    Recorder.write_checkpoint = timed_write  # type: ignore[method-assign]
    try:
        outcome = run_scenario(spec, RunConfig(backend="scripted", steps=steps, out=out))
    finally:
        Engine.state_dict, Recorder.write_checkpoint = state_dict, write_checkpoint
    return outcome.path, seconds


def _reopen_seconds(run_dir: Path, step: int, repeats: int = 15) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        reopen(run_dir, step)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2010)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="ckpt-bench-"))
    run_dir, seconds = _timed_run(args.steps, out)
    early = statistics.median(seconds[s] for s in range(5, 26))
    middle = statistics.median(seconds[s] for s in range(500, 521))
    late = statistics.median(seconds[s] for s in range(args.steps - 20, args.steps + 1))
    reopen_at = {k: _reopen_seconds(run_dir, k) for k in (10, 1000, 1049)}
    figures = {
        "steps": args.steps,
        "checkpoint_ms_step_5_25": round(early * 1e3, 3),
        f"checkpoint_ms_step_{args.steps - 20}_{args.steps}": round(late * 1e3, 3),
        "checkpoint_ms_step_500_520": round(middle * 1e3, 3),
        "checkpoint_late_vs_early": round(late / early, 2),
        "checkpoint_late_vs_500": round(late / middle, 2),
        **{f"reopen_ms_at_{k}": round(v * 1e3, 2) for k, v in reopen_at.items()},
        "reopen_1000_vs_10": round(reopen_at[1000] / reopen_at[10], 2),
        "reopen_1049_vs_10": round(reopen_at[1049] / reopen_at[10], 2),
    }
    for key, value in figures.items():
        print(f"{key:>32}: {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
