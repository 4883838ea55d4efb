"""Fork a recorded run at a past step: same history, one change, continued to the end.

A fork is a new run directory that shares its parent's records up to the step by reference
(its manifest's ``parent``; no shard of step <= STEP is copied), starts from the parent's
checkpointed state at that step (:func:`sim.records.checkpoint.engine_state_at`), applies the
change (dotted-path overrides that a running world can take, and interventions) and runs on
with the parent's backend, model and settings::

    from sim.run.fork import fork_run
    outcome = fork_run("runs/public-goods/20260101T000000Z-abc123", 5,
                       overrides=["params.punishment=1"])

With ``seed="keep"`` the continuation draws from the parent's seed streams, so a fork with
no change reproduces the parent's records after the step exactly; ``seed="new"`` derives
other draws (groups, request seeds, choices) for the same agents. :func:`fork_set` makes
``replicas`` continuations of both arms, changed and unchanged, paired by their draws (the
layout is in ``docs/forks.md``). A fork is a run like any other: resumable, and forkable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from sim.backends.factory import open_backend
from sim.backends.protocol import Backend
from sim.engine.loop import Engine, StepReport
from sim.errors import BudgetReached, RunError, RunInterrupted
from sim.executors.local import LocalExecutor
from sim.records.checkpoint import checkpoint_steps, engine_state_at, read_checkpoint
from sim.records.files import read_manifest, write_json
from sim.records.lineage import lineage, parent_link, shared_files
from sim.records.recorder import Recorder
from sim.run.budget import CostMeter
from sim.run.conditioning import prepare_run_conditioning
from sim.run.runner import RunOutcome, closing_backend, drive_to_end, record_steps, resume_run
from sim.scenario.intervention_spec import InterventionSpec
from sim.scenario.interventions import load_interventions, merge_interventions
from sim.scenario.loader import LoadedScenario, load_scenario, spec_hash
from sim.scenario.overrides import apply_overrides, parse_assignment
from sim.scenario.spec import RunConfig

__all__ = ["FIXED_PATHS", "FORKSET_FILE", "MAX_FORK_REPLICAS", "ForkSet", "PreparedFork",
           "derive_seed", "fork_run", "fork_set", "prepare_fork", "read_forkset",
           "resume_forkset"]

SeedMode = Literal["keep", "new"]
FIXED_PATHS = ("population", "network", "roles", "state", "agent_state")
"""Top-level fields a running world cannot take a change of: its agents, personas,
network, roles and declared variables already exist at the fork step."""
_FORK_STREAM = 0x666F726B  # spawn key of continuation seeds, apart from the run's streams
FORKSET_FILE = "forkset.json"


def derive_seed(draw_seed: int, step: int, continuation: int) -> int:
    """The draw seed of continuation ``continuation`` of a fork at ``step`` (63 bits)."""
    seq = np.random.SeedSequence([draw_seed, step, continuation], spawn_key=(_FORK_STREAM,))
    return int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1))


@dataclass
class PreparedFork:
    """A fork whose directory, header and first checkpoint are written, ready to run."""

    path: Path
    engine: Engine
    recorder: Recorder
    backend: Backend | None


def _parent(parent_dir: str | Path, step: int) -> tuple[Path, dict[str, Any], LoadedScenario]:
    """The parent's directory, manifest and scenario, with ``step`` checked against it."""
    path = Path(parent_dir).expanduser().resolve()
    manifest = read_manifest(path)
    lineage(path)  # a fork of a fork: its own history must be intact
    loaded = load_scenario(path / "scenario.yaml")
    if spec_hash(loaded.spec) != manifest["spec_hash"]:
        raise RunError(f"{path / 'scenario.yaml'} does not hash to the manifest's spec_hash "
                       f"{manifest['spec_hash']!r}. Fix: restore the run's scenario.yaml.")
    steps = checkpoint_steps(path)
    if not steps:
        raise RunError(f"{path} has no checkpoints. Fix: pass a run directory written by "
                       "traitlab run.")
    first, last = steps[0], steps[-1]
    if not first <= step <= last:
        where = (f" (it is a fork made at step {first}: fork its parent for earlier steps)"
                 if "parent" in manifest else "")
        raise RunError(f"--at {step}: {path.name} has checkpoints of steps {first} to "
                       f"{last}{where}. Fix: pass --at from {first} to {last}.")
    if step == last and manifest.get("status") == "complete":
        raise RunError(f"--at {step}: the run ended at step {step}, so a fork there has "
                       f"nothing to run. Fix: pass --at below {step}.")
    return path, manifest, loaded


def _check_overrides(overrides: Mapping[str, Any], step: int) -> None:
    for dotted, value in overrides.items():
        head = dotted.split(".", 1)[0]
        if head in FIXED_PATHS:
            raise RunError(f"--set {dotted}={value}: a fork continues a world whose "
                           f"{head} already exists at step {step} (agents, personas, memories, "
                           f"network, roles and variables), so it cannot change {head}.*. "
                           "Fix: change params, stages, flow, rounds or stop (or add "
                           "--intervene FILE), or start a new run with traitlab run --set.")


def _config(parent: Path, manifest: dict[str, Any],
            settings: Mapping[str, Any] | None) -> RunConfig:
    """The parent's run config with ``settings`` on top.

    ``out`` defaults to the parent's output root (``<root>/<scenario>/<run>``, or above a
    fork set).
    """
    root = parent.parent.parent
    if (parent.parent / FORKSET_FILE).is_file():
        root = root.parent
    return RunConfig.model_validate({**manifest["run_config"], "out": str(root),
                                     **(settings or {})})


def _changed_scenario(loaded: LoadedScenario, overrides: Sequence[str] | Mapping[str, Any],
                      interventions: str | Path | None, step: int
                      ) -> tuple[LoadedScenario, list[InterventionSpec]]:
    """The fork's scenario and the interventions to apply at the fork point."""
    pairs = dict(overrides.items()) if isinstance(overrides, Mapping) else dict(
        parse_assignment(a) for a in overrides)
    _check_overrides(pairs, step)
    changed = apply_overrides(loaded, pairs) if pairs else loaded
    now: list[InterventionSpec] = []
    if interventions is not None:
        items = load_interventions(interventions, changed.spec, require_trigger=False)
        now = [i for i in items if i.at is None and i.when is None]
        later = [i for i in items if i not in now]
        if later:
            changed = merge_interventions(changed, later, source=str(interventions))
    return LoadedScenario(spec=changed.spec, path=loaded.path, raw=changed.raw,
                          overrides=pairs), now


def _last_rounds(parent: Path, step: int) -> dict[int, int]:
    """Round of each replica's step ``step`` (from the lineage's event shard of that step)."""
    if step == 0:
        return {}
    for folder in [parent, *(a.path for a in lineage(parent, verify=False))]:
        shard = folder / "events" / f"step-{step:06d}.parquet"
        if shard.is_file():
            rows = pl.read_parquet(shard, columns=["replica", "round"])
            return {int(r): int(n) for r, n in rows.unique("replica").iter_rows()}
    return {}


def _start_engine(engine: Engine, parent: Path, step: int, draws: list[int] | None,
                  now: Sequence[InterventionSpec]) -> None:
    """Seed the continuation's draws, place the trigger checks and queue ``now``."""
    rounds = _last_rounds(parent, step)
    reached = max(rounds.values(), default=0)
    if engine.spec.rounds < reached:
        raise RunError(f"--set rounds={engine.spec.rounds}: the fork step {step} is in round "
                       f"{reached}, after the last round the change leaves. Fix: set rounds "
                       f"to {reached} or more (or fork at an earlier step).")
    for replica in engine.replicas:
        if draws is not None:
            replica.draw_seed = draws[replica.replica]
        # A scheduled intervention is checked at a round's first step: a fork made in the
        # middle of round r must not check round r again at its first step.
        last = rounds.get(replica.replica, 0)
        replica.interventions.checked = max(replica.interventions.checked, last)
        state = replica.state
        if state is not None and state.stage not in {s.id for s in engine.spec.stages}:
            raise RunError(f"the fork's scenario has no stage '{state.stage}', where replica "
                           f"{replica.replica} stands at step {step}. Fix: keep that stage.")
    for item in now:
        engine.intervene(item)
    for item in engine.spec.interventions:
        if item.at is not None and item.at.round <= max(rounds.values(), default=0) and \
                item.id not in engine.replicas[0].interventions.fired:
            raise RunError(f"intervention '{item.id}': at round {item.at.round} is not after "
                           f"the fork step {step} (round {max(rounds.values())}). Fix: give a "
                           "later round, or drop 'at' to apply it at the fork point.")


def prepare_fork(parent_dir: str | Path, step: int, *,
                 overrides: Sequence[str] | Mapping[str, Any] = (),
                 interventions: str | Path | None = None, seed: SeedMode = "keep",
                 continuation: int = 0, settings: Mapping[str, Any] | None = None,
                 backend: Backend | None = None, run_dir: Path | None = None,
                 command: list[str] | None = None, arm: str | None = None) -> PreparedFork:
    """Write a fork's directory, header and first checkpoint; see :func:`fork_run`."""
    parent, manifest, loaded = _parent(parent_dir, step)
    scenario, now = _changed_scenario(loaded, overrides, interventions, step)
    config = _config(parent, manifest, settings)
    state = engine_state_at(parent, step, manifest["spec_hash"])
    owned = backend or open_backend(config)
    engine = Engine(scenario.spec, config, LocalExecutor(owned))
    engine.load_state_dict(state)
    draws = None
    if seed == "new" or continuation > 0:
        draws = [derive_seed(r.draw_seed, step, continuation) for r in engine.replicas]
    _start_engine(engine, parent, step, draws, now)
    checkpoint = read_checkpoint(parent, manifest["spec_hash"], step)
    assert checkpoint is not None  # _parent found the step's checkpoint
    shared = shared_files(parent, step, checkpoint["files"])
    path = run_dir if run_dir is not None else Recorder.new_dir(config, scenario.spec)
    path.mkdir(parents=True, exist_ok=True)
    progress = checkpoint["progress"]
    recorder = Recorder.create(config, scenario.spec, owned.info, command=command, path=path,
                               overrides=scenario.overrides, progress=progress,
                               parent=parent_link(path, parent, manifest, step))
    recorder.annotate(fork={
        "seed": seed, "continuation": continuation, "arm": arm,
        "draw_seeds": [r.draw_seed for r in engine.replicas],
        "interventions": [i.model_dump(mode="json", exclude_defaults=True) for i in now],
        "interventions_file": None if interventions is None else str(interventions)})
    recorder.checkpoints.origin = {**recorder.manifest["parent"],
                                   "files": shared}
    prepare_run_conditioning(scenario.spec, owned, path)
    engine.callbacks.insert(0, record_steps(engine, recorder))
    CostMeter.attach(owned, recorder, engine, config.max_cost)
    recorder.write_population(engine.replicas)
    recorder.write_checkpoint(engine.state_dict())
    return PreparedFork(path=path, engine=engine, recorder=recorder, backend=owned)


def fork_run(parent_dir: str | Path, step: int, *,
             overrides: Sequence[str] | Mapping[str, Any] = (),
             interventions: str | Path | None = None, seed: SeedMode = "keep",
             settings: Mapping[str, Any] | None = None, backend: Backend | None = None,
             callbacks: Sequence[Callable[[StepReport], None]] = (),
             command: list[str] | None = None) -> RunOutcome:
    """Fork the run in ``parent_dir`` at the end of ``step`` and run the fork to the end.

    Args:
        parent_dir: a run directory (a fork too) with a checkpoint at ``step``.
        step: 0 (before the first step) to the parent's last checkpointed step.
        overrides: ``PATH=VALUE`` assignments (or a mapping) as ``traitlab run --set``;
            paths under :data:`FIXED_PATHS` are refused.
        interventions: a file of interventions: those with ``at``/``when`` fire on their
            trigger, the others at the fork point (the first step after ``step``).
        seed: ``keep`` (the parent's draws) or ``new`` (derived ones, recorded).
        settings: run config fields replacing the parent's (``backend``, ``model``, ``out``,
            ...); the seed and replicas stay the parent's.
        backend: a backend to reuse (default: the one the config names).
        callbacks: progress callbacks, called after each step.
        command: the command line, for the manifest.

    Raises:
        RunError: no parent, a step without a checkpoint, a change a running world cannot
            take; ScenarioError: an override or interventions file the scenario refuses.
    """
    fork = prepare_fork(parent_dir, step, overrides=overrides, interventions=interventions,
                        seed=seed, settings=settings, backend=backend, command=command)
    fork.engine.callbacks.extend(callbacks)
    with closing_backend(None if backend is not None else fork.backend):
        return drive_to_end(fork.engine, fork.recorder)


MAX_FORK_REPLICAS = 1_000
"""Most continuations per arm of a fork set: each is a run directory, all prepared first."""


@dataclass(frozen=True)
class ForkSet:
    """A fork set's directory and its forks, ``(arm, continuation, path)`` each."""

    path: Path
    forks: list[tuple[str, int, Path]]


def fork_set(parent_dir: str | Path, step: int, *, replicas: int,
             overrides: Sequence[str] | Mapping[str, Any] = (),
             interventions: str | Path | None = None, seed: SeedMode = "keep",
             settings: Mapping[str, Any] | None = None, backend: Backend | None = None,
             callbacks: Sequence[Callable[[StepReport], None]] = (),
             command: list[str] | None = None) -> ForkSet:
    """``replicas`` continuations of the changed and the unchanged arm, paired by draws.

    Continuation i of both arms has the same draw seeds: the parent's for i = 0 with
    ``seed="keep"``, else :func:`derive_seed` of the parent's, the step and i. Every fork
    directory is prepared (header and first checkpoint) before any runs, so an interrupted
    set is a set of resumable runs. Layout: ``<out>/<scenario>/<time>-forkset-<id>/`` with
    ``forkset.json`` and one fork directory per arm and continuation, ``changed-00``,
    ``unchanged-00``, ... Arguments as :func:`fork_run`.
    """
    if not 1 <= replicas <= MAX_FORK_REPLICAS:
        raise RunError(f"--replicas {replicas}: a fork set makes 1 to {MAX_FORK_REPLICAS:,} "
                       f"continuations of each arm (each one a run directory). Fix: pass "
                       f"--replicas from 1 to {MAX_FORK_REPLICAS:,}, or leave it out for one "
                       f"fork.")
    parent, manifest, loaded = _parent(parent_dir, step)
    config = _config(parent, manifest, settings)
    root = Recorder.new_dir(config, loaded.spec)
    root = root.rename(root.with_name(root.name[:16] + "-forkset" + root.name[16:]))
    owned = backend or open_backend(config)
    plan = [(arm, i) for i in range(replicas) for arm in ("changed", "unchanged")]
    index = {"kind": "forkset", "created_at": datetime.now(UTC).isoformat(),
             "parent": parent_link(root, parent, manifest, step), "step": step, "seed": seed,
             "replicas": replicas, "overrides": list(overrides) if not isinstance(
                 overrides, Mapping) else dict(overrides),
             "interventions_file": None if interventions is None else str(interventions),
             "forks": [{"arm": a, "continuation": i, "dir": f"{a}-{i:02d}"} for a, i in plan]}
    write_json(root / FORKSET_FILE, index)
    with closing_backend(None if backend is not None else owned):
        prepared = [prepare_fork(parent, step, seed=seed, continuation=i, settings=settings,
                                 overrides=overrides if arm == "changed" else (),
                                 interventions=interventions if arm == "changed" else None,
                                 backend=owned, run_dir=root / f"{arm}-{i:02d}",
                                 command=command, arm=arm) for arm, i in plan]
        waiting = list(prepared)
        try:
            with _set_interrupt(root):
                while waiting:
                    fork = waiting.pop(0)
                    fork.engine.callbacks.extend(callbacks)
                    drive_to_end(fork.engine, fork.recorder)
        finally:  # forks that never started: marked resumable, their locks released
            for fork in waiting:
                fork.recorder.finish("interrupted")
    return ForkSet(path=root, forks=[(a, i, root / f"{a}-{i:02d}") for a, i in plan])


def read_forkset(path: str | Path) -> dict[str, Any] | None:
    """A fork set's ``forkset.json`` (``None`` if ``path`` is no fork set)."""
    file = Path(path) / FORKSET_FILE
    return json.loads(file.read_text()) if file.is_file() else None


@contextmanager
def _set_interrupt(root: Path) -> Iterator[None]:
    """A fork of the set stopped by Ctrl-C: the resume command names the whole set."""
    try:
        yield
    except BudgetReached:  # it carries its own message and numbers
        raise
    except RunInterrupted:
        raise RunInterrupted(root) from None


def resume_forkset(path: str | Path, *, backend: Backend | None = None,
                   callbacks: Sequence[Callable[[StepReport], None]] = (),
                   command: list[str] | None = None, max_cost: float | None = None,
                   started: Callable[[str, int, Path], None] | None = None
                   ) -> list[tuple[str, int, Path, RunOutcome | None]]:
    """Resume every fork of a fork set that is not complete, in the set's order.

    Returns ``(arm, continuation, path, outcome)`` per fork, ``outcome`` ``None`` for a fork
    that was already complete. ``started`` is called before each fork is resumed.

    Raises:
        RunError: ``path`` is no fork set, or a fork directory is missing.
        RunInterrupted: Ctrl-C stopped a fork (its resume command names the set).
    """
    root = Path(path).expanduser().resolve()
    index = read_forkset(root)
    if index is None:
        raise RunError(f"{root} has no {FORKSET_FILE}. Fix: pass a fork set directory "
                       "(runs/<scenario>/<time>-forkset-<id>).")
    forks = [(f["arm"], int(f["continuation"]), root / f["dir"]) for f in index["forks"]]
    for _arm, _i, folder in forks:
        if not (folder / "manifest.json").is_file():
            raise RunError(f"{folder} is missing from the fork set {root.name}. Fix: restore "
                           "it, or make the set again with traitlab fork --replicas.")
    todo = [f for f in forks if read_manifest(f[2]).get("status") != "complete"]
    done: list[tuple[str, int, Path, RunOutcome | None]] = [
        (a, i, p, None) for a, i, p in forks if (a, i, p) not in todo]
    if todo and backend is None:
        config = RunConfig.model_validate(read_manifest(todo[0][2])["run_config"])
        backend = owned = open_backend(config)
    else:
        owned = None
    with closing_backend(owned), _set_interrupt(root):
        for arm, i, folder in todo:
            if started is not None:
                started(arm, i, folder)
            outcome = resume_run(folder, backend=backend, callbacks=callbacks,
                                 command=command, max_cost=max_cost)
            done.append((arm, i, folder, outcome))
    order = {p: k for k, (_a, _i, p) in enumerate(forks)}
    return sorted(done, key=lambda f: order[f[2]])
