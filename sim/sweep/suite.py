"""Replication benchmarks: human results of canonical experiments, as data.

A benchmark file (``scenarios/replicate/NAME.yaml``) names the cells it needs (a library
scenario with design changes), the levels to compare with a published human value, and the
directions (comparative statics: the sign of a difference between two measurements) that
people show. Every reference carries its source and the page or table it comes from, and
whether the figure was checked against the paper (``verified``)::

    name: dictator
    title: Dictator game
    cells:
      dictator:
        scenario: ../dictator.yaml          # relative to the benchmark file
        overrides: {rounds: 6}              # dotted paths, as in a sweep file
        remove_stages: []                   # stages dropped with their flow edges
        scripted:                           # populations of `traitlab replicate --policies`
          human: [{fraction: 1.0, policy: {name: share, p: 0.3}}]
          contrary: [{fraction: 1.0, policy: {name: share, p: 0.6}}]
    levels:
      - id: mean_gift
        label: mean gift, share of the pie
        cell: dictator
        stat: {stage: give, measure: mean, scale: 10}
        human: {value: 0.2835, low: 0.18, high: 0.38, spread: "..."}
        source: {citation: "Engel (2011) ...", where: "p. 583", verified: false, note: "..."}
    directions:
      - id: veto_raises_offers
        label: ...
        a: {cell: ultimatum, stat: {stage: offer, scale: 10}}
        b: {cell: dictator, stat: {stage: give, scale: 10}}
        sign: negative                      # the expected sign of b - a
        source: {...}
    traits: [...]                           # trait-behaviour links (optional)

The statistics themselves are computed by :mod:`analysis.replicate`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError

from sim.errors import ScenarioError
from sim.scenario.loader import load_scenario
from sim.scenario.spec import CohortSpec, ScenarioSpec, Slug, Strict
from sim.scenario.validate import check_scenario
from sim.sweep.paths import apply_overrides

__all__ = ["SUITE_DIR", "Arm", "BenchmarkSpec", "CellSpec", "Direction", "Level", "Source",
           "StatSpec", "Suite", "TraitLink", "cell_scenario", "load_suite"]

SUITE_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "replicate"
"""The shipped benchmark files."""

Text = Annotated[str, Field(min_length=1, max_length=2000)]
Sign = Literal["positive", "negative"]
Policies = Literal["human", "contrary"]


class Source(Strict):
    """Where a human figure comes from: the citation, the page or table, and whether checked."""

    citation: Text
    where: Text
    verified: bool
    note: Annotated[str, Field(max_length=2000)] = ""


class PartnerFilter(Strict):
    """Keep rows whose group's choice in ``stage`` this round lies in ``[min, max]``."""

    stage: Slug
    min: float | None = None
    max: float | None = None


class StatSpec(Strict):
    """One number per choice row of a stage, averaged: ``value / scale`` or ``choice == option``."""

    stage: Slug
    measure: Literal["mean", "share"] = "mean"
    option: str | None = None
    scale: Annotated[float, Field(gt=0)] = 1.0
    rounds: list[Annotated[int, Field(ge=1)]] | None = None
    partner: PartnerFilter | None = None


class Human(Strict):
    """The human value and the range the model's estimate is compared with."""

    value: float
    low: float
    high: float
    spread: Text


class Level(Strict):
    """A statistic of one cell against the human value."""

    id: Slug
    label: Text
    cell: Slug
    stat: StatSpec
    human: Human
    source: Source


class Arm(Strict):
    """One side of a direction: a statistic of a cell."""

    cell: Slug
    stat: StatSpec


class Direction(Strict):
    """A comparative static: the expected sign of ``b - a``."""

    id: Slug
    label: Text
    a: Arm
    b: Arm
    sign: Sign
    source: Source


class TraitLink(Strict):
    """The expected sign of the correlation between a trait and an agent's statistic."""

    id: Slug
    label: Text
    cell: Slug
    trait: Literal["openness", "conscientiousness", "extraversion", "agreeableness",
                   "neuroticism"]
    stat: StatSpec
    sign: Sign
    source: Source


class CellSpec(Strict):
    """A library scenario with design changes, and its scripted reference populations."""

    scenario: Text
    overrides: dict[str, Any] = Field(default_factory=dict)
    remove_stages: list[Slug] = Field(default_factory=list)
    scripted: dict[Policies, list[CohortSpec]] = Field(default_factory=dict)


class BenchmarkSpec(Strict):
    """One benchmark file."""

    name: Slug
    title: Text
    cells: dict[Slug, CellSpec] = Field(default_factory=dict)
    levels: Annotated[list[Level], Field(min_length=1)]
    directions: Annotated[list[Direction], Field(min_length=1)]
    traits: list[TraitLink] = Field(default_factory=list)

    def cell_ids(self) -> list[str]:
        """Every cell the benchmark's statistics read, in first-use order."""
        ids = [x.cell for x in self.levels]
        ids += [arm.cell for d in self.directions for arm in (d.a, d.b)]
        ids += [t.cell for t in self.traits]
        return list(dict.fromkeys(ids))


@dataclass(frozen=True, slots=True)
class Suite:
    """The benchmarks and every cell they define (cell id -> file and spec)."""

    benchmarks: list[BenchmarkSpec]
    cells: dict[str, tuple[Path, CellSpec]]

    def select(self, only: list[str] | None) -> Suite:
        """The named benchmarks only (with the cells they read, wherever defined).

        Raises:
            ScenarioError: a name that is no benchmark.
        """
        if not only:
            return self
        names = [b.name for b in self.benchmarks]
        for name in only:
            if name not in names:
                raise ScenarioError(f"no benchmark {name!r}.", field="--only", value=name,
                                    fix=f"use one or more of: {', '.join(names)}.")
        return Suite([b for b in self.benchmarks if b.name in only], self.cells)

    def cell_ids(self) -> list[str]:
        """The cells the selected benchmarks read."""
        return list(dict.fromkeys(c for b in self.benchmarks for c in b.cell_ids()))


def _read(path: Path) -> BenchmarkSpec:
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML ({exc}).", file=source,
                            fix="fix the YAML syntax.") from None
    try:
        return BenchmarkSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ScenarioError(f"{err['msg']}.", file=source, field=where or None,
                            value=str(err.get("input"))[:80],
                            fix="see scenarios/replicate/README.md for the format.") from None


def load_suite(folder: str | Path = SUITE_DIR) -> Suite:
    """Read every benchmark file of a folder and check its references.

    Raises:
        ScenarioError: a malformed file, a cell defined twice, a statistic reading a cell
            that no file defines, or a cell whose scenario does not validate.
    """
    folder = Path(folder)
    benchmarks, cells = [], {}
    for path in sorted(folder.glob("*.yaml")):
        bench = _read(path)
        for cid, cell in bench.cells.items():
            if cid in cells:
                raise ScenarioError(f"cell {cid!r} is defined twice.", file=str(path),
                                    field=f"cells.{cid}", value=cid,
                                    fix=f"rename it; {cells[cid][0].name} defines it too.")
            cells[cid] = (path, cell)
        benchmarks.append(bench)
    for bench in benchmarks:
        for cid in bench.cell_ids():
            if cid not in cells:
                raise ScenarioError(f"benchmark {bench.name!r} reads cell {cid!r}, which no "
                                    "file defines.", file=str(folder), value=cid,
                                    fix="define it under cells: in one benchmark file.")
    if not benchmarks:
        raise ScenarioError("no benchmark files.", file=str(folder),
                            fix="point at a folder of benchmark YAML files.")
    return Suite(benchmarks, cells)


def _drop_stages(raw: dict[str, Any], drop: list[str]) -> dict[str, Any]:
    """Remove stages and bridge the flow around them (``a -> s -> b`` becomes ``a -> b``)."""
    raw = copy.deepcopy(raw)
    for sid in drop:
        raw["stages"] = [s for s in raw["stages"] if s["id"] != sid]
        flow = raw.get("flow", [])
        into = [e for e in flow if e["to"] == sid]
        out = [e for e in flow if e["from"] == sid]
        kept = [e for e in flow if sid not in (e["from"], e["to"])]
        pairs = {(e["from"], e["to"]) for e in kept}
        for e in into:
            for o in out:
                if (e["from"], o["to"]) not in pairs:
                    kept.append({**e, "to": o["to"]})
                    pairs.add((e["from"], o["to"]))
        raw["flow"] = kept
    return raw


Personas = Literal["uniform", "norms"]

HUMAN_NORMS: dict[str, float] = {
    "openness": 0.651, "conscientiousness": 0.650, "extraversion": 0.584,
    "agreeableness": 0.673, "neuroticism": 0.466,
}
"""Big Five means of human adults on the 0..1 persona scale: Johnson's IPIP-NEO-120 norms
(per-item domain means of men and women under 21, 21-40 and 41-60, averaged unweighted:
O 3.60, C 3.60, E 3.34, A 3.69, N 2.86 on 1..5), mapped by ``(x - 1) / 4``."""

HUMAN_NORMS_SD = 0.15
"""Persona SD on the 0..1 scale (0.6 scale points, the order of a domain score's SD)."""


def cell_scenario(path: Path, cell: CellSpec, policies: Policies | None = None,
                  personas: Personas = "uniform") -> dict[str, Any]:
    """The validated scenario data of a cell (with a scripted population if asked).

    ``personas="norms"`` samples the cell's Big Five personas around human norms
    (:data:`HUMAN_NORMS`) instead of the scenario's own sampler.

    Raises:
        ScenarioError: the scenario is missing or the changes make it invalid.
    """
    base = load_scenario(path.parent / cell.scenario).raw
    raw = apply_overrides(_drop_stages(base, cell.remove_stages), cell.overrides)
    personality = raw["population"].get("personality") or {}
    if personas == "norms" and personality.get("model", "big_five") == "big_five":
        raw["population"]["personality"] = {"model": "big_five", "sample": "normal",
                                            "mean": dict(HUMAN_NORMS), "sd": HUMAN_NORMS_SD}
    if policies is not None and policies in cell.scripted:
        raw["population"]["cohorts"] = [c.model_dump(mode="json", exclude_none=True)
                                        for c in cell.scripted[policies]]
    try:
        check_scenario(ScenarioSpec.model_validate(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ScenarioError(f"the cell's scenario is invalid: {err['msg']}.", file=str(path),
                            field=".".join(str(p) for p in err["loc"]),
                            fix="check the cell's overrides against `traitlab schema`.") \
            from None
    return raw
