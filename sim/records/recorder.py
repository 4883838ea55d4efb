"""The only writer: run directory, manifest, resolved scenario, per-step parquet shards.

Every file is written atomically (a temporary file in the same directory, then
``os.replace``), so a reader never sees a partial file. Layout::

    runs/<scenario>/<utc-time>-<short-id>/
        manifest.json  scenario.yaml  agents.parquet  network.parquet
        checkpoints/step-000000.json ...  (one per step: the state to continue or reopen at)
        events/step-000001.parquet ...
        surveys/step-000001.parquet ...  (survey stages: one row per administered item)
        prompts/step-000001.parquet ...  (each distinct request once, where it first appeared)
        state/step-000001.parquet ...  (scenarios with world state: every variable after the step)

After each step the event shard (and the step's survey and prompt shards) is written first,
then the step's checkpoint document (see :mod:`sim.records.checkpoint`), then the manifest.
A shard is
*committed* once the checkpoint covers its step: resuming deletes shards the checkpoint does
not cover. The manifest's ``status`` is
one of ``running``, ``complete``, ``failed``, ``interrupted``.

Each committed file's sha256 goes into the checkpoint of its step, which resume verifies. While a
recorder writes a directory it holds an exclusive lock (``fcntl.flock``) on its ``.lock``
file: a second writer (two resumes of one run) is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import yaml

from sim.errors import RunError
from sim.records.checkpoint import (
    STATE_DIR,
    CheckpointWriter,
    run_settings,
    sha256_file,
    stale_files,
)
from sim.records.files import LOCK_NAME, RunLock, atomic_write, read_manifest, write_json
from sim.records.hooks import NO_HOOKS, RunHooks
from sim.records.lineage import lineage_prompts
from sim.records.provenance import design_facts, git_commit, package_versions, prompt_rows
from sim.records.schemas import (
    AGENT_SCHEMA,
    EVENT_SCHEMA,
    NETWORK_SCHEMA,
    PROMPT_SCHEMA,
    STATE_SCHEMA,
    SURVEY_SCHEMA,
    frame,
)
from sim.requests import GenerateRequest, ModelInfo, ScoreRequest
from sim.scenario.loader import spec_hash
from sim.scenario.spec import RunConfig, ScenarioSpec
from sim.version import __version__

if TYPE_CHECKING:
    from sim.engine.replica import Replica

__all__ = [
    "LOCK_NAME",
    "PROMPTS_DIR",
    "STATUSES",
    "SURVEYS_DIR",
    "Recorder",
    "RunLock",
    "atomic_write",
    "design_facts",
    "prompt_rows",
    "read_manifest",
]

STATUSES = ("running", "complete", "failed", "interrupted")
SURVEYS_DIR = "surveys"  # survey stage: shards committed like event shards
PROMPTS_DIR = "prompts"  # distinct requests: shards committed like event shards
_PROGRESS = ("steps_completed", "events", "tokens", "failures", "retries", "timings",
             "cost_usd")


class Recorder:
    """Writes one run directory. Create with :meth:`create`.

    ``hooks`` are called at ``after-shard``, ``after-checkpoint`` and ``finish`` (see
    :mod:`sim.records.hooks`).
    """

    def __init__(self, path: Path, manifest: dict[str, Any], hooks: RunHooks = NO_HOOKS,
                 lock: RunLock | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self.hooks = hooks
        self.lock = lock or RunLock(path)
        self.files: dict[str, str] = {}  # files committed since the last checkpoint -> sha256
        self.checkpoints = CheckpointWriter(path, manifest["spec_hash"])
        self.committed = int(manifest.get("steps_completed", 0))  # step of the last checkpoint
        self._started = time.perf_counter() - float(manifest["timings"]["wall_s"])
        shards = sorted((path / PROMPTS_DIR).glob("step-*.parquet"))
        shards += lineage_prompts(path, manifest) if "parent" in manifest else []
        self._prompts: set[str] = set(pl.scan_parquet(shards).select("prompt_hash").collect()
                                      .to_series().to_list()) if shards else set()

    @staticmethod
    def new_dir(config: RunConfig, spec: ScenarioSpec) -> Path:
        """Make a fresh, empty run directory under ``config.out / spec.name``.

        Raises:
            RunError: if the output directory cannot be created.
        """
        out = config.out.expanduser().resolve()
        root = (out / spec.name).resolve()
        if not root.is_relative_to(out) or root == out:
            raise RunError(f"scenario name {spec.name!r} would write outside the output root "
                           f"{out}. Fix: use a plain name (letters, digits, '-', '_', '.').")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        try:
            root.mkdir(parents=True, exist_ok=True)
            for _ in range(100):
                path = root / f"{stamp}-{secrets.token_hex(3)}"
                with contextlib.suppress(FileExistsError):
                    path.mkdir()
                    return path
        except OSError as exc:
            raise RunError(f"cannot write runs under {root}: {exc.strerror}. Fix: pass "
                           "--out with a writable directory.") from None
        raise RunError(f"could not create a fresh run directory under {root}.")  # pragma: no cover

    @classmethod
    def create(cls, config: RunConfig, spec: ScenarioSpec, model: ModelInfo,
               *, command: list[str] | None = None, hooks: RunHooks = NO_HOOKS,
               path: Path | None = None, overrides: dict[str, Any] | None = None,
               parent: dict[str, Any] | None = None,
               progress: dict[str, Any] | None = None) -> Recorder:
        """Write a run's header into ``path`` (default: a fresh :meth:`new_dir`).

        ``overrides``: dotted paths set on top of the scenario file (``--set``), recorded in
        the manifest; ``scenario.yaml`` already holds their values. ``parent``: a fork's
        link to the run it continues (:func:`sim.records.lineage.parent_link`), and
        ``progress`` the manifest's progress at the fork step (a checkpoint's ``progress``).

        Raises:
            RunError: if the output directory cannot be created.
        """
        path = path if path is not None else cls.new_dir(config, spec)
        manifest: dict[str, Any] = {
            "traitlab": __version__, "run_id": path.name, "scenario": spec.name,
            "spec_hash": spec_hash(spec), "seed": config.seed, "replicas": config.replicas,
            "run_config": config.model_dump(mode="json"), "model": dataclasses.asdict(model),
            "design": design_facts(spec),
            "packages": package_versions(), "git_commit": git_commit(), "command": command,
            "status": "running", "started_at": datetime.now(UTC).isoformat(),
            "finished_at": None, "steps_completed": 0, "events": 0,
            "tokens": {"prompt": 0, "new": 0, "cached": 0}, "failures": 0, "retries": 0,
            "timings": {"wall_s": 0.0, "model_s": 0.0, "steps": []}, "resumes": [],
        }
        if overrides:
            manifest["overrides"] = dict(overrides)
        if parent is not None:
            manifest["parent"] = dict(parent)
        manifest.update(json.loads(json.dumps(progress or {})))
        surveys = [s.id for s in spec.stages if s.kind == "survey"]
        if surveys:
            manifest["surveys"] = {"dir": SURVEYS_DIR, "stages": surveys, "rows": 0}
        recorder = cls(path, manifest, hooks)
        # Values equal to their defaults are left out: the file loads back to the same spec
        # (and hash), which resume relies on, and checks of options set explicitly stay quiet.
        resolved = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        on_state = spec.stop is not None or any(
            e.while_ is not None and e.while_.state is not None for e in spec.flow or [])
        if on_state and "rounds" not in resolved:
            # a condition on state needs 'rounds' written (even 1) for the file to load back
            resolved = {"name": resolved.pop("name"), "rounds": spec.rounds, **resolved}
        atomic_write(path / "scenario.yaml",
                     lambda p: p.write_text(yaml.safe_dump(resolved, sort_keys=False)))
        recorder.files["scenario.yaml"] = sha256_file(path / "scenario.yaml")
        recorder._flush_manifest()
        return recorder

    @classmethod
    def reopen(cls, path: Path, checkpoint: dict[str, Any] | None, *,
               command: list[str] | None = None, hooks: RunHooks = NO_HOOKS,
               lock: RunLock | None = None) -> Recorder:
        """Continue writing a run directory from its checkpoint (``None``: from the start).

        Deletes what the checkpoint does not cover (later event shards, temporary files),
        restores the manifest's progress to the checkpoint's, records the resume in the
        manifest's ``resumes`` list and sets its status back to ``running``. ``lock``: the
        directory's lock if the caller took it already (else it is taken here).
        """
        lock = lock or RunLock(path)
        manifest = read_manifest(path)
        step = checkpoint["step"] if checkpoint is not None else 0
        for stale in stale_files(path, step):
            stale.unlink(missing_ok=True)
        if checkpoint is not None:
            manifest.update(json.loads(json.dumps(checkpoint["progress"])))
        else:
            manifest.update(steps_completed=0, events=0, failures=0, retries=0,
                            tokens={"prompt": 0, "new": 0, "cached": 0},
                            timings={"wall_s": 0.0, "model_s": 0.0, "steps": []})
        manifest.setdefault("resumes", []).append({
            "from_step": step, "previous_status": manifest.get("status"),
            "at": datetime.now(UTC).isoformat(), "command": command})
        manifest.update(status="running", finished_at=None)
        recorder = cls(path, manifest, hooks, lock)
        recorder.checkpoints = CheckpointWriter(path, manifest["spec_hash"], checkpoint)
        recorder.files = {} if checkpoint is not None else {
            "scenario.yaml": sha256_file(path / "scenario.yaml")}
        recorder._count_surveys()
        recorder._flush_manifest()
        return recorder

    def write_population(self, replicas: Iterable[Replica]) -> None:
        """Write ``agents.parquet`` and ``network.parquet`` for every replica."""
        agents, edges = [], []
        for sim in replicas:
            for agent in sim.population:
                persona = agent.persona
                agents.append({
                    "replica": sim.replica, "agent": agent.key, "index": agent.index,
                    "name": persona.name, "cohort": agent.cohort,
                    "policy": agent.policy.name if agent.policy else None,
                    "backend": "scripted" if agent.policy else "model",
                    "persona_model": "mbti" if persona.mbti else "big_five",
                    **persona.big_five.as_dict(),
                    "mbti": persona.mbti.type if persona.mbti else None,
                    "background": persona.background,
                    "role": agent.base_role,
                    "private": json.dumps(agent.private, sort_keys=True) if agent.private
                    else None,
                })
            if sim.network is not None:
                edges.extend({"replica": sim.replica, "source": f"a{a:03d}",
                              "target": f"a{b:03d}"} for a, b in sim.network.edges())
        self._write_parquet("agents.parquet", frame(agents, AGENT_SCHEMA))
        self._write_parquet("network.parquet", frame(edges, NETWORK_SCHEMA))

    def record_step(self, step: int, rows: list[dict[str, Any]], *, seconds: float,
                    tokens: Mapping[str, int], model_seconds: float, failures: int,
                    retries: int = 0, state: dict[str, Any] | None = None,
                    surveys: list[dict[str, Any]] | None = None,
                    prompts: Mapping[str, GenerateRequest | ScoreRequest] | None = None,
                    world: list[dict[str, Any]] | None = None) -> None:
        """Write one step's event shard, then its checkpoint, then the manifest's progress.

        A step's survey rows (``surveys``) go to their own shard beside the event shard,
        before the checkpoint; a resume drops shards the checkpoint does not cover (see
        :func:`sim.records.checkpoint.stale_files`), so no row is lost or written twice.

        Args:
            step: the step number (1-based).
            rows: the step's event rows.
            seconds: wall time of the step.
            tokens: running token counts (prompt, new, cached).
            model_seconds: running time spent in the model backend.
            failures: running count of failed requests.
            retries: running count of batches the backend retried.
            state: the engine's :meth:`~sim.engine.loop.Engine.state_dict` after the step; without
                it no checkpoint is written.
            surveys: the step's survey rows (side channel of survey stages), if any.
            prompts: the step's distinct requests by prompt hash; those not stored by an
                earlier step go to ``prompts/step-NNNNNN.parquet`` (zstd), before the
                checkpoint, so a resume keeps each prompt exactly once.
            world: the world state after the step (``state`` rows), if the scenario has any;
                its shard is committed like the event shard.
        """
        self._write_parquet(f"events/step-{step:06d}.parquet", frame(rows, EVENT_SCHEMA))
        if surveys:
            self._write_parquet(f"{SURVEYS_DIR}/step-{step:06d}.parquet",
                                frame(surveys, SURVEY_SCHEMA))
            self.manifest["surveys"]["rows"] += len(surveys)
        if world:
            self._write_parquet(f"{STATE_DIR}/step-{step:06d}.parquet",
                                frame(world, STATE_SCHEMA))
        new = prompt_rows(prompts or {}, self._prompts)
        if new:
            df = frame(new, PROMPT_SCHEMA)
            atomic_write(self.path / f"{PROMPTS_DIR}/step-{step:06d}.parquet",
                         lambda p: df.write_parquet(p, compression="zstd",
                                                    compression_level=9))
        self.hooks.at("after-shard", step)
        m = self.manifest
        m["steps_completed"] = step
        m["events"] += len(rows)
        m["tokens"] = dict(tokens)
        m["failures"] = failures
        m["retries"] = retries
        m["timings"]["steps"].append(round(seconds, 4))
        m["timings"]["model_s"] = round(model_seconds, 3)
        m["timings"]["wall_s"] = round(time.perf_counter() - self._started, 3)
        if state is not None:
            self.write_checkpoint(state)
            self.hooks.at("after-checkpoint", step)
        self._flush_manifest()

    def annotate(self, **values: Any) -> None:
        """Set top-level manifest keys (``server``, ``cost_usd``, ...).

        They are written with the next manifest write, or at once with :meth:`flush`.
        """
        self.manifest.update(values)

    def flush(self) -> None:
        """Write the manifest now."""
        self._flush_manifest()

    def write_checkpoint(self, state: dict[str, Any]) -> None:
        """Write the checkpoint document of the engine state's step.

        It carries the manifest's progress now and commits the files written since the
        previous document.
        """
        self.committed = self.checkpoints.write(
            state, progress={k: self.manifest[k] for k in _PROGRESS if k in self.manifest},
            settings=run_settings(self.manifest), files=self.files)
        self.files = {}

    def finish(self, status: str) -> None:
        """Mark the run ``complete``, ``failed`` or ``interrupted``.

        Raises:
            ValueError: for any other status.
        """
        if status not in STATUSES[1:]:
            raise ValueError(f"unknown final status {status!r}")
        self.manifest["status"] = status
        self.manifest["finished_at"] = datetime.now(UTC).isoformat()
        self.manifest["timings"]["wall_s"] = round(time.perf_counter() - self._started, 3)
        text = json.dumps(self.manifest, indent=2, default=str) + "\n"

        def write(tmp: Path) -> None:
            tmp.write_text(text)
            self.hooks.at("finish", int(self.manifest["steps_completed"]))

        try:
            atomic_write(self.path / "manifest.json", write)
        finally:
            self.lock.release()

    def _count_surveys(self) -> None:
        """Set the manifest's survey row count from the shards a resume kept."""
        if "surveys" in self.manifest:
            shards = sorted((self.path / SURVEYS_DIR).glob("step-*.parquet"))
            self.manifest["surveys"]["rows"] = (
                pl.scan_parquet(shards).select(pl.len()).collect().item() if shards else 0)

    def _write_parquet(self, name: str, df: pl.DataFrame) -> None:
        atomic_write(self.path / name, lambda p: df.write_parquet(p))
        self.files[name] = sha256_file(self.path / name)

    def _flush_manifest(self) -> None:
        write_json(self.path / "manifest.json", self.manifest)
