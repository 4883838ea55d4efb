"""The only writer: run directory, manifest, resolved scenario, per-step parquet shards.

Every file is written atomically (a temporary file in the same directory, then
``os.replace``), so a reader never sees a partial file. Layout::

    runs/<scenario>/<utc-time>-<short-id>/
        manifest.json  scenario.yaml  agents.parquet  network.parquet
        events/step-000001.parquet ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import yaml

from sim import __version__
from sim.backends.base import ModelInfo
from sim.errors import RunError
from sim.loader import spec_hash
from sim.records import AGENT_SCHEMA, EVENT_SCHEMA, NETWORK_SCHEMA, frame
from sim.spec import RunConfig, ScenarioSpec

if TYPE_CHECKING:
    from sim.simulation import Simulation

__all__ = ["Recorder", "atomic_write"]

_PACKAGES = ("torch", "transformers", "mesa", "networkx", "pydantic", "polars", "numpy", "ray")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` via ``write(tmp)`` into a temporary sibling, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


class Recorder:
    """Writes one run directory. Create with :meth:`create`."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._started = time.perf_counter()

    @classmethod
    def create(cls, config: RunConfig, spec: ScenarioSpec, model: ModelInfo,
               *, command: list[str] | None = None) -> Recorder:
        """Make a fresh run directory under ``config.out / spec.name`` and write its header.

        Raises:
            RunError: if the output directory cannot be created.
        """
        root = config.out.expanduser().resolve() / spec.name
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        try:
            root.mkdir(parents=True, exist_ok=True)
            for _ in range(100):
                path = root / f"{stamp}-{secrets.token_hex(3)}"
                with contextlib.suppress(FileExistsError):
                    path.mkdir()
                    break
            else:  # pragma: no cover - 100 collisions of 24 random bits
                raise RunError(f"could not create a fresh run directory under {root}.")
        except OSError as exc:
            raise RunError(f"cannot write runs under {root}: {exc.strerror}. Fix: pass "
                           "--out with a writable directory.") from None
        manifest: dict[str, Any] = {
            "traitlab": __version__, "run_id": path.name, "scenario": spec.name,
            "spec_hash": spec_hash(spec), "seed": config.seed, "replicas": config.replicas,
            "run_config": config.model_dump(mode="json"), "model": dataclasses.asdict(model),
            "packages": _versions(), "git_commit": _git_commit(), "command": command,
            "status": "running", "started_at": datetime.now(UTC).isoformat(),
            "finished_at": None, "steps_completed": 0, "events": 0,
            "tokens": {"prompt": 0, "new": 0, "cached": 0}, "failures": 0,
            "timings": {"wall_s": 0.0, "model_s": 0.0, "steps": []},
        }
        recorder = cls(path, manifest)
        resolved = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        atomic_write(path / "scenario.yaml",
                     lambda p: p.write_text(yaml.safe_dump(resolved, sort_keys=False)))
        recorder._flush_manifest()
        return recorder

    def write_population(self, simulations: Iterable[Simulation]) -> None:
        """Write ``agents.parquet`` and ``network.parquet`` for every replica."""
        agents, edges = [], []
        for sim in simulations:
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
                })
            if sim.network is not None:
                edges.extend({"replica": sim.replica, "source": f"a{a:03d}",
                              "target": f"a{b:03d}"} for a, b in sim.network.edges())
        self._write_parquet("agents.parquet", frame(agents, AGENT_SCHEMA))
        self._write_parquet("network.parquet", frame(edges, NETWORK_SCHEMA))

    def record_step(self, step: int, rows: list[dict[str, Any]], *, seconds: float,
                    tokens: Mapping[str, int], model_seconds: float, failures: int) -> None:
        """Write one step's event shard, then the manifest's progress."""
        self._write_parquet(f"events/step-{step:06d}.parquet", frame(rows, EVENT_SCHEMA))
        m = self.manifest
        m["steps_completed"] = step
        m["events"] += len(rows)
        m["tokens"] = dict(tokens)
        m["failures"] = failures
        m["timings"]["steps"].append(round(seconds, 4))
        m["timings"]["model_s"] = round(model_seconds, 3)
        m["timings"]["wall_s"] = round(time.perf_counter() - self._started, 3)
        self._flush_manifest()

    def finish(self, status: str) -> None:
        """Mark the run ``complete``, ``failed`` or ``interrupted``."""
        self.manifest["status"] = status
        self.manifest["finished_at"] = datetime.now(UTC).isoformat()
        self.manifest["timings"]["wall_s"] = round(time.perf_counter() - self._started, 3)
        self._flush_manifest()

    def _write_parquet(self, name: str, df: pl.DataFrame) -> None:
        atomic_write(self.path / name, lambda p: df.write_parquet(p))

    def _flush_manifest(self) -> None:
        _write_json(self.path / "manifest.json", self.manifest)
