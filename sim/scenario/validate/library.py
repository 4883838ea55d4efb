"""Cross-field checks of the scenario library's fields: roles, levels, formulas, offers.

Called by :func:`sim.scenario.validate.core.check_scenario`; like it, every problem is a
:class:`~sim.errors.ScenarioError` naming the dotted field path.
"""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario.spec import BroadcastStage, ChoiceStage, DialogueStage, GroupingSpec, ScenarioSpec
from sim.scenario.validate.core import did_you_mean

__all__ = ["check_dialogue", "check_formulas", "check_levels", "check_roles",
           "check_stage_roles"]

def check_roles(spec: ScenarioSpec) -> None:
    """Role names, how members are given, explicit indices, totals and private values."""
    n, taken, total = spec.population.size, {}, 0
    names = [r.name for r in spec.roles]
    for i, role in enumerate(spec.roles):
        where = f"roles.{i}"
        if names.index(role.name) != i:
            raise ScenarioError(f"duplicate role '{role.name}'.", field=f"{where}.name",
                                value=role.name, fix="give every role a unique name.")
        given = [k for k in ("agents", "count", "fraction") if getattr(role, k) is not None]
        if len(given) != 1:
            raise ScenarioError(
                "a role needs exactly one of 'agents', 'count' or 'fraction'.", field=where,
                fix="write agents: [0], count: 10 or fraction: 0.5.")
        for j, agent in enumerate(role.agents or []):
            if agent >= n or agent in taken:
                raise ScenarioError(
                    f"agent {agent} is outside the population of {n}." if agent >= n
                    else f"agent {agent} is already in role '{taken[agent]}'.",
                    field=f"{where}.agents.{j}", value=agent,
                    fix=f"use agent indices 0..{n - 1}, each in at most one role.")
            taken[agent] = role.name
        total += len(role.agents or []) if role.agents is not None else (
            role.count if role.count is not None else round((role.fraction or 0.0) * n))
        for key, private in role.private.items():
            fixed = private.value is not None
            ranged = private.min is not None and private.max is not None
            if fixed == ranged or (ranged and private.min > private.max):  # type: ignore[operator]
                raise ScenarioError(
                    "a private value needs 'value', or 'min' <= 'max'.",
                    field=f"{where}.private.{key}",
                    fix="write {value: 60} or {min: 40, max: 80, step: 5}.")
    if total > n:
        raise ScenarioError(f"roles add up to {total} agents, more than the population of {n}.",
                            field="roles", value=total, fix="lower the role counts or fractions.")
    if spec.alternate_roles and len(spec.roles) < 2:
        raise ScenarioError("alternate_roles swaps the first two roles, but there are "
                            f"{len(spec.roles)}.", field="alternate_roles",
                            fix="define two roles or remove alternate_roles.")


def _role_ref(value: str, spec: ScenarioSpec, field: str) -> None:
    known = [r.name for r in spec.roles]
    if value not in known:
        raise ScenarioError(
            f"unknown role '{value}'.", field=field, value=value,
            fix=f"{did_you_mean(value, known)}known roles: {', '.join(known)}." if known
            else "define it under 'roles:' first.")


def check_stage_roles(stage: object, spec: ScenarioSpec, where: str) -> None:
    """Every role a stage names (actors, lead, speaker, grouping roles) exists."""
    groups: GroupingSpec = stage.groups  # type: ignore[attr-defined]
    refs = [(f"{where}.actors.{i}", r) for i, r in enumerate(stage.actors or [])]  # type: ignore[attr-defined]
    refs += [(f"{where}.groups.roles.{i}", r) for i, r in enumerate(groups.roles or [])]
    refs += [(f"{where}.groups.among.{i}", r) for i, r in enumerate(groups.among or [])]
    for key in ("lead", "speaker"):
        if getattr(stage, key, None) is not None:
            refs.append((f"{where}.{key}", getattr(stage, key)))
    for field, value in refs:
        _role_ref(value, spec, field)
    if groups.by == "bipartite" and groups.roles is None:
        raise ScenarioError("groups.by 'bipartite' needs two 'roles'.", field=f"{where}.groups",
                            fix="add roles: [buyer, seller].")
    if isinstance(stage, BroadcastStage) and stage.speaker is None \
            and stage.max_new_tokens is not None:
        raise ScenarioError("'max_new_tokens' is only used with a 'speaker'.",
                            field=f"{where}.max_new_tokens",
                            fix="remove it or add speaker: ROLE.")


def check_levels(stage: ChoiceStage, where: str) -> None:
    """Exactly one of ``options`` and ``levels``; levels give 2..64 options."""
    from sim.scenario.options import MAX_LEVELS, level_count

    if (stage.levels is None) == (not stage.options):
        raise ScenarioError("a choice stage needs exactly one of 'options' or 'levels'.",
                            field=where, fix="write options: [a, b] or levels: {min: 0, max: "
                                             "10, step: 1}.")
    if stage.levels is not None:
        count = level_count(stage.levels) if stage.levels.max >= stage.levels.min else 0
        if not 2 <= count <= MAX_LEVELS:
            raise ScenarioError(
                f"levels give {count} option(s); between 2 and {MAX_LEVELS} are allowed.",
                field=f"{where}.levels", fix="check min <= max and the step size.")


def _check_formula_text(source: str, names: set[str], field: str) -> None:
    from sim.scenario.formula import Formula, FormulaError

    try:
        Formula.parse(source, names)
    except FormulaError as exc:
        raise ScenarioError(str(exc) + ".", field=field, value=source,
                            fix="see 'Formulas' in scenarios/README.md.") from None


def _check_payoff_formula(payoff: object, spec: ScenarioSpec, names: set[str],
                          where: str) -> None:
    formula = getattr(payoff, "formula", None)
    if isinstance(formula, str):
        _check_formula_text(formula, names, f"{where}.payoff.formula")
    elif formula is not None:
        for role, source in formula.items():
            _role_ref(role, spec, f"{where}.payoff.formula.{role}")
            _check_formula_text(source, names, f"{where}.payoff.formula.{role}")


def check_formulas(stage: ChoiceStage, spec: ScenarioSpec, where: str) -> None:
    """A choice stage's payoff formula(s) and outcomes parse and use only known names."""
    from sim.engine.stages.formulas import formula_names

    names = formula_names(spec, stage)
    _check_payoff_formula(stage.payoff, spec, names, where)
    for key, source in stage.outcomes.items():
        _check_formula_text(source, names, f"{where}.outcomes.{key}")


def check_dialogue(stage: DialogueStage, spec: ScenarioSpec, where: str) -> None:
    """``stop: accept`` needs offers; a dialogue payoff is a formula of known names."""
    from sim.engine.stages.formulas import formula_names

    if stage.stop == "accept" and not stage.offers:
        raise ScenarioError("stop: accept needs offers: true (acts are read from offers).",
                            field=f"{where}.stop", fix="add offers: true or remove stop.")
    if stage.payoff is not None:
        if stage.payoff.matrix is not None or stage.payoff.coordination is not None \
                or stage.payoff.formula is None:
            raise ScenarioError("a dialogue payoff is a 'formula' (of deal, price, ...).",
                                field=f"{where}.payoff", fix="write formula: \"...\".")
        _check_payoff_formula(stage.payoff, spec, formula_names(spec, stage), where)
