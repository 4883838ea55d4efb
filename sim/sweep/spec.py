"""Sweep files: a base scenario, fields varied by dotted path, times seeds.

A sweep file::

    name: pd-agreeableness              # outputs go to <out>/<name>/<cell-id>/
    scenario: pd_pair.yaml              # relative to this file, inside its folder
    seeds: [0, 1]
    vary:                               # blocks multiply; each is grid, zip or random
      - grid:
          population.personality.mean.agreeableness: [0.2, 0.5, 0.8]
      - zip:
          rounds: [3, 5]
          stages.0.memory: [1, 2]
      - random:
          n: 4
          seed: 0
          params:
            population.personality.sd: {uniform: [0.05, 0.3]}
            stages.1.decision: {choice: [sample, argmax]}
    run: {backend: hf, max_new_tokens: 24}   # run settings shared by every cell
    max_retries: 2                      # retries of a failing cell before it is marked failed
    cohorts_per_node: 1                 # cohorts (model copies) per Ray node
    threads: null                       # torch threads per cohort (default: the node's cores)

The base scenario must lie in the sweep file's folder or below it (after resolving links):
a sweep copied or shared with its folder then runs what its author ran, and a sweep file
cannot point a sweep service at any readable file. At most :data:`MAX_CELLS` cells.

Everything is checked before anything runs: the sweep file's keys, every dotted path against
the scenario format (and the base scenario's lists), and every cell's scenario through the
scenario validation, so a value of the wrong type is reported at its line in the sweep file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from sim.errors import ScenarioError
from sim.scenario.fields import Number
from sim.scenario.loader import LoadedScenario, load_scenario, read_mapping
from sim.scenario.overrides import culprit
from sim.scenario.pydantic_errors import fix_for as _fix_for
from sim.scenario.pydantic_errors import message_for as _message_for
from sim.scenario.pydantic_errors import short as _short
from sim.scenario.spec import ChoiceStage, DialogueStage, RunConfig, ScenarioSpec, Slug, Strict
from sim.scenario.validate import check_scenario, did_you_mean
from sim.scenario.yaml_source import locate as _locate
from sim.scenario.yaml_source import read_text_file
from sim.sweep.limits import MAX_CELLS, check_cell_count, check_inside
from sim.sweep.paths import apply_overrides, check_path

__all__ = ["MAX_CELLS", "Cell", "LoadedSweep", "SweepSpec", "apply_overrides", "expand",
           "load_sweep_spec"]


_STAGE_KINDS: dict[str, type[BaseModel]] = {"choice": ChoiceStage, "dialogue": DialogueStage}
_NOT_IN_RUN = {"seed": "list seeds under 'seeds'", "out": "pass --out to 'traitlab sweep'",
               "replicas": "list seeds under 'seeds' instead"}
_STARTER = "start from scenarios/sweeps/pd_agreeableness.yaml"


class Distribution(Strict):
    """One random parameter: exactly one of ``uniform``, ``randint`` (inclusive) or ``choice``."""

    uniform: Annotated[list[Number], Field(min_length=2, max_length=2)] | None = None
    randint: Annotated[list[int], Field(min_length=2, max_length=2)] | None = None
    choice: Annotated[list[Any], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [k for k in ("uniform", "randint", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of uniform: [low, high], randint: [low, high] "
                             "or choice: [values]")
        bounds = self.uniform or self.randint
        if bounds is not None and bounds[0] > bounds[1]:
            raise ValueError(f"low {bounds[0]} is above high {bounds[1]}")
        return self


class RandomSpec(Strict):
    """``n`` seeded random draws of the ``params``."""

    n: Annotated[int, Field(ge=1, le=10_000)]
    seed: Annotated[int, Field(ge=0)] = 0
    params: Annotated[dict[str, Distribution], Field(min_length=1)]


class VaryBlock(Strict):
    """Varied fields: a full ``grid``, a ``zip`` of equal-length lists, or ``random`` draws."""

    grid: Annotated[dict[str, Annotated[list[Any], Field(min_length=1)]],
                    Field(min_length=1)] | None = None
    zip: Annotated[dict[str, Annotated[list[Any], Field(min_length=1)]],
                   Field(min_length=1)] | None = None
    random: RandomSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> VaryBlock:
        given = [k for k in ("grid", "zip", "random") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a vary block is exactly one of grid:, zip: or random:")
        return self


class SweepSpec(Strict):
    """A sweep: base scenario, varied fields, seeds, run settings, retries."""

    name: Slug
    scenario: Annotated[str, Field(min_length=1)]
    seeds: Annotated[list[Annotated[int, Field(ge=0, lt=2**63)]],
                     Field(min_length=1, default_factory=lambda: [0])]
    vary: list[VaryBlock] = Field(default_factory=list)
    run: dict[str, Any] = Field(default_factory=dict)
    max_retries: Annotated[int, Field(ge=0, le=20)] = 2
    cohorts_per_node: Annotated[int, Field(ge=1, le=256)] = 1
    threads: Annotated[int, Field(ge=1, le=1024)] | None = None


@dataclass(frozen=True, slots=True)
class Cell:
    """One run of a sweep: the overrides of the base scenario and the seed.

    Attributes:
        id: stable cell id (``c003-1a2b3c``: index and a hash of params and seed).
        index: position in the expansion.
        params: dotted path -> value.
        seed: the run seed.
    """

    id: str
    index: int
    params: dict[str, Any]
    seed: int


@dataclass(frozen=True, slots=True)
class LoadedSweep:
    """A validated sweep file with its base scenario and expanded cells."""

    spec: SweepSpec
    path: Path
    base: LoadedScenario
    run: RunConfig
    cells: list[Cell] = field(default_factory=list)

    def scenario_for(self, cell: Cell) -> ScenarioSpec:
        """The validated scenario of a cell."""
        return ScenarioSpec.model_validate(apply_overrides(self.base.raw, cell.params))


def load_sweep_spec(path: str | Path) -> LoadedSweep:
    """Read and check a sweep file, its base scenario and every cell.

    Raises:
        ScenarioError: for anything wrong, located at file:line (nothing has run yet).
    """
    path = Path(path)
    source = str(path)
    text = read_text_file(path, missing_fix="check the path; example sweeps live in "
                                            "scenarios/sweeps/.")
    root, data = read_mapping(text, source, what="the sweep file",
                              size_fix="sweep files are small; list fewer values.",
                              starter=_STARTER)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise _sweep_error(exc, root, source) from None
    run = _run_config(spec, root, source)
    base_path = (path.parent / spec.scenario)
    check_inside(base_path, path, spec.scenario, root, source)
    if not base_path.is_file():
        line, column = _locate(root, ["scenario"])
        raise ScenarioError(f"base scenario {spec.scenario!r} not found (looked for "
                            f"{base_path}).", file=source, line=line, column=column,
                            field="scenario", value=spec.scenario,
                            fix="give the scenario's path relative to the sweep file.")
    base = load_scenario(base_path)
    for where, dotted in _paths(spec):
        check_path(dotted, base.raw, root, source, where)
    for i, block in enumerate(spec.vary):
        if block.zip is not None and len({len(v) for v in block.zip.values()}) > 1:
            line, column = _locate(root, ["vary", str(i), "zip"])
            sizes = {k: len(v) for k, v in block.zip.items()}
            raise ScenarioError(f"zip lists differ in length: {sizes}.", file=source,
                                line=line, column=column, field=f"vary.{i}.zip", value=sizes,
                                fix="give every zipped path the same number of values, or "
                                    "use grid: for all combinations.")
    check_cell_count(spec, root, source)
    cells = expand(spec)
    for cell in cells:
        _check_cell(cell, spec, base, root, source)
    return LoadedSweep(spec=spec, path=path, base=base, run=run, cells=cells)


def _run_config(spec: SweepSpec, root: yaml.Node, source: str) -> RunConfig:
    for key, fix in _NOT_IN_RUN.items():
        if key in spec.run:
            line, column = _locate(root, ["run", key], key=True)
            raise ScenarioError(f"'{key}' cannot be set per sweep.", file=source, line=line,
                                column=column, field=f"run.{key}", value=key, fix=fix + ".")
    try:
        return RunConfig.model_validate(spec.run)
    except ValidationError as exc:
        raise _sweep_error(exc, root, source, prefix=["run"], model=RunConfig) from None


def _sweep_error(exc: ValidationError, root: yaml.Node, source: str, *,
                 prefix: list[str] | None = None,
                 model: type[BaseModel] = SweepSpec) -> ScenarioError:
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = [*(prefix or []), *(str(p) for p in err["loc"])]
    field_name = ".".join(loc)
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        line, column = _locate(root, loc, key=True)
        allowed = _allowed(model, [str(p) for p in err["loc"]][:-1])
        return ScenarioError(f"unknown key '{loc[-1]}'.", file=source, line=line, column=column,
                             field=field_name, value=loc[-1],
                             fix=f"{did_you_mean(loc[-1], allowed)}allowed keys here: "
                                 f"{', '.join(allowed)}.")
    line, column = _locate(root, loc)
    if kind == "missing":
        return ScenarioError(f"required key '{loc[-1]}' is missing.", file=source, line=line,
                             column=column, field=field_name, fix=f"add '{loc[-1]}:' here.")
    if kind == "too_short" and loc and loc[-1] != "seeds" and isinstance(value, (list, dict)):
        what = "list of values" if isinstance(value, list) else "mapping"
        return ScenarioError(f"empty {what}: this sweeps over nothing.", file=source, line=line,
                             column=column, field=field_name, value=value,
                             fix="give at least one value, or remove the entry.")
    if kind == "value_error":
        if loc and loc[-1] == "api_key_env":
            value = None  # it may be the key itself: never repeat it
        return ScenarioError(f"{err['msg'].removeprefix('Value error, ')}.", file=source,
                             line=line, column=column, field=field_name or None, value=value,
                             fix="see scenarios/sweeps/pd_agreeableness.yaml for the format.")
    return ScenarioError(f"{_message_for(kind, err)}, got {_short(value)}.", file=source,
                         line=line, column=column, field=field_name, value=value,
                         fix=_fix_for(kind, err))


def _allowed(model: type[BaseModel], path: list[str]) -> list[str]:
    current: Any = model
    for part in path:
        if part.isdigit() or current is None:
            continue
        f = current.model_fields.get(part)
        current = _model_of(f.annotation) if f is not None else None
    return list(current.model_fields) if current is not None else []


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------------------------------------
# dotted paths

def _paths(spec: SweepSpec) -> list[tuple[list[str], str]]:
    """(YAML location of the key, dotted path) of every varied field."""
    found = []
    for i, block in enumerate(spec.vary):
        for kind in ("grid", "zip"):
            for dotted in getattr(block, kind) or {}:
                found.append((["vary", str(i), kind, dotted], dotted))
        if block.random is not None:
            for dotted in block.random.params:
                found.append((["vary", str(i), "random", "params", dotted], dotted))
    return found



# ---------------------------------------------------------------------------------------------
# expansion

def _block_rows(block: VaryBlock) -> list[dict[str, Any]]:
    if block.grid is not None:
        keys = list(block.grid)
        return [dict(zip(keys, combo, strict=True))
                for combo in itertools.product(*(block.grid[k] for k in keys))]
    if block.zip is not None:
        keys = list(block.zip)
        return [dict(zip(keys, combo, strict=True))
                for combo in zip(*(block.zip[k] for k in keys), strict=True)]
    assert block.random is not None
    rng = np.random.default_rng(block.random.seed)
    rows: list[dict[str, Any]] = [{} for _ in range(block.random.n)]
    for key in sorted(block.random.params):
        dist = block.random.params[key]
        for row in rows:
            if dist.uniform is not None:
                row[key] = round(float(rng.uniform(*dist.uniform)), 6)
            elif dist.randint is not None:
                row[key] = int(rng.integers(dist.randint[0], dist.randint[1] + 1))
            else:
                assert dist.choice is not None
                row[key] = dist.choice[int(rng.integers(len(dist.choice)))]
    return [{k: row[k] for k in block.random.params} for row in rows]


def expand(spec: SweepSpec) -> list[Cell]:
    """The cells of a sweep: blocks multiplied in order, seeds innermost.

    Raises:
        ValueError: if a zip block's lists differ in length (caught by
            :func:`load_sweep_spec` first).
    """
    for block in spec.vary:
        if block.zip is not None and len({len(v) for v in block.zip.values()}) > 1:
            raise ValueError("zip lists differ in length")
    cells = []
    combos = itertools.product(*(_block_rows(b) for b in spec.vary))
    for combo in combos:
        params: dict[str, Any] = {}
        for row in combo:
            params.update(row)
        for seed in spec.seeds:
            index = len(cells)
            digest = hashlib.sha256(json.dumps([params, seed], sort_keys=True,
                                               default=str).encode()).hexdigest()[:6]
            cells.append(Cell(id=f"c{index:03d}-{digest}", index=index, params=params,
                              seed=seed))
    return cells


def _check_cell(cell: Cell, spec: SweepSpec, base: LoadedScenario, root: yaml.Node,
                source: str) -> None:
    """Validate a cell's scenario; errors point at the varied value in the sweep file."""
    data = apply_overrides(base.raw, cell.params)
    try:
        check_scenario(ScenarioSpec.model_validate(data))
        return
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"] if str(p) not in _STAGE_KINDS]
        kind = err["type"]
        message = (f"{_message_for(kind, err)}, got {_short(err.get('input'))}"
                   if kind not in ("missing", "extra_forbidden")
                   else f"{'required key' if kind == 'missing' else 'unknown key'} "
                        f"'{loc[-1]}' {'is missing' if kind == 'missing' else ''}".rstrip())
        fix = _fix_for(kind, err) if kind not in ("missing", "extra_forbidden") else (
            f"also vary or set the other fields of {'.'.join(loc[:-1])} in the base scenario.")
        bad = ".".join(loc)
    except ScenarioError as exc:
        message, fix, bad = exc.message.rstrip("."), exc.fix or "", exc.field or ""
    dotted = culprit(bad, cell.params)
    where = _value_location(spec, dotted, cell.params[dotted]) if dotted else ["vary"]
    line, column = _locate(root, where)
    value = cell.params.get(dotted) if dotted else None
    text = (f"{message} (cell {cell.id})" if bad == dotted else
            f"with {dotted or 'these values'} = {_short(value)} (cell {cell.id}) the scenario "
            f"is invalid at {bad or 'the top level'}: {message}")
    raise ScenarioError(
        f"{text}.", file=source, line=line,
        column=column, field=dotted or bad or None, value=value,
        fix=fix or "use a value the scenario accepts (see `traitlab schema`).")


def _value_location(spec: SweepSpec, dotted: str, value: Any) -> list[str]:
    for i, block in enumerate(spec.vary):
        for kind in ("grid", "zip"):
            values = (getattr(block, kind) or {}).get(dotted)
            if values is not None:
                for j, v in enumerate(values):
                    if v == value and type(v) is type(value):
                        return ["vary", str(i), kind, dotted, str(j)]
                return ["vary", str(i), kind, dotted]
        if block.random is not None and dotted in block.random.params:
            return ["vary", str(i), "random", "params", dotted]
    return ["vary"]
