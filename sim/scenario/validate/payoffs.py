"""Checks of what a stage earns: payoff shapes, and formulas that use only known names."""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario.formula import Formula, FormulaError, formula_names, state_names
from sim.scenario.spec import ChoiceStage, DialogueStage, PayoffSpec, ScenarioSpec
from sim.scenario.validate.roles import check_role_ref
from sim.scenario.validate.suggest import Problems

__all__ = ["PAIRWISE", "check_choice_payoff", "check_dialogue_payoff"]

PAIRWISE = ("random_pairs", "groups_of", "round_robin", "neighbours", "fixed", "bipartite",
            "neighbour_sample", "ego")
"""Grouping rules whose groups are pairs (or small groups) a payoff matrix can score."""


def check_choice_payoff(stage: ChoiceStage, spec: ScenarioSpec, where: str) -> Problems:
    """Exactly one payoff form, a matrix that fits the options, formulas of known names."""
    names = formula_names(spec, stage)
    if stage.payoff is not None:
        yield from _check_payoff(stage, stage.payoff, spec, names, where)
    for key, source in stage.outcomes.items():
        yield from _check_formula_text(source, names, f"{where}.outcomes.{key}", spec)


def _check_payoff(stage: ChoiceStage, payoff: PayoffSpec, spec: ScenarioSpec, names: set[str],
                  where: str) -> Problems:
    given = [k for k in ("matrix", "coordination", "formula") if getattr(payoff, k) is not None]
    if len(given) != 1:
        yield ScenarioError(
            "a payoff needs exactly one of 'matrix', 'coordination' or 'formula'"
            + (f" (got {', '.join(given)})." if given else "."),
            field=f"{where}.payoff",
            fix="write matrix: [[...], ...], coordination: {success: 1, failure: 0} or "
                "formula: \"...\".",
        )
        return
    if payoff.matrix is not None:
        yield from _check_matrix(stage, payoff.matrix, where)
    yield from _check_payoff_formula(payoff, spec, names, where)


def check_dialogue_payoff(stage: DialogueStage, spec: ScenarioSpec, where: str) -> Problems:
    """A dialogue payoff is a formula (of ``deal``, ``price``, ...) of known names."""
    payoff = stage.payoff
    if payoff is None:
        return
    if payoff.matrix is not None or payoff.coordination is not None or payoff.formula is None:
        yield ScenarioError("a dialogue payoff is a 'formula' (of deal, price, ...).",
                            field=f"{where}.payoff", fix="write formula: \"...\".")
        return
    yield from _check_payoff_formula(payoff, spec, formula_names(spec, stage), where)


def _check_matrix(stage: ChoiceStage, matrix: list[list[float]], where: str) -> Problems:
    n = len(stage.choices)
    if len(matrix) != n or any(len(row) != n for row in matrix):
        widths = [len(row) for row in matrix]
        if not matrix:
            shape = "empty"
        elif len(set(widths)) == 1:
            shape = f"{len(matrix)}x{widths[0]}"
        else:
            shape = f"ragged (rows of {', '.join(map(str, widths))} entries)"
        yield ScenarioError(
            f"payoff matrix is {shape} but the stage has {n} options.",
            field=f"{where}.payoff.matrix", value=matrix,
            fix=f"write a {n}x{n} matrix: one row per own option, one column per partner option.",
        )
    if stage.groups.by not in PAIRWISE:
        yield ScenarioError(
            "a payoff matrix scores pairs, but the stage groups everyone together.",
            field=f"{where}.groups.by", value=stage.groups.by,
            fix="set groups: {by: random_pairs} or {by: neighbours}.",
        )


def _check_formula_text(source: str, names: set[str], field: str, spec: ScenarioSpec
                        ) -> Problems:
    try:
        Formula.parse(source, names, texts=state_names(spec, agent=True)[1])
    except FormulaError as exc:
        yield ScenarioError(str(exc) + ".", field=field, value=source,
                            fix="see 'Formulas' in scenarios/README.md.")


def _check_payoff_formula(payoff: PayoffSpec, spec: ScenarioSpec, names: set[str],
                          where: str) -> Problems:
    formula = payoff.formula
    if isinstance(formula, str):
        yield from _check_formula_text(formula, names, f"{where}.payoff.formula", spec)
    elif formula is not None:
        for role, source in formula.items():
            yield from check_role_ref(role, spec, f"{where}.payoff.formula.{role}")
            yield from _check_formula_text(source, names, f"{where}.payoff.formula.{role}",
                                           spec)
