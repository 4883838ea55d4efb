"""Checkpoints: everything a run needs to continue, or to be reopened, at any past step.

Randomness is stateless (every draw comes from ``SeedSequence(seed, spawn_key=...)``), so a
checkpoint holds no RNG state: only the flow position, the per-round grouping cache, every
agent's mutable state and the world state (``world``, scenarios with state) of each
replica, the engine's step counter, the executor's counters and the manifest's progress
fields.

The recorder writes one document per step, ``checkpoints/step-NNNNNN.json`` (atomically,
after the step's shards), from step 0 (before the first step) on. Each is small whatever the
run's length: every :data:`SNAPSHOT_EVERY` steps (and at step 0) it holds the whole engine
state (``"kind": "full"``); in between only what the step changed (``"kind": "delta"``, see
:mod:`sim.records.delta`). It lists only the files committed since the previous document,
and the step's wall time. Agents' state is bounded (:data:`agents.memory.MEMORY_LIMIT`), so
a full document is bounded too, and the state at any step is one full document plus at most
``SNAPSHOT_EVERY - 1`` deltas away (:func:`engine_state_at`).

Layout of ``checkpoints/step-000007.json``::

    {"format": 3, "spec_hash": "...", "step": 7, "kind": "delta", "prev": "<sha256>",
     "engine": {...},
     "progress": {"steps_completed": 7, "events": 112, ...},   # timings without "steps"
     "step_seconds": [0.0123],
     "settings": {"seed": 0, "replicas": 1, "run_config": {...}},
     "files": {"events/step-000007.parquet": "<sha256>", ...},
     "sha256": "<sha256 of the document without this key>"}

The documents form a chain: ``prev`` is the previous document's ``sha256`` (``null`` at step
0). Resume trusts nothing it did not write (:func:`read_checkpoint`, :func:`verify_checkpoint`):
each document's own hash, the chain's links from step 0 to the last step, the run settings
in ``manifest.json`` against ``settings``, and every committed file against the union of
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
from sim.records.delta import apply_delta, encode_delta
from sim.records.files import atomic_write, read_manifest
from sim.scenario.flow import FlowState

__all__ = [
    "CHECKPOINTS_DIR",
    "FORMAT",
    "LEGACY_NAME",
    "SHARD_DIRS",
    "SNAPSHOT_EVERY",
    "STATE_DIR",
    "CheckpointWriter",
    "checkpoint_steps",
    "doc_path",
    "engine_state_at",
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

CHECKPOINTS_DIR = "checkpoints"
LEGACY_NAME = "checkpoint.json"  # the single checkpoint of format 2 and earlier
FORMAT = 3
SNAPSHOT_EVERY = 50
# Folders of per-step parquet shards whose files the checkpoints hash and resume verifies.
# A new kind of committed shard is one more name here.
STATE_DIR = "state"
"""Shard folder of the world state (committed like event shards)."""
SHARD_DIRS = ("events", "surveys", STATE_DIR)
# Per-step shards written before the checkpoint but not hashed (each prompt is stored once).
_UNHASHED_DIRS = ("prompts",)
_SHARD = re.compile(r"^step-(\d+)\.parquet$")
_DOC = re.compile(r"^step-(\d+)\.json$")


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
    for folder in SHARD_DIRS:
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

    These are shards (:data:`SHARD_DIRS`, prompts) and checkpoint documents with a step
    above ``step``, and temporary files of atomic writes.
    """
    shards = (*SHARD_DIRS, *_UNHASHED_DIRS)
    stale = [p for folder in shards for p in sorted((run_dir / folder).glob("step-*.parquet"))
             if (n := shard_step(p)) is not None and n > step]
    stale.extend(p for p in sorted((run_dir / CHECKPOINTS_DIR).glob("step-*.json"))
                 if (n := _doc_step(p)) is not None and n > step)
    for folder in (run_dir, run_dir / CHECKPOINTS_DIR, *(run_dir / f for f in shards)):
        stale.extend(sorted(folder.glob(".*.tmp")))
    return stale


def _doc_step(path: Path) -> int | None:
    match = _DOC.match(path.name)
    return int(match.group(1)) if match else None


def doc_path(run_dir: Path, step: int) -> Path:
    """Where the checkpoint document of ``step`` lives."""
    return run_dir / CHECKPOINTS_DIR / f"step-{step:06d}.json"


def checkpoint_steps(run_dir: Path) -> list[int]:
    """The steps a run directory has checkpoint documents for, ascending."""
    folder = run_dir / CHECKPOINTS_DIR
    return sorted(n for p in folder.glob("step-*.json") if (n := _doc_step(p)) is not None)


class CheckpointWriter:
    """Writes a run's chain of checkpoint documents, one per step (see the module doc).

    Holds the previous step's engine state (to write the next delta) and document hash
    (the next document's ``prev``). The engine state handed to :meth:`write` must be fresh
    data, not shared with the live engine (``Engine.state_dict`` builds it anew each step).
    """

    def __init__(self, run_dir: Path, spec_hash: str,
                 head: dict[str, Any] | None = None) -> None:
        """``head``: the :func:`read_checkpoint` output to continue from (``None``: none).

        ``origin`` (set by a fork): written as ``"parent"`` into a chain's first document.
        """
        self.origin: dict[str, Any] | None = None
        self.run_dir = run_dir
        self.spec_hash = spec_hash
        self._state: dict[str, Any] | None = head["engine"] if head else None
        self._hash: str | None = head["sha256"] if head else None
        self._step: int | None = head["step"] if head else None
        self._timings = len(head["progress"]["timings"]["steps"]) if head else 0

    def write(self, state: dict[str, Any], *, progress: dict[str, Any],
              settings: dict[str, Any], files: dict[str, str]) -> int:
        """Write the document of the step ``state["steps_done"]``; returns that step.

        ``files``: the files committed since the previous document (name -> sha256).
        """
        step = int(state["steps_done"])
        if self._step is not None and step <= self._step:
            # The same step again (a restart in place): link to its predecessor on disk.
            self._state = None
            prev_path = doc_path(self.run_dir, step - 1)
            self._hash = json.loads(prev_path.read_text())["sha256"] \
                if step > 0 and prev_path.is_file() else None
        delta = None
        if self._state is not None and step % SNAPSHOT_EVERY != 0:
            delta = encode_delta(self._state, state)
        steps = progress.get("timings", {}).get("steps", [])
        data: dict[str, Any] = {
            "format": FORMAT, "spec_hash": self.spec_hash, "step": step,
            "kind": "full" if delta is None else "delta", "prev": self._hash,
            "engine": state if delta is None else delta,
            "progress": _without_step_times(progress), "step_seconds": steps[self._timings:],
            "settings": settings, "files": dict(files),
            **({"parent": self.origin} if self.origin and self._hash is None else {})}
        data["sha256"] = _document_hash(data)
        text = json.dumps(data, separators=(",", ":")) + "\n"  # strict: no default=str
        atomic_write(doc_path(self.run_dir, step), lambda p: p.write_text(text))
        self._state, self._hash, self._step, self._timings = state, data["sha256"], step, \
            len(steps)
        return step


def _without_step_times(progress: dict[str, Any]) -> dict[str, Any]:
    out = dict(progress)
    if "timings" in out:
        out["timings"] = {k: v for k, v in out["timings"].items() if k != "steps"}
    return out


def _read_doc(run_dir: Path, step: int, spec_hash: str) -> dict[str, Any]:
    """One checkpoint document, checked for format, its own hash and its scenario."""
    path = doc_path(run_dir, step)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path} is missing from the run's chain of checkpoints; refusing to "
                       "use it. Fix: restore the file, or start a new run.") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}; refusing to use it. Fix: restore the "
                       "file, or start a new run.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RunError(f"{path} is not a TraitLab checkpoint of format {FORMAT} (a chain of "
                       "per-step documents with content hashes). Fix: start a new run; this "
                       "one cannot be verified.")
    if data.get("sha256") != _document_hash(data) or data.get("step") != step:
        raise RunError(f"{path} was changed after it was written (its content hash does not "
                       "match); refusing to use it. Fix: restore the original file, or start "
                       "a new run.")
    if data.get("spec_hash") != spec_hash:
        raise RunError(f"{path} belongs to scenario hash {data.get('spec_hash')!r}, but the "
                       f"run's scenario.yaml hashes to {spec_hash!r}; refusing to use it. "
                       "Fix: restore the run's original scenario.yaml, or start a new run.")
    return data


def _link(run_dir: Path, doc: dict[str, Any], prev: dict[str, Any] | None) -> None:
    """Refuse a document whose ``prev`` is not its predecessor's hash."""
    if doc.get("prev") != (prev["sha256"] if prev else None):
        raise RunError(f"{doc_path(run_dir, doc['step'])} does not follow the checkpoint of "
                       f"step {doc['step'] - 1} (the chain of checkpoints was changed); "
                       "refusing to use it. Fix: restore the run's checkpoints/ folder, or "
                       "start a new run.")


def _legacy(run_dir: Path) -> None:
    path = run_dir / LEGACY_NAME
    if path.exists():
        raise RunError(f"{path} is not a TraitLab checkpoint of format {FORMAT} (a chain of "
                       "per-step documents with content hashes). Fix: start a new run; this "
                       "one cannot be verified.")


def read_checkpoint(run_dir: Path, spec_hash: str,
                    step: int | None = None) -> dict[str, Any] | None:
    """A run's checkpoint at ``step`` (default: its last), or ``None`` if it has none yet.

    Reads and verifies the whole chain from its first document (step 0; or a later full
    document with no ``prev``, where a run was started from another's state) to ``step``.
    Resume hashes every committed file anyway, so this is never the dominant cost;
    :func:`engine_state_at` is the cheap way to get one step's engine state.

    Returns:
        ``{"format", "spec_hash", "step", "engine"`` (the whole state), ``"progress"`` (with
        ``timings.steps``), ``"settings"``, ``"files"`` (every file committed up to the
        step), ``"sha256"`` (the step's document hash)``}``.

    Raises:
        RunError: if a document is unreadable, of another format or scenario, changed, or
            missing from the chain, or ``step`` has no document.
    """
    steps = checkpoint_steps(run_dir)
    if not steps:
        _legacy(run_dir)
        return None
    last = steps[-1] if step is None else _check_step(run_dir, step, steps)
    state: dict[str, Any] = {}
    files: dict[str, str] = {}
    times: list[float] = []
    doc: dict[str, Any] | None = None
    for number in range(steps[0], last + 1):
        prev, doc = doc, _read_doc(run_dir, number, spec_hash)
        if prev is None and doc["prev"] is not None:  # its predecessors were removed
            _read_doc(run_dir, number - 1, spec_hash)
        _link(run_dir, doc, prev)
        state = doc["engine"] if doc["kind"] == "full" else apply_delta(state, doc["engine"])
        files.update(doc["files"])
        times.extend(doc["step_seconds"])
    assert doc is not None
    progress = json.loads(json.dumps(doc["progress"]))
    progress.setdefault("timings", {})["steps"] = times
    return {"format": FORMAT, "spec_hash": spec_hash, "step": last, "engine": state,
            "progress": progress, "settings": doc["settings"], "files": files,
            "sha256": doc["sha256"]}


def engine_state_at(run_dir: Path, step: int, spec_hash: str | None = None) -> dict[str, Any]:
    """The engine state (``Engine.state_dict``) at the end of ``step`` (0: before the first).

    Cost does not grow with ``step``: one full document and at most ``SNAPSHOT_EVERY - 1``
    deltas are read, each checked for its hash and its link to the one before.
    ``spec_hash``: the scenario hash the documents must carry (default: the manifest's).

    Raises:
        RunError: if ``step`` has no checkpoint, or a document read fails its checks.
    """
    if spec_hash is None:
        spec_hash = str(read_manifest(run_dir)["spec_hash"])
    steps = checkpoint_steps(run_dir)
    if not steps:
        _legacy(run_dir)
        raise RunError(f"{run_dir} has no checkpoints. Fix: pass a run directory written by "
                       "'traitlab run'.")
    _check_step(run_dir, step, steps)
    docs = [_read_doc(run_dir, step, spec_hash)]
    while docs[-1]["kind"] != "full":
        docs.append(_read_doc(run_dir, docs[-1]["step"] - 1, spec_hash))
        _link(run_dir, docs[-2], docs[-1])
    state = docs[-1]["engine"]
    for doc in reversed(docs[:-1]):
        state = apply_delta(state, doc["engine"])
    return state


def _check_step(run_dir: Path, step: int, steps: list[int]) -> int:
    first, last = steps[0], steps[-1]
    if not first <= step <= last:
        raise RunError(f"{run_dir} has checkpoints of steps {first} to {last}; step {step} is "
                       f"not one of them. Fix: pass a step from {first} to {last}.")
    return step
