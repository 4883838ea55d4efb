"""Run a scenario: open the backend, drive the engine, record everything.

This is the library entry point the CLI calls; notebooks can call it too::

    from sim.run.runner import run_scenario
    outcome = run_scenario("scenarios/prisoners_dilemma.yaml", RunConfig(backend="scripted"))
    resume_run(outcome.path)   # after a crash or Ctrl-C: continue in the same directory
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.conditioning import needs_steering
from sim.backends.factory import open_backend
from sim.backends.openai import OpenAIBackend
from sim.backends.protocol import Backend
from sim.closing import Closing
from sim.engine.loop import Engine, StepReport
from sim.errors import RunError, RunInterrupted, ScenarioError, TraitLabError
from sim.executors.local import Executor, LocalExecutor
from sim.records.checkpoint import read_checkpoint, verify_checkpoint
from sim.records.hooks import NO_HOOKS, RunHooks
from sim.records.lineage import lineage
from sim.records.recorder import Recorder, RunLock, read_manifest
from sim.run.budget import CostMeter
from sim.run.conditioning import check_server_steering, prepare_run_conditioning
from sim.run.control import RunControl
from sim.scenario.loader import LoadedScenario, load_scenario, locate_error, spec_hash
from sim.scenario.spec import RunConfig, ScenarioSpec

__all__ = ["RunOutcome", "closing_backend", "drive_to_end", "record_steps", "resumable",
           "resume_run", "run_scenario"]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """Where a run went and how it ended."""

    path: Path
    status: str
    steps: int


def run_scenario(scenario: str | Path | LoadedScenario | ScenarioSpec, config: RunConfig, *,
                 backend: Backend | None = None,
                 callbacks: Sequence[Callable[[StepReport], None]] = (),
                 command: list[str] | None = None,
                 executor: Any = None,
                 hooks: RunHooks = NO_HOOKS,
                 run_dir: Path | None = None) -> RunOutcome:
    """Run a scenario to the end (or ``config.steps``) and write its run directory.

    Args:
        scenario: a scenario file, a loaded scenario or a spec.
        config: how to run it.
        backend: a backend to reuse (default: :func:`open_backend`).
        callbacks: progress callbacks, called after each step.
        command: the command line, for the manifest.
        executor: an executor with ``run``, ``stats`` and ``info`` to send waves to instead
            of a local one (e.g. :class:`sim.executors.ray.RayExecutor`); ``backend`` is then
            not opened.
        hooks: called at the named points of the run (:mod:`sim.records.hooks`; tests
            use them to kill or fail a run at an exact place).
        run_dir: an empty directory from :meth:`Recorder.new_dir` to write the run into, for
            a caller that must know the path before the run starts (the live view); default:
            a fresh one.

    Raises:
        ScenarioError: if the scenario is invalid.
        RunInterrupted: (a ``KeyboardInterrupt``) after marking the run ``interrupted``;
            records so far are kept and :func:`resume_run` continues it.
    """
    if isinstance(scenario, ScenarioSpec):
        scenario = LoadedScenario(spec=scenario, path="<spec>",
                                  raw=scenario.model_dump(mode="json", by_alias=True))
    loaded = scenario if isinstance(scenario, LoadedScenario) else load_scenario(scenario)
    path, owned = run_dir, None
    if executor is None:
        if backend is None and config.backend == "openai":
            path, backend = _open_in_new_dir(loaded.spec, config, path)
            owned = backend
        backend = backend or open_backend(config)
        executor = LocalExecutor(backend)
        info = backend.info
    else:
        info = executor.info
    with closing_backend(owned):
        try:
            return _start(loaded.spec, config, backend, executor, info, path, callbacks,
                          command, hooks, loaded.overrides)
        except ScenarioError as exc:
            raise locate_error(exc, loaded) from None


def _start(spec: ScenarioSpec, config: RunConfig, backend: Backend | None, executor: Any,
           info: Any, path: Path | None, callbacks: Sequence[Callable[[StepReport], None]],
           command: list[str] | None, hooks: RunHooks,
           overrides: dict[str, Any] | None = None) -> RunOutcome:
    """Write the run's header and population, then drive it (the rest of run_scenario)."""
    recorder = Recorder.create(config, spec, info, command=command, hooks=hooks, path=path,
                               overrides=overrides)
    _describe_server(recorder, backend)
    if backend is not None:
        prepare_run_conditioning(spec, backend, recorder.path)
    elif needs_steering(spec):
        raise RunError("conditioning 'steering'/'both' runs on the local executor or in a "
                       "sweep, not with --executor ray. Fix: drop --executor ray, or run "
                       "the scenario as a one-cell sweep.")
    try:
        engine = _engine(spec, config, executor, recorder, callbacks, hooks)
    except TraitLabError:  # e.g. a built network too dense for its groups: nothing ran
        _finish(recorder, "failed")
        raise
    CostMeter.attach(backend, recorder, engine, config.max_cost)
    recorder.write_population(engine.replicas)
    recorder.write_checkpoint(engine.state_dict())
    return drive_to_end(engine, recorder)


def resume_run(run_dir: str | Path, *, backend: Backend | None = None,
               callbacks: Sequence[Callable[[StepReport], None]] = (),
               command: list[str] | None = None,
               hooks: RunHooks = NO_HOOKS,
               max_cost: float | None = None) -> RunOutcome:
    """Continue a crashed or interrupted run in its own directory.

    Rebuilds the engine from the run's resolved ``scenario.yaml`` and the manifest's
    ``run_config``, loads ``checkpoint.json``, deletes event shards the checkpoint does not
    cover, and runs on. The event records end up identical to an uninterrupted run.

    Args:
        run_dir: the run directory (``runs/<scenario>/<time>-<id>``).
        backend: a backend to reuse (default: the one the run config names).
        callbacks: progress callbacks, called after each further step.
        command: the command line, for the manifest's ``resumes`` entry.
        hooks: as :func:`run_scenario`.
        max_cost: a new budget (US dollars) replacing the run config's ``max_cost``.

    Raises:
        RunError: if the directory is no run, the run is complete, or the checkpoint or
            scenario does not match the manifest's spec hash.
        RunInterrupted: as :func:`run_scenario`.
    """
    path = Path(run_dir).expanduser().resolve()
    resumable(path)
    lock = RunLock(path)  # before anything is read: a second writer is refused here
    try:
        manifest = resumable(path)
        spec = load_scenario(path / "scenario.yaml").spec
        digest = spec_hash(spec)
        if digest != manifest["spec_hash"]:
            raise RunError(f"{path / 'scenario.yaml'} hashes to {digest!r} but the manifest "
                           f"says {manifest['spec_hash']!r}; refusing to resume a changed "
                           "scenario.")
        checkpoint = read_checkpoint(path, digest)
        if checkpoint is not None:
            verify_checkpoint(path, checkpoint, manifest)
        if "parent" in manifest:  # a fork: the history it shares must be intact too
            lineage(path)
            if checkpoint is None:
                raise RunError(f"{path} is a fork that stopped before its first checkpoint; "
                               "there is nothing to resume. Fix: make the fork again.")
        config = RunConfig.model_validate(manifest["run_config"])
        if max_cost is not None:
            config = config.model_copy(update={"max_cost": max_cost})
        owned = None if backend is not None else open_backend(config, path)
    except BaseException:
        lock.release()
        raise
    with closing_backend(owned):
        return _continue(spec, path, checkpoint, config, backend or owned, callbacks, command,
                         hooks, lock)


def _continue(spec: ScenarioSpec, path: Path, checkpoint: dict[str, Any] | None,
              config: RunConfig, backend: Any, callbacks: Sequence[Callable[[StepReport], None]],
              command: list[str] | None, hooks: RunHooks, lock: RunLock) -> RunOutcome:
    """Reopen the run directory and drive the run on (the rest of resume_run)."""
    executor = LocalExecutor(backend)
    recorder = Recorder.reopen(path, checkpoint, command=command, hooks=hooks, lock=lock)
    recorder.annotate(run_config=config.model_dump(mode="json"))
    prepare_run_conditioning(spec, backend, path)
    try:
        engine = _engine(spec, config, executor, recorder, callbacks, hooks)
    except ScenarioError:  # the built world is refused (a network's degree): nothing ran
        recorder.lock.release()
        shutil.rmtree(recorder.path, ignore_errors=True)
        if recorder.path.parent.is_dir() and not any(recorder.path.parent.iterdir()):
            recorder.path.parent.rmdir()  # the scenario's folder, made for this run
        raise
    CostMeter.attach(backend, recorder, engine, config.max_cost)
    if checkpoint is None:  # died before the first checkpoint: start over in place
        recorder.write_population(engine.replicas)
        recorder.write_checkpoint(engine.state_dict())
    else:
        engine.load_state_dict(checkpoint["engine"])
    return drive_to_end(engine, recorder)


def resumable(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of a run that can be resumed.

    Raises:
        RunError: if ``run_dir`` is no run directory or its run is already complete.
    """
    path = Path(run_dir).expanduser().resolve()
    manifest = read_manifest(path)
    if manifest.get("status") == "complete":
        raise RunError(f"run {path} is already complete; nothing to resume.")
    return manifest


def record_steps(engine: Engine, recorder: Recorder) -> Callable[[StepReport], None]:
    """The callback that records each step of ``engine`` (shard, checkpoint, manifest)."""

    def record(report: StepReport) -> None:
        stats = engine.stats
        recorder.record_step(
            report.step, report.rows, seconds=report.seconds, model_seconds=stats.model_seconds,
            failures=stats.failures, retries=stats.retries, state=engine.state_dict(),
            tokens={"prompt": stats.prompt_tokens, "new": stats.new_tokens,
                    "cached": stats.cached_tokens},
            surveys=report.surveys, prompts=report.prompts, world=report.world)

    return record


def _engine(spec: ScenarioSpec, config: RunConfig, executor: Executor, recorder: Recorder,
            callbacks: Sequence[Callable[[StepReport], None]], hooks: RunHooks) -> Engine:
    """An engine whose first callback records each step."""
    engine = Engine(spec, config, executor, callbacks=callbacks, hooks=hooks)
    engine.callbacks.insert(0, record_steps(engine, recorder))
    if isinstance(hooks, RunControl):  # it queues the page's interventions into the engine
        hooks.bind_engine(engine)
    return engine


@contextmanager
def closing_backend(backend: Any) -> Iterator[None]:
    """Close a backend the caller opened (a server client's connections and store file)."""
    try:
        yield
    finally:
        if isinstance(backend, Closing):
            backend.close()


def _open_in_new_dir(spec: ScenarioSpec, config: RunConfig,
                     path: Path | None = None) -> tuple[Path, Backend]:
    """A fresh run directory and a server backend that stores its responses there.

    The server is probed before anything else is written, and steering it cannot do is refused;
    on failure the empty directory is removed.
    """
    path = path if path is not None else Recorder.new_dir(config, spec)
    try:
        backend = open_backend(config, path)
        check_server_steering(spec, backend)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path, backend


def _describe_server(recorder: Recorder, backend: Backend | None) -> None:
    """Record what a server backend is and offers (URL without credentials, capabilities)."""
    if isinstance(backend, OpenAIBackend):
        recorder.annotate(server=backend.describe())
        recorder.flush()


def drive_to_end(engine: Engine, recorder: Recorder) -> RunOutcome:
    """Run the engine to the end and mark the run complete, interrupted or failed."""
    status = "failed"
    try:
        engine.run()
        status = "complete"
    except RunInterrupted:  # max_cost reached: it carries its own message
        status = "interrupted"
        raise
    except KeyboardInterrupt:
        status = "interrupted"
        raise RunInterrupted(recorder.path) from None
    except OSError as exc:  # a full disk, a lost mount: the last checkpoint is intact
        status = "interrupted"
        where = f" ({exc.filename})" if exc.filename else ""
        raise RunError(f"writing the run failed after step {recorder.committed}: "
                       f"{exc.strerror or exc}{where}; the run is interrupted and can be "
                       f"resumed. Fix: free space or fix the output folder, then traitlab "
                       f"run --resume {recorder.path}") from None
    finally:
        _finish(recorder, status)
    return RunOutcome(path=recorder.path, status=status, steps=engine.steps_done)


def _finish(recorder: Recorder, status: str) -> None:
    """Mark the run's status.

    If even that write fails, the manifest stays ``running``, which resume accepts like
    ``interrupted``.
    """
    try:
        recorder.finish(status)
    except OSError as exc:
        if status == "complete":
            raise RunError(f"the run finished but {recorder.path / 'manifest.json'} could not "
                           f"be written: {exc.strerror or exc}. Fix: free space, then traitlab "
                           f"run --resume {recorder.path} marks it complete.") from None
