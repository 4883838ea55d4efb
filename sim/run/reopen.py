"""Reopen a recorded run at any past step: its scenario, config and an engine in that state.

The run directory is only read: nothing here writes into it. What to do with the engine is
the caller's (continue it into a new directory, interview its agents, ...).

```python
from sim.run.reopen import reopen

past = reopen("runs/prisoners-dilemma/20260101T000000Z-abc123", step=5)
agent = past.engine.replicas[0].population[0]   # persona, memory and score as of step 5
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.backends.protocol import Backend
from sim.backends.scripted import ScriptedBackend
from sim.engine.loop import Engine
from sim.errors import RunError
from sim.executors.local import Executor, LocalExecutor
from sim.records.checkpoint import checkpoint_steps, engine_state_at
from sim.records.files import read_manifest
from sim.scenario.loader import load_scenario, spec_hash
from sim.scenario.spec import RunConfig, ScenarioSpec

__all__ = ["Reopened", "last_step", "reopen"]


@dataclass(frozen=True)
class Reopened:
    """A run reopened at one step.

    Attributes:
        path: the run directory.
        step: the step whose end the engine is at (0: before the first step).
        manifest: the run's ``manifest.json``.
        spec: the run's resolved scenario (its ``scenario.yaml``).
        config: the run config the run was recorded with.
        engine: an engine in the state at ``step``: stepping it continues the run from there.
    """

    path: Path
    step: int
    manifest: dict[str, Any]
    spec: ScenarioSpec
    config: RunConfig
    engine: Engine


def last_step(run_dir: str | Path) -> int:
    """The last step a run directory has a checkpoint of (0 before its first step).

    Raises:
        RunError: if the directory has no checkpoints.
    """
    path = Path(run_dir).expanduser().resolve()
    read_manifest(path)
    steps = checkpoint_steps(path)
    if not steps:
        raise RunError(f"{path} has no checkpoints (a run of an older TraitLab version, or "
                       "one that died before its first step). Fix: pass another run.")
    return steps[-1]


def reopen(run_dir: str | Path, step: int, *, backend: Backend | None = None,
           executor: Executor | None = None, config: RunConfig | None = None) -> Reopened:
    """The run in ``run_dir`` as it was at the end of ``step``, verified, without writing.

    Cost does not grow with ``step`` (see :func:`sim.records.checkpoint.engine_state_at`).

    Args:
        run_dir: a run directory.
        step: 0 (before the first step) to the run's last checkpointed step.
        backend: where the engine's waves go (default: the scripted backend, enough to read
            the state or to continue a scripted run). Steering is not set on it here.
        executor: an executor to use instead of ``backend``.
        config: a run config replacing the recorded one (default: the manifest's
            ``run_config``); its seed and replicas must be the recorded ones.

    Raises:
        RunError: no run directory, a changed scenario, a step without a checkpoint, a
            checkpoint that fails its checks, or a config with another seed or replicas.
    """
    path = Path(run_dir).expanduser().resolve()
    manifest = read_manifest(path)
    spec = load_scenario(path / "scenario.yaml").spec
    digest = spec_hash(spec)
    if digest != manifest["spec_hash"]:
        raise RunError(f"{path / 'scenario.yaml'} hashes to {digest!r} but the manifest says "
                       f"{manifest['spec_hash']!r}. Fix: restore the run's scenario.yaml.")
    recorded = RunConfig.model_validate(manifest["run_config"])
    config = config or recorded
    if (config.seed, config.replicas) != (recorded.seed, recorded.replicas):
        raise RunError(f"a run reopened at a step keeps its seed and replicas ({recorded.seed}, "
                       f"{recorded.replicas}), not ({config.seed}, {config.replicas}).")
    state = engine_state_at(path, step, digest)
    engine = Engine(spec, config, executor or LocalExecutor(backend or ScriptedBackend()))
    engine.load_state_dict(state)
    return Reopened(path=path, step=step, manifest=manifest, spec=spec, config=config,
                    engine=engine)
