"""Checkpoints: everything a run needs to continue after a crash, as plain JSON.

Randomness is stateless (every draw comes from ``SeedSequence(seed, spawn_key=...)``), so a
checkpoint holds no RNG state: only the flow position, the per-round grouping cache, every
agent's mutable state and the world state (``world``, scenarios with state) of each
replica, the engine's step counter, the executor's counters and the manifest's progress
fields. The recorder writes ``checkpoint.json`` atomically after each
step's event shard; an event shard with a step above the checkpoint's step was written by a
process that died before committing it and is deleted on resume.

Layout of ``checkpoint.json``::

    {"format": 2, "spec_hash": "...", "step": 7,
     "engine": {"steps_done": 7, "executor": {...}, "replicas": [{...}, ...]},
     "progress": {"steps_completed": 7, "events": 112, ...},
     "settings": {"seed": 0, "replicas": 1, "run_config": {...}},
     "files": {"scenario.yaml": "<sha256>", "agents.parquet": "...",
               "events/step-000001.parquet": "...", ...},
     "sha256": "<sha256 of the document without this key>"}

Resume trusts nothing it did not write (:func:`verify_checkpoint`): the document's own hash,
the run settings in ``manifest.json`` against ``settings``, and every committed file against
``files`` (missing, truncated or edited files, and shards it never wrote, are refused with
the file's name and how to recover).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from sim.engine.groups import Grouping
from sim.errors import RunError
from sim.scenario.flow import FlowState

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT",
    "STATE_DIR",
    "build_checkpoint",
    "flow_from_json",
    "flow_to_json",
    "grouping_from_json",
    "grouping_to_json",
    "load_stats",
    "read_checkpoint",
    "run_settings",
    "sha256_file",
    "shard_step",
    "stale_files",
    "stats_to_json",
    "verify_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.json"
STATE_DIR = "state"
"""Shard folder of the world state (committed like event shards)."""
FORMAT = 2
_SHARD = re.compile(r"^step-(\d+)\.parquet$")


def flow_to_json(state: FlowState | None) -> dict[str, Any] | None:
    """A flow position as JSON (``None`` once the run is over)."""
    return None if state is None else {"round": state.round, "stage": state.stage}


def flow_from_json(data: dict[str, Any] | None) -> FlowState | None:
    """Inverse of :func:`flow_to_json`."""
    return None if data is None else FlowState(int(data["round"]), str(data["stage"]))


def grouping_to_json(key: tuple[int, str], grouping: Grouping) -> dict[str, Any]:
    """One entry of a simulation's grouping cache, keyed by (round, rule)."""
    return {"round": key[0], "by": key[1], "groups": [list(g) for g in grouping.groups],
            "sitting_out": list(grouping.sitting_out)}


def grouping_from_json(data: dict[str, Any]) -> tuple[tuple[int, str], Grouping]:
    """Inverse of :func:`grouping_to_json`: the cache key and its grouping."""
    grouping = Grouping(groups=tuple(tuple(int(a) for a in g) for g in data["groups"]),
                        sitting_out=tuple(int(a) for a in data["sitting_out"]))
    return (int(data["round"]), str(data["by"])), grouping


def stats_to_json(stats: Any) -> dict[str, Any]:
    """A counters dataclass (e.g. :class:`~sim.executors.local.ExecutorStats`) as JSON."""
    return dataclasses.asdict(stats)


def load_stats(stats: Any, data: dict[str, Any]) -> None:
    """Set the fields of a counters dataclass from :func:`stats_to_json` output."""
    names = {f.name for f in dataclasses.fields(stats)}
    for name, value in data.items():
        if name in names:
            setattr(stats, name, dict(value) if isinstance(value, dict) else value)


def build_checkpoint(*, step: int, spec_hash: str, engine: dict[str, Any],
                     progress: dict[str, Any], settings: dict[str, Any] | None = None,
                     files: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON document of a checkpoint after ``step`` steps, sealed with its own hash."""
    data = {"format": FORMAT, "spec_hash": spec_hash, "step": step, "engine": engine,
            "progress": progress, "settings": settings or {}, "files": dict(files or {})}
    return {**data, "sha256": _document_hash(data)}


def _document_hash(data: dict[str, Any]) -> str:
    text = json.dumps({k: v for k, v in data.items() if k != "sha256"}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def run_settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """The settings of a run that its records depend on, as the manifest states them."""
    return {"seed": manifest.get("seed"), "replicas": manifest.get("replicas"),
            "run_config": manifest.get("run_config")}


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(run_dir: Path, spec_hash: str) -> dict[str, Any] | None:
    """Read a run's checkpoint, or ``None`` if it has none yet.

    Args:
        run_dir: the run directory.
        spec_hash: hash of the run's resolved scenario; the checkpoint must carry the same.

    Raises:
        RunError: if the checkpoint is unreadable, of another format, or of another scenario.
    """
    path = run_dir / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RunError(f"{path} is not a TraitLab checkpoint of format {FORMAT} (one with "
                       "content hashes). Fix: start a new run; this one cannot be verified.")
    if data.get("sha256") != _document_hash(data):
        raise RunError(f"{path} was changed after it was written (its content hash does not "
                       "match); refusing to resume. Fix: restore the original file, or start "
                       "a new run.")
    if data.get("spec_hash") != spec_hash:
        raise RunError(f"{path} belongs to scenario hash {data.get('spec_hash')!r}, but the "
                       f"run's scenario.yaml hashes to {spec_hash!r}; refusing to resume. "
                       "Fix: restore the run's original scenario.yaml, or start a new run.")
    return data


def verify_checkpoint(run_dir: Path, checkpoint: dict[str, Any],
                      manifest: dict[str, Any]) -> None:
    """Check the run settings and every committed file against the checkpoint.

    Raises:
        RunError: naming the first setting or file that differs and how to recover.
    """
    step = checkpoint["step"]
    fresh = f"start a new run from {run_dir / 'scenario.yaml'}"
    settings = run_settings(manifest)
    for key, value in checkpoint.get("settings", {}).items():
        if settings.get(key) != value:
            raise RunError(f"{run_dir / 'manifest.json'} says {key} = {settings.get(key)!r} "
                           f"but the run was recorded with {value!r}; refusing to resume. "
                           f"Fix: restore the manifest's {key}, or {fresh}.")
    files: dict[str, str] = checkpoint.get("files", {})
    for name, digest in sorted(files.items()):
        path = run_dir / name
        if not path.is_file():
            raise RunError(f"{path} is missing, but the checkpoint at step {step} committed "
                           f"it; refusing to resume. Fix: restore the file, or {fresh}.")
        if sha256_file(path) != digest:
            raise RunError(f"{path} changed after it was committed (truncated or edited); "
                           f"refusing to resume. Fix: restore the file, or {fresh}.")
    for folder in ("events", "surveys", STATE_DIR):
        for path in sorted((run_dir / folder).glob("step-*.parquet")):
            number = shard_step(path)
            if number is not None and number <= step and f"{folder}/{path.name}" not in files:
                raise RunError(f"{path} was not written by this run (the checkpoint at step "
                               f"{step} does not list it); refusing to resume. Fix: remove "
                               f"it, or {fresh}.")


def shard_step(path: Path) -> int | None:
    """The step number of an event shard file name (``step-000012.parquet`` -> 12)."""
    match = _SHARD.match(path.name)
    return int(match.group(1)) if match else None


def stale_files(run_dir: Path, step: int) -> list[Path]:
    """Files a crashed process may have left that the checkpoint at ``step`` does not cover.

    These are event, survey, prompt and state shards with a step above ``step`` and
    temporary files of atomic writes.
    """
    shards = ("events", "surveys", "prompts", STATE_DIR)
    stale = [p for folder in shards for p in sorted((run_dir / folder).glob("step-*.parquet"))
             if (n := shard_step(p)) is not None and n > step]
    for folder in (run_dir, *(run_dir / f for f in shards)):
        stale.extend(sorted(folder.glob(".*.tmp")))
    return stale
