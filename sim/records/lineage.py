"""The lineage of a fork: which run directories hold its history, checked before use.

A fork (``traitlab fork``) starts from another run's state at a step and keeps that run's
records up to the step where they are, by reference: its ``manifest.json`` names the parent
(``parent: {run_dir, run_id, step, spec_hash}``, ``run_dir`` relative to the fork when
possible) and its first checkpoint document carries the sha256 of every parent shard it
relies on (``"parent": {..., "files": {...}}``). A fork of a fork adds one more link; the
history of step s is in the nearest run of the chain that recorded it.

:func:`lineage` walks the chain up and verifies each link: the parent directory must exist
and be the recorded run, and its shards up to the step must be the ones hashed at fork time
(none missing, changed or added).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import RunError
from sim.records.checkpoint import SHARD_DIRS, checkpoint_steps, doc_path, sha256_file, shard_step
from sim.records.files import read_manifest

__all__ = ["RECORD_DIRS", "Ancestor", "fork_origin", "lineage", "lineage_prompts", "parent_link",
           "relied_files", "resolve_parent", "shared_files"]

RECORD_DIRS = (*SHARD_DIRS, "prompts")
"""Per-step shard folders a fork shares with its parent (prompts too: each stored once)."""
MAX_DEPTH = 1000  # a chain of forks longer than this is a cycle


@dataclass(frozen=True, slots=True)
class Ancestor:
    """One run of a fork's lineage whose own shards up to ``step`` are the fork's history."""

    path: Path
    run_id: str
    step: int


def parent_link(fork_dir: Path, parent_dir: Path, manifest: dict[str, Any],
                step: int) -> dict[str, Any]:
    """The manifest's ``parent`` entry of a fork of ``parent_dir`` at ``step``."""
    try:
        where = os.path.relpath(parent_dir.resolve(), fork_dir.resolve())
    except ValueError:  # another drive (Windows): keep it absolute
        where = str(parent_dir.resolve())
    return {"run_dir": where, "run_id": manifest["run_id"], "step": step,
            "spec_hash": manifest["spec_hash"]}


def resolve_parent(fork_dir: Path, link: dict[str, Any]) -> Path:
    """The parent directory a fork's ``parent`` entry names, checked to be that run.

    Raises:
        RunError: the directory is missing or holds another run.
    """
    path = (fork_dir / link["run_dir"]).resolve()
    if not (path / "manifest.json").is_file():
        raise RunError(f"{fork_dir} is a fork of run {link['run_id']} at step {link['step']}, "
                       f"whose directory {path} is missing; the fork's records up to step "
                       f"{link['step']} are read from there. Fix: restore that directory (or "
                       f"move the fork back beside it: manifest parent.run_dir = "
                       f"{link['run_dir']}).")
    manifest = read_manifest(path)
    if (manifest.get("run_id"), manifest.get("spec_hash")) != (link["run_id"],
                                                                 link["spec_hash"]):
        raise RunError(f"{path} is run {manifest.get('run_id')} (scenario hash "
                       f"{manifest.get('spec_hash')}), not the parent {link['run_id']} "
                       f"({link['spec_hash']}) of the fork {fork_dir}. Fix: restore the "
                       "parent directory the fork was made from.")
    return path


def relied_files(parent_dir: Path, step: int) -> dict[str, str]:
    """The sha256 of each of a run's own shards up to ``step`` (those a fork relies on)."""
    out: dict[str, str] = {}
    for folder in RECORD_DIRS:
        for path in sorted((parent_dir / folder).glob("step-*.parquet")):
            number = shard_step(path)
            if number is not None and number <= step:
                out[f"{folder}/{path.name}"] = sha256_file(path)
    return out


def shared_files(parent_dir: Path, step: int, committed: dict[str, str]) -> dict[str, str]:
    """:func:`relied_files`, checked against the shards the parent committed up to ``step``.

    ``committed``: :func:`read_checkpoint`'s ``files`` (which lists the record shards, not
    the prompts). A fork must not share a history that was edited or lost before it was made.

    Raises:
        RunError: naming the first shard missing, changed or not written by the run.
    """
    present = relied_files(parent_dir, step)
    recorded = {name: digest for name, digest in committed.items()
                if name.split("/", 1)[0] in SHARD_DIRS
                and (n := shard_step(Path(name))) is not None and n <= step}
    fix = "Fix: restore the file, or fork at an earlier step."
    checked = {name for name in present if name.split("/", 1)[0] in SHARD_DIRS}
    for name in sorted(set(recorded) | checked):
        path = parent_dir / name
        if name not in present:
            raise RunError(f"{path} is missing, but the run committed it by step {step}; "
                           f"a fork would share a broken history. {fix}")
        if name not in recorded:
            raise RunError(f"{path} was not written by this run (no checkpoint up to step "
                           f"{step} lists it); refusing to share it. Fix: remove it.")
        if present[name] != recorded[name]:
            raise RunError(f"{path} changed after it was committed (truncated or edited); "
                           f"a fork would share a broken history. {fix}")
    return present


def fork_origin(run_dir: Path) -> dict[str, Any] | None:
    """The ``parent`` entry of a run's first checkpoint document (``None``: not a fork).

    Raises:
        RunError: the document is unreadable or changed after it was written.
    """
    steps = checkpoint_steps(run_dir)
    if not steps:
        return None
    path = doc_path(run_dir, steps[0])
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}.") from None
    body = json.dumps({k: v for k, v in data.items() if k != "sha256"}, sort_keys=True,
                      separators=(",", ":"))
    if data.get("sha256") != hashlib.sha256(body.encode()).hexdigest():
        raise RunError(f"{path} was changed after it was written (its content hash does not "
                       "match); refusing to use it. Fix: restore the original file.")
    origin = data.get("parent")
    return origin if isinstance(origin, dict) else None


def lineage(run_dir: str | Path, *, verify: bool = True,
            manifest: dict[str, Any] | None = None) -> list[Ancestor]:
    """The runs whose records a run shares, nearest first (empty for a run that is no fork).

    With ``verify``, each parent's shards up to the fork step are checked against the hashes
    the fork recorded when it was made.

    Raises:
        RunError: a parent directory is missing, holds another run, or its shards changed.
    """
    path = Path(run_dir).expanduser().resolve()
    out: list[Ancestor] = []
    manifest = manifest if manifest is not None else read_manifest(path)
    while (link := manifest.get("parent")) is not None:
        if len(out) >= MAX_DEPTH:
            raise RunError(f"{path}: the chain of forks is longer than {MAX_DEPTH} (a cycle?).")
        parent = resolve_parent(path, link)
        step = int(link["step"])
        if out and step > out[-1].step:  # a nearer fork uses this run's rows up to its step
            step = out[-1].step
        if verify:
            _verify(path, parent, int(link["step"]))
        out.append(Ancestor(path=parent, run_id=str(link["run_id"]), step=step))
        path, manifest = parent, read_manifest(parent)
    return out


def _verify(fork_dir: Path, parent: Path, step: int) -> None:
    origin = fork_origin(fork_dir)
    if origin is None:
        raise RunError(f"{fork_dir} names a parent run but its first checkpoint does not "
                       "record the parent's files. Fix: make the fork again with traitlab "
                       "fork.")
    recorded: dict[str, str] = origin.get("files", {})
    present = relied_files(parent, step)
    for name in sorted(set(recorded) | set(present)):
        if name not in present:
            problem = "is missing"
        elif name not in recorded:
            problem = "was not there when the fork was made"
        elif present[name] != recorded[name]:
            problem = "changed after the fork was made (truncated or edited)"
        else:
            continue
        raise RunError(f"{parent / name} {problem}; the fork {fork_dir} shares the records of "
                       f"{parent} up to step {step}. Fix: restore the parent's files, or "
                       "fork it again.")


def lineage_prompts(run_dir: Path, manifest: dict[str, Any]) -> list[Path]:
    """The prompt shards of a run's ancestors up to their fork steps (none for a plain run).

    A fork stores a prompt only if no run of its lineage stored it before (once per history).
    """
    return [p for a in lineage(run_dir, verify=False, manifest=manifest)
            for p in sorted((a.path / "prompts").glob("step-*.parquet"))
            if (n := shard_step(p)) is not None and n <= a.step]
