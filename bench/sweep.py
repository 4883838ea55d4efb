"""Sweep benchmark: 8 cells of a two-agent scenario, batched on Ray vs one after another.

    .venv/bin/python bench/sweep.py [--sweep bench/pd_sweep.yaml] [--rounds N]

Both sides run the same cells (bench/pd_sweep.yaml: bench/pd_pair.yaml x 4 agreeableness
levels x 2 seeds) on the embedded SmolLM2 model, in one run:

* sequential: each cell with ``run_scenario`` in this process, one after another, on one
  backend loaded beforehand (model loading is not counted: the most favourable baseline);
* sweep: ``run_sweep`` on local Ray, everything counted (Ray start, the cohort's model load,
  writing every cell); cells of the node run in lock-step, their waves merged per step.

Prints a table and a last line of JSON with ``sweep_s``, ``sequential_s`` and ``speedup``
(the acceptance target is >= 3).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "TOKENIZERS_PARALLELISM": "false", "RAY_AUTH_MODE": "disabled",
                   "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                   "RAY_USAGE_STATS_ENABLED": "0"}.items():
    os.environ.setdefault(key, value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", type=Path, default=ROOT / "bench" / "pd_sweep.yaml")
    parser.add_argument("--rounds", type=int, default=None, help="override the rounds")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads on both sides (default: every core; 1 is faster "
                             "on a machine shared with other jobs)")
    args = parser.parse_args()

    from sim.backends.factory import open_backend
    from sim.errors import ScenarioError
    from sim.run.runner import run_scenario
    from sim.scenario.loader import LoadedScenario
    from sim.sweep.runner import run_sweep
    from sim.sweep.spec import Cell, load_sweep_spec

    try:
        sweep = load_sweep_spec(args.sweep)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.rounds is not None:
        cells = [Cell(id=c.id, index=c.index, params={**c.params, "rounds": args.rounds},
                      seed=c.seed) for c in sweep.cells]
        sweep = dataclasses.replace(sweep, cells=cells)
    if args.threads is not None:
        spec = sweep.spec.model_copy(update={"threads": args.threads})
        sweep = dataclasses.replace(sweep, spec=spec)
    with tempfile.TemporaryDirectory(prefix="traitlab-bench-sweep-") as tmp:
        out = Path(tmp)
        backend = open_backend(sweep.run)  # loaded once, not timed
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        started = time.perf_counter()
        for cell in sweep.cells:
            spec = sweep.scenario_for(cell)
            config = sweep.run.model_copy(update={"seed": cell.seed, "out": out / "seq"})
            run_scenario(LoadedScenario(spec=spec, path="<bench>", raw={}), config,
                         backend=backend)
        sequential = time.perf_counter() - started
        print(f"sequential: {len(sweep.cells)} cells in {sequential:.1f} s", flush=True)
        del backend

        started = time.perf_counter()
        result = run_sweep(sweep, out=out / "sweep")
        batched = time.perf_counter() - started
        if result.status != "complete":
            print(f"error: the sweep ended {result.status}", file=sys.stderr)
            return 1
    cells = len(sweep.cells)
    ratio = sequential / batched
    print(f"{'mode':<12}{'cells':>6}{'seconds':>10}{'cells/min':>11}")
    print(f"{'sequential':<12}{cells:>6}{sequential:>10.1f}{60 * cells / sequential:>11.1f}")
    print(f"{'sweep (ray)':<12}{cells:>6}{batched:>10.1f}{60 * cells / batched:>11.1f}")
    print(f"speedup: {ratio:.2f}x (target >= 3)")
    print(json.dumps({"cells": cells, "sequential_s": round(sequential, 2),
                      "sweep_s": round(batched, 2), "speedup": round(ratio, 2),
                      "cpus": os.cpu_count(), "threads": args.threads or os.cpu_count()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
