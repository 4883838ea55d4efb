"""Run a scenario: open the backend, drive the engine, record everything.

This is the library entry point the CLI calls; notebooks can call it too::

    from sim.run import run_scenario
    outcome = run_scenario("scenarios/prisoners_dilemma.yaml", RunConfig(backend="scripted"))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.backends.base import Backend
from sim.engine import Engine, StepReport
from sim.executors.local import LocalExecutor
from sim.loader import LoadedScenario, load_scenario
from sim.recorder import Recorder
from sim.spec import RunConfig, ScenarioSpec

__all__ = ["RunOutcome", "open_backend", "run_scenario"]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """Where a run went and how it ended."""

    path: Path
    status: str
    steps: int


def open_backend(config: RunConfig) -> Backend:
    """The backend a run config asks for (the embedded model by default)."""
    if config.backend == "scripted":
        from sim.backends.scripted import ScriptedBackend

        return ScriptedBackend()
    from sim.backends.hf import HFBackend

    return HFBackend(config.model, dtype=config.dtype, device=config.device,
                     max_batch_tokens=config.batch_tokens)


def run_scenario(scenario: str | Path | LoadedScenario | ScenarioSpec, config: RunConfig, *,
                 backend: Backend | None = None,
                 callbacks: Sequence[Callable[[StepReport], None]] = (),
                 command: list[str] | None = None) -> RunOutcome:
    """Run a scenario to the end (or ``config.steps``) and write its run directory.

    Args:
        scenario: a scenario file, a loaded scenario or a spec.
        config: how to run it.
        backend: a backend to reuse (default: :func:`open_backend`).
        callbacks: progress callbacks, called after each step.
        command: the command line, for the manifest.

    Raises:
        ScenarioError: if the scenario is invalid.
        KeyboardInterrupt: after marking the run ``interrupted`` (records so far are kept).
    """
    if isinstance(scenario, ScenarioSpec):
        scenario = LoadedScenario(spec=scenario, path="<spec>",
                                  raw=scenario.model_dump(mode="json", by_alias=True))
    loaded = scenario if isinstance(scenario, LoadedScenario) else load_scenario(scenario)
    backend = backend or open_backend(config)
    executor = LocalExecutor(backend)
    recorder = Recorder.create(config, loaded.spec, backend.info, command=command)

    def record(report: StepReport) -> None:
        stats = executor.stats
        recorder.record_step(
            report.step, report.rows, seconds=report.seconds, model_seconds=stats.model_seconds,
            failures=stats.failures,
            tokens={"prompt": stats.prompt_tokens, "new": stats.new_tokens,
                    "cached": stats.cached_tokens})

    engine = Engine(loaded.spec, config, executor, callbacks=[record, *callbacks])
    recorder.write_population(engine.simulations)
    status = "failed"
    try:
        engine.run()
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        recorder.finish(status)
    return RunOutcome(path=recorder.path, status=status, steps=engine.steps_done)
