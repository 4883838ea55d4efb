"""Read recorded runs into polars frames: the only reader of run directories.

Example:
    >>> run = load_run("runs/prisoners-dilemma/20261123T101500Z-1a2b3c")   # doctest: +SKIP
    >>> run.events.group_by("round").agg(pl.col("choice").eq("cooperate").mean())  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from sim.errors import RunError
from sim.records.checkpoint import shard_step
from sim.records.lineage import Ancestor, lineage
from sim.records.schemas import (
    AGENT_SCHEMA,
    EVENT_SCHEMA,
    NETWORK_SCHEMA,
    PROMPT_SCHEMA,
    STATE_SCHEMA,
    SURVEY_SCHEMA,
)

__all__ = ["Run", "Sweep", "load_run", "load_sweep", "read_cell", "reading_run", "scan_events"]


@dataclass(frozen=True, slots=True)
class Run:
    """A recorded run. Every frame carries a ``run_id`` column (the directory name).

    Attributes:
        path: the run directory.
        manifest: the parsed ``manifest.json``.
        scenario: the resolved scenario as a dict.
        events: one row per outcome (see :data:`sim.records.schemas.EVENT_SCHEMA`).
        agents: one row per agent and replica.
        network: one row per edge and replica.
        surveys: survey answers of the run's survey stages, one row per administered item
            (see :data:`sim.records.schemas.SURVEY_SCHEMA`; empty with those columns if none);
            :func:`analysis.psychometrics.survey_scores` turns them into trait scores.
        prompts: every distinct request the run sent, once (see
            :data:`sim.records.schemas.PROMPT_SCHEMA`): join on ``prompt_hash`` to see what
            an event's agent was told; ``messages`` is JSON. Empty for runs recorded before
            prompts were stored.
        state: the world state after every step, one row per variable (see
            :data:`sim.records.schemas.STATE_SCHEMA`; empty with those columns when the
            scenario declares no state).
        lineage: for a fork (``traitlab fork``), ``(run_id, step)`` of each run up the
            chain whose rows up to ``step`` the frames include, nearest first; empty for a
            run that is no fork. Every frame's ``run_id`` is this run's.
    """

    path: Path
    manifest: dict[str, Any]
    scenario: dict[str, Any]
    events: pl.DataFrame
    agents: pl.DataFrame
    network: pl.DataFrame
    surveys: pl.DataFrame
    prompts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=PROMPT_SCHEMA))
    state: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=STATE_SCHEMA))
    lineage: tuple[tuple[str, int], ...] = ()

    @property
    def run_id(self) -> str:
        """The run directory's name."""
        return self.path.name


def scan_events(path: str | Path) -> pl.LazyFrame:
    """Lazily scan a run's event shards (with ``run_id``), for large runs.

    A fork's scan includes its lineage's rows up to the fork step (verified first).
    """
    path = Path(path)
    return _scan_shards(path, "events", EVENT_SCHEMA, _ancestors(path))


def _ancestors(path: Path) -> list[Ancestor]:
    """A fork's lineage, verified (no reading at all for a run that is no fork)."""
    manifest = json.loads((path / "manifest.json").read_text())
    return lineage(path, manifest=manifest) if "parent" in manifest else []


def _scan_shards(path: Path, folder: str, schema: dict[str, Any],
                 ancestors: Sequence[Ancestor] = ()) -> pl.LazyFrame:
    """The per-step shards ``path/folder/step-*.parquet`` as one frame, with ``run_id``.

    A fork's shards come after its ancestors' own shards up to their steps (a shard's step
    is in its name, so the files are chosen without reading them).
    """
    shards = [p for a in reversed(ancestors)
              for p in sorted((a.path / folder).glob("step-*.parquet"))
              if (n := shard_step(p)) is not None and n <= a.step]
    shards += sorted((path / folder).glob("step-*.parquet"))
    # Columns added in a later version read as null in shards written before it (a run
    # from an older version, or one resumed across versions), instead of failing the scan.
    lazy = (pl.scan_parquet(shards, schema=schema, missing_columns="insert") if shards
            else pl.DataFrame(schema=schema).lazy())
    return lazy.with_columns(pl.lit(path.name).alias("run_id"))


@contextmanager
def reading_run(path: Path) -> Iterator[None]:
    """Turn a run file that cannot be read (truncated, edited, not parquet) into a RunError.

    The error names the first file of ``path`` that fails to read, and the fix.
    """
    try:
        yield
    except (pl.exceptions.PolarsError, OSError, ValueError, yaml.YAMLError) as exc:
        raise RunError(_unreadable(path, exc)) from None


def _unreadable(path: Path, exc: Exception) -> str:
    """The message for a run directory one of whose files cannot be read."""
    fix = ("Fix: restore it from a copy of the run, or run the scenario again "
           f"(traitlab run {path / 'scenario.yaml'}).")
    readers = {".json": lambda f: json.loads(f.read_text()),
               ".yaml": lambda f: yaml.safe_load(f.read_text()), ".parquet": pl.read_parquet}
    files = [path / "manifest.json", path / "scenario.yaml",
             *sorted(p for p in path.rglob("*.parquet") if p.is_file())]
    for file in files:
        try:
            readers[file.suffix](file)
        except FileNotFoundError:
            continue
        except Exception as err:  # whatever the reader raises: this file is the broken one
            reason = str(err).splitlines()[0][:100] if str(err) else type(err).__name__
            return f"{file} cannot be read ({reason}); it was changed after the run wrote it. {fix}"
    reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
    return f"{path}: the run's records cannot be read ({reason}). {fix}"


def load_run(path: str | Path) -> Run:
    """Load a run directory.

    Raises:
        RunError: if ``path`` is not a run directory, or one of its files cannot be read.
    """
    path = Path(path)
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise RunError(f"{path} is not a run directory (no manifest.json). Fix: pass a "
                       "directory like runs/<scenario>/<time>-<id>/.")
    with reading_run(path):
        return _load(path, manifest_file)


def _load(path: Path, manifest_file: Path) -> Run:
    run_id = path.name

    def read(name: str, schema: dict[str, Any]) -> pl.DataFrame:
        file = path / name
        df = pl.read_parquet(file) if file.is_file() else pl.DataFrame(schema=schema)
        return df.with_columns(pl.lit(run_id).alias("run_id"))

    scenario_file = path / "scenario.yaml"
    ancestors = _ancestors(path)
    return Run(
        path=path,
        manifest=json.loads(manifest_file.read_text()),
        scenario=yaml.safe_load(scenario_file.read_text()) if scenario_file.is_file() else {},
        events=_scan_shards(path, "events", EVENT_SCHEMA, ancestors).collect(),
        agents=read("agents.parquet", AGENT_SCHEMA),
        network=read("network.parquet", NETWORK_SCHEMA),
        surveys=_scan_shards(path, "surveys", SURVEY_SCHEMA, ancestors).collect(),
        prompts=_scan_shards(path, "prompts", PROMPT_SCHEMA, ancestors).collect(),
        state=_scan_shards(path, "state", STATE_SCHEMA, ancestors).collect(),
        lineage=tuple((a.run_id, a.step) for a in ancestors),
    )


def read_cell(path: str | Path) -> dict[str, Any]:
    """A sweep cell's ``cell.json`` (sweep, cell id, params, seed, ...); empty for a plain run."""
    file = Path(path) / "cell.json"
    return json.loads(file.read_text()) if file.is_file() else {}


@dataclass(frozen=True, slots=True)
class Sweep:
    """The complete cells of a sweep, concatenated, with the swept parameters as columns.

    Every frame has ``cell_id``, ``seed`` and one column per varied dotted path (named by the
    path, e.g. ``population.personality.mean.agreeableness``), so a notebook can group by them.

    Attributes:
        path: the sweep directory.
        manifest: the parsed ``sweep.json`` (empty if the cells were gathered without it).
        params: the varied dotted paths.
        cells: one row per cell: id, seed, status, node, attempts, seconds and the params.
        events: every complete cell's events.
        agents: every complete cell's agents.
        surveys: every complete cell's survey answers.
    """

    path: Path
    manifest: dict[str, Any]
    params: list[str]
    cells: pl.DataFrame
    events: pl.DataFrame
    agents: pl.DataFrame
    surveys: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SURVEY_SCHEMA))


def _param_value(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None \
        else json.dumps(value, sort_keys=True)


def load_sweep(path: str | Path) -> Sweep:
    """Load a sweep directory written by ``traitlab sweep``.

    Cells come from ``sweep.json``; directories gathered from several nodes without it are
    read from each cell's ``cell.json``. Only complete cells contribute rows.

    Raises:
        RunError: if ``path`` holds no sweep.
    """
    path = Path(path)
    manifest_file = path / "sweep.json"
    manifest: dict[str, Any] = {}
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text())
        entries = [dict(c) for c in manifest.get("cells", [])]
    else:
        entries = []
        for cell_file in sorted(path.glob("*/cell.json")):
            info = json.loads(cell_file.read_text())
            entries.append({"id": info["cell"], "params": info["params"], "seed": info["seed"],
                            "node": info.get("node"), "attempts": info.get("attempt"),
                            "status": "complete", "seconds": None})
    if not entries:
        raise RunError(f"{path} is not a sweep directory (no sweep.json, no cells). Fix: pass "
                       "the directory 'traitlab sweep' wrote, e.g. runs/<sweep-name>/.")
    params = list(dict.fromkeys(k for c in entries for k in c["params"]))
    rows, events, agents, surveys = [], [], [], []
    for entry in entries:
        cell_dir = path / entry["id"]
        status = entry.get("status")
        if status == "complete" and not (cell_dir / "manifest.json").is_file():
            status = "missing"
        values = {k: _param_value(entry["params"].get(k)) for k in params}
        rows.append({"cell_id": entry["id"], "seed": entry["seed"], "status": status,
                     "node": entry.get("node"), "attempts": entry.get("attempts"),
                     "seconds": entry.get("seconds"), **values})
        if status != "complete":
            continue
        run = load_run(cell_dir)
        extra = [pl.lit(entry["id"]).alias("cell_id"), pl.lit(entry["seed"]).alias("seed"),
                 *(pl.lit(v).alias(k) for k, v in values.items())]
        events.append(run.events.with_columns(extra))
        agents.append(run.agents.with_columns(extra))
        surveys.append(run.surveys.with_columns(extra))

    def concat(frames: list[pl.DataFrame], schema: dict[str, Any]) -> pl.DataFrame:
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(
            schema=schema)

    return Sweep(path=path, manifest=manifest, params=params, cells=pl.DataFrame(rows),
                 events=concat(events, EVENT_SCHEMA), agents=concat(agents, AGENT_SCHEMA),
                 surveys=concat(surveys, SURVEY_SCHEMA))
