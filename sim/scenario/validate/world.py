"""Checks of world state: declarations, stage updates, and conditions on state.

Declarations: a numeric variable's bounds are ordered and hold its ``initial``; a
categorical one's ``initial`` is one of its ``values``. Updates: each names a declared
variable, reads only known names, and reads no variable that a later update of the same
stage changes (the order would be ambiguous, and two updates reading each other are a
cycle). Conditions (``stop``, ``while: {state}``, ``max_formula``) read known names, and a
condition on state needs ``rounds`` written out, so that a run ends even if it never turns.
"""

from __future__ import annotations

from collections.abc import Iterable

from sim.errors import ScenarioError
from sim.scenario.formula import (
    Formula,
    FormulaError,
    condition_names,
    state_names,
    update_names,
)
from sim.scenario.formula_names import (
    AGENT_UPDATE_NAMES,
    BASE_NAMES,
    DEAL_NAMES,
    UPDATE_NAMES,
    WORLD_NAMES,
)
from sim.scenario.spec import ChoiceStage, ScenarioSpec, StageBase, StateVarSpec
from sim.scenario.validate.suggest import Problems, did_you_mean
from sim.scenario.world import update_target

__all__ = ["check_literals", "check_world"]

_FIX = "see 'State' in scenarios/README.md."
# Names every formula already gives a value of its own: a param so named would never be read.
_BUILT_IN = frozenset({*BASE_NAMES, *DEAL_NAMES, *WORLD_NAMES, *UPDATE_NAMES,
                       *AGENT_UPDATE_NAMES})


def check_world(spec: ScenarioSpec) -> Problems:
    """Every problem of the scenario's state, its updates and its conditions on state."""
    for name in spec.params:
        if name in _BUILT_IN:
            yield ScenarioError(
                f"param '{name}' has the name of a value formulas already have ({name} is "
                "built in), so formulas would never read the param.", field=f"params.{name}",
                value=name, fix=f"rename it (e.g. {name}_param) where it is declared and used.")
    for scope, variables in (("state", spec.state), ("agent_state", spec.agent_state)):
        for name, var in variables.items():
            yield from _check_var(var, f"{scope}.{name}")
    for i, stage in enumerate(spec.stages):
        yield from _check_updates(stage, spec, f"stages.{i}")
        levels = getattr(stage, "levels", None)
        if levels is not None and levels.max_formula is not None:
            yield from _check_condition(levels.max_formula, spec, f"stages.{i}.levels.max_formula",
                                        agent=True)
    conditions = [(f"flow.{i}.while.state", e.while_.state) for i, e in enumerate(spec.flow or [])
                  if e.while_ is not None and e.while_.state is not None]
    if spec.stop is not None:
        conditions.append(("stop", spec.stop))
    for where, source in conditions:
        yield from _check_condition(source, spec, where)
    if conditions and "rounds" not in spec.model_fields_set:
        where, source = conditions[0]
        yield ScenarioError(
            "a condition on state needs a round limit: without 'rounds' the run has one "
            "round, and a condition that never turns would not end it.", field=where,
            value=source, fix="write rounds: N (the most rounds the run may last).")


def _check_var(var: StateVarSpec, where: str) -> Problems:
    if var.values is not None:
        if var.min is not None or var.max is not None:
            yield ScenarioError("a categorical variable (values: [...]) has no min or max.",
                                field=where, fix="remove min and max, or remove values.")
        if var.initial not in var.values:
            yield ScenarioError(
                f"initial {var.initial!r} is not one of the variable's values.",
                field=f"{where}.initial", value=var.initial,
                fix=f"{did_you_mean(str(var.initial), var.values)}use one of: "
                    f"{', '.join(var.values)}.")
        return
    if isinstance(var.initial, str):
        yield ScenarioError(
            f"initial {var.initial!r} is text, but the variable has no values: [...].",
            field=f"{where}.initial", value=var.initial,
            fix=f"write a number, or declare values: [{var.initial}, ...].")
        return
    if var.min is not None and var.max is not None and var.min > var.max:
        yield ScenarioError(f"min {var.min:g} is above max {var.max:g}.", field=f"{where}.min",
                            value=var.min, fix="swap min and max.")
    elif (var.min is not None and var.initial < var.min) \
            or (var.max is not None and var.initial > var.max):
        bounds = f"[{'-inf' if var.min is None else f'{var.min:g}'}, " \
                 f"{'inf' if var.max is None else f'{var.max:g}'}]"
        yield ScenarioError(f"initial {var.initial:g} is outside the bounds {bounds}.",
                            field=f"{where}.initial", value=var.initial,
                            fix="write an initial value within min and max.")


def _parse(source: str, names: set[str], texts: set[str], where: str,
           text_result: bool = False) -> tuple[Formula | None, list[ScenarioError]]:
    try:
        return Formula.parse(source, names, texts=texts, text_result=text_result), []
    except FormulaError as exc:
        return None, [ScenarioError(str(exc) + ".", field=where, value=source, fix=_FIX)]


def check_literals(formula: Formula, spec: ScenarioSpec, where: str,
                   stage: StageBase | None = None, target: StateVarSpec | None = None
                   ) -> Problems:
    """Every string a formula compares to (or gives) is a value of its categorical name."""
    for name, text in sorted(formula.literals):
        if name == "":
            allowed = list(target.values or []) if target is not None else []
        elif name == "my.choice":
            if not isinstance(stage, ChoiceStage):
                continue
            allowed = stage.choices
        else:
            scope, key = name.rsplit(".", 1)
            var = (spec.agent_state if scope == "my.state" else spec.state).get(key)
            allowed = list(var.values or []) if var is not None else []
        if text not in allowed:
            what = "the variable" if name == "" else name
            yield ScenarioError(
                f"{text!r} is not a value of {what}.", field=where, value=formula.source,
                fix=f"{did_you_mean(text, allowed)}use one of: {', '.join(allowed)}.")


def _check_condition(source: str, spec: ScenarioSpec, where: str, *,
                     agent: bool = False) -> Problems:
    texts = state_names(spec, agent=agent)[1]
    formula, problems = _parse(source, condition_names(spec, agent=agent), texts, where)
    yield from problems
    if formula is not None:
        yield from check_literals(formula, spec, where)


def _check_updates(stage: StageBase, spec: ScenarioSpec, where: str) -> Problems:
    updates: dict[str, str] = getattr(stage, "update", {})
    targets = list(updates)
    for k, (target, source) in enumerate(updates.items()):
        field = f"{where}.update.{target}"
        scope, name = update_target(target)
        declared = spec.state if scope == "global" else spec.agent_state
        if name not in declared:
            section = "state" if scope == "global" else "agent_state"
            yield ScenarioError(
                f"update of an undeclared variable '{target}'.", field=field, value=target,
                fix=f"{did_you_mean(name, list(declared))}declare it under {section}: "
                    f"(known: {', '.join(declared) or 'none'}).")
            continue
        var = declared[name]
        names, texts = update_names(spec, agent=scope == "agent")
        formula, problems = _parse(source, names, texts, field, text_result=var.categorical)
        yield from problems
        if formula is None:
            continue
        yield from check_literals(formula, spec, field, stage, var)
        yield from _check_order(formula, target, targets[k + 1:], field)


def _check_order(formula: Formula, target: str, later: Iterable[str], field: str) -> Problems:
    later = [t for t in later if t != target]
    read = sorted(formula.names & set(later))
    if read:
        yield ScenarioError(
            f"the update of {target} reads {', '.join(read)}, which a later update of this "
            "stage changes: updates apply in the order written, so it would read the old "
            "value (two updates reading each other are a cycle).", field=field,
            value=formula.source,
            fix=f"move the update of {read[0]} before {target}'s, or read it in a later stage.")
