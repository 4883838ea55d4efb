"""Read recorded runs into polars frames: the only reader of run directories.

Example:
    >>> run = load_run("runs/prisoners-dilemma/20261123T101500Z-1a2b3c")   # doctest: +SKIP
    >>> run.events.group_by("round").agg(pl.col("choice").eq("cooperate").mean())  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from sim.errors import RunError
from sim.records import AGENT_SCHEMA, EVENT_SCHEMA, NETWORK_SCHEMA

__all__ = ["Run", "load_run", "scan_events"]


@dataclass(frozen=True, slots=True)
class Run:
    """A recorded run. Every frame carries a ``run_id`` column (the directory name).

    Attributes:
        path: the run directory.
        manifest: the parsed ``manifest.json``.
        scenario: the resolved scenario as a dict.
        events: one row per outcome (see :data:`sim.records.EVENT_SCHEMA`).
        agents: one row per agent and replica.
        network: one row per edge and replica.
        surveys: survey answers, if the run administered any (else an empty frame).
    """

    path: Path
    manifest: dict[str, Any]
    scenario: dict[str, Any]
    events: pl.DataFrame
    agents: pl.DataFrame
    network: pl.DataFrame
    surveys: pl.DataFrame

    @property
    def run_id(self) -> str:
        """The run directory's name."""
        return self.path.name


def scan_events(path: str | Path) -> pl.LazyFrame:
    """Lazily scan a run's event shards (with ``run_id``), for large runs."""
    path = Path(path)
    shards = sorted((path / "events").glob("step-*.parquet"))
    if not shards:
        return pl.DataFrame(schema=EVENT_SCHEMA).lazy().with_columns(
            pl.lit(path.name).alias("run_id"))
    return pl.scan_parquet(shards).with_columns(pl.lit(path.name).alias("run_id"))


def load_run(path: str | Path) -> Run:
    """Load a run directory.

    Raises:
        RunError: if ``path`` is not a run directory.
    """
    path = Path(path)
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise RunError(f"{path} is not a run directory (no manifest.json). Fix: pass a "
                       "directory like runs/<scenario>/<time>-<id>/.")
    run_id = path.name

    def read(name: str, schema: dict[str, Any]) -> pl.DataFrame:
        file = path / name
        df = pl.read_parquet(file) if file.is_file() else pl.DataFrame(schema=schema)
        return df.with_columns(pl.lit(run_id).alias("run_id"))

    scenario_file = path / "scenario.yaml"
    surveys = path / "surveys.parquet"
    return Run(
        path=path,
        manifest=json.loads(manifest_file.read_text()),
        scenario=yaml.safe_load(scenario_file.read_text()) if scenario_file.is_file() else {},
        events=scan_events(path).collect(),
        agents=read("agents.parquet", AGENT_SCHEMA),
        network=read("network.parquet", NETWORK_SCHEMA),
        surveys=(pl.read_parquet(surveys).with_columns(pl.lit(run_id).alias("run_id"))
                 if surveys.is_file() else pl.DataFrame()),
    )
