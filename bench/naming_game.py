"""A large naming game on the embedded model: agent-decisions per second and peak memory.

Usage::

    .venv/bin/python bench/naming_game.py [--agents 1024] [--rounds 10] [--out runs/bench]

Runs ``scenarios/naming_game.yaml`` with the population and rounds replaced, on SmolLM2, as a
normal recorded run (manifest, events), and prints per-round wall times, agent-decisions per
second over the whole run, peak resident memory and the consensus per round. The last line
printed is the JSON of the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from analysis.io import load_run  # noqa: E402
from analysis.naming import consensus, naming_success  # noqa: E402
from sim.engine.loop import StepReport  # noqa: E402
from sim.run.runner import run_scenario  # noqa: E402
from sim.scenario.loader import load_scenario  # noqa: E402
from sim.scenario.spec import RunConfig, ScenarioSpec  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    """Run the naming game and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    raw = load_scenario(ROOT / "scenarios" / "naming_game.yaml").spec.model_dump(by_alias=True)
    raw["population"]["size"] = args.agents
    raw["rounds"] = args.rounds
    spec = ScenarioSpec.model_validate(raw)
    rounds: list[float] = []

    def on_step(report: StepReport) -> None:
        rounds.append(report.seconds)
        console.print(f"round {len(rounds)}: {len(report.rows)} decisions in "
                      f"{report.seconds:.1f} s")

    started = time.perf_counter()
    outcome = run_scenario(spec, RunConfig(seed=args.seed, out=args.out), callbacks=[on_step])
    wall = time.perf_counter() - started
    run = load_run(outcome.path)
    decisions = run.events.filter(kind="choice").height
    step_seconds = sum(rounds)
    share = consensus(run.events)["consensus"].to_list()
    success = naming_success(run.events)["success"].to_list()
    figures = {
        "agents": args.agents, "rounds": len(rounds), "decisions": decisions,
        "failed": run.events.filter(status="failed").height,
        "decisions_per_s": round(decisions / step_seconds, 2),
        "wall_s": round(wall, 1), "step_seconds": round(step_seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "consensus_by_round": [round(x, 3) for x in share],
        "success_by_round": [round(x, 3) for x in success],
        "run_dir": str(outcome.path),
    }
    console.print(figures)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
