"""Cross-field checks of survey stages: instrument, opt-in, rounds, items, controls.

Called by :func:`sim.scenario.validate.check_scenario`; every problem is a
:class:`~sim.errors.ScenarioError` naming the dotted field path, the bad value and a fix.
"""

from __future__ import annotations

from sim.errors import ScenarioError, TraitLabError
from sim.scenario.spec import ScenarioSpec, SurveyStage
from sim.scenario.validate.population import scripted_count
from sim.scenario.validate.prompts import check_prompt
from sim.scenario.validate.roles import check_stage_roles
from sim.scenario.validate.suggest import Problems, did_you_mean

__all__ = ["check_survey"]


def check_survey(stage: SurveyStage, spec: ScenarioSpec, where: str) -> Problems:
    """Check one survey stage (``where``: its dotted path, ``stages.3``)."""
    yield from check_prompt(stage, spec, where)
    if "groups" in stage.model_fields_set:
        yield ScenarioError(
            "a survey asks every language-model agent on its own; it has no groups.",
            field=f"{where}.groups", fix="remove 'groups' (use actors: [ROLE] to survey only "
                                         "some roles).")
    yield from check_stage_roles(stage, spec, where)
    if "memory" in stage.model_fields_set and stage.mode != "in_situ":
        yield ScenarioError(
            "'memory' is only used with mode: in_situ (an isolated survey shows no memory).",
            field=f"{where}.memory", value=stage.memory,
            fix="remove 'memory' or set mode: in_situ.")
    yield from _check_instrument(stage, where)
    for j, round_ in enumerate(stage.rounds or []):
        if round_ > spec.rounds:
            yield ScenarioError(
                f"round {round_} is beyond the scenario's {spec.rounds} rounds.",
                field=f"{where}.rounds.{j}", value=round_,
                fix=f"use rounds 1..{spec.rounds}, or raise the scenario's 'rounds'.")
    if len(set(stage.orders)) != len(stage.orders):
        yield ScenarioError("option orders must be distinct.", field=f"{where}.orders",
                            value=stage.orders, fix="write orders: [asc, desc] or one of them.")
    yield from _check_has_respondents(spec, where)


def _check_instrument(stage: SurveyStage, where: str) -> Problems:
    # the instrument catalogue lives in agents/, a layer above; only survey stages need it
    from agents.instruments import available_instruments, load_instrument

    free = available_instruments()
    restricted = [n for n in available_instruments(allow_restricted=True) if n not in free]
    name = stage.instrument.strip().lower().replace("_", "-")
    if name in restricted and not stage.allow_restricted:
        yield ScenarioError(
            f"instrument '{stage.instrument}' is restricted (non-commercial research use "
            "only) and needs an explicit opt-in.", field=f"{where}.instrument",
            value=stage.instrument,
            fix="add 'allow_restricted: true' to the stage after reading "
                f"agents/instruments/restricted/LICENSE-NOTICE.md, or use one of: "
                f"{', '.join(free)}.")
        return
    if name not in free and name not in restricted:
        yield ScenarioError(
            f"unknown instrument '{stage.instrument}'.", field=f"{where}.instrument",
            value=stage.instrument,
            fix=f"{did_you_mean(name, free + restricted)}use one of: {', '.join(free)} "
                f"(restricted, with allow_restricted: true: {', '.join(restricted)}).")
        return
    if stage.allow_restricted and name not in restricted:
        yield ScenarioError(
            f"'allow_restricted' opts in to a restricted instrument, but '{stage.instrument}' "
            "is public domain.", field=f"{where}.allow_restricted",
            fix="remove 'allow_restricted'.")
    try:
        inst = load_instrument(name, allow_restricted=stage.allow_restricted)
    except TraitLabError as exc:  # pragma: no cover - data files ship with the package
        yield ScenarioError(str(exc), field=f"{where}.instrument", value=stage.instrument,
                            fix="reinstall traitlab.")
        return
    ids = [item.id for item in inst.items]
    for j, item in enumerate(stage.items or []):
        if item not in ids:
            yield ScenarioError(
                f"'{item}' is not an item of {inst.name}.", field=f"{where}.items.{j}",
                value=item, fix=f"{did_you_mean(item, ids)}use item ids such as "
                                f"{', '.join(ids[:4])} (agents/instruments/).")


def _check_has_respondents(spec: ScenarioSpec, where: str) -> Problems:
    """Scripted agents are not surveyed: a population of scripted agents only has nobody."""
    if scripted_count(spec) >= spec.population.size:
        yield ScenarioError(
            "every agent has a scripted policy, and scripted agents are not surveyed: the "
            "survey would have no respondents.", field=f"{where}.kind", value="survey",
            fix="remove the survey stage, or leave some agents to the language model (a "
                "cohort without 'policy').")
