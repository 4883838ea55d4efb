"""TraitLab's simulation engine: scenario spec -> batched run -> parquet records.

The public API is the handful of names below, importable from the package root; every other
module is internal and may change. They resolve lazily, so ``import sim`` loads no model
library::

    from sim import RunConfig, load_scenario, run_scenario, resume_run
    outcome = run_scenario("scenarios/prisoners_dilemma.yaml", RunConfig(backend="scripted"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.lazy import lazy_exports
from sim.version import __version__

# name -> module that defines it (imported on first access).
_PUBLIC: dict[str, str] = {
    "load_scenario": "sim.scenario.loader",
    "LoadedScenario": "sim.scenario.loader",
    "ScenarioSpec": "sim.scenario.spec",
    "RunConfig": "sim.scenario.spec",
    "run_scenario": "sim.run.runner",
    "resume_run": "sim.run.runner",
    "RunOutcome": "sim.run.runner",
    "TraitLabError": "sim.errors",
    "ScenarioError": "sim.errors",
    "RunError": "sim.errors",
}

__all__ = [
    "LoadedScenario",
    "RunConfig",
    "RunError",
    "RunOutcome",
    "ScenarioError",
    "ScenarioSpec",
    "TraitLabError",
    "__version__",
    "load_scenario",
    "resume_run",
    "run_scenario",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from sim.errors import RunError, ScenarioError, TraitLabError
    from sim.run.runner import RunOutcome, resume_run, run_scenario
    from sim.scenario.loader import LoadedScenario, load_scenario
    from sim.scenario.spec import RunConfig, ScenarioSpec


__getattr__, __dir__ = lazy_exports("sim", _PUBLIC, globals())
