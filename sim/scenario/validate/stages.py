"""Checks of the ``stages:`` list: ids, prompt templates, and each stage kind's own rules."""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario.options import MAX_LEVELS, level_count
from sim.scenario.spec import (
    BroadcastStage,
    ChoiceStage,
    DialogueStage,
    ScenarioSpec,
    SurveyStage,
)
from sim.scenario.validate.ego import check_ego
from sim.scenario.validate.grouping import check_grouping
from sim.scenario.validate.payoffs import check_choice_payoff, check_dialogue_payoff
from sim.scenario.validate.prompts import check_prompt
from sim.scenario.validate.roles import check_stage_roles, role_size
from sim.scenario.validate.suggest import Problems, did_you_mean
from sim.scenario.validate.survey import check_survey

__all__ = ["MAX_CHAT_SIZE", "RESERVED_STAGE_IDS", "check_stages"]

RESERVED_STAGE_IDS = ("start", "end")
MAX_CHAT_SIZE = 12
"""The most agents one dialogue group may hold (a larger group is one long chat)."""


def check_stages(spec: ScenarioSpec) -> Problems:
    """Unique ids, then each stage's template, grouping, roles and kind-specific rules."""
    seen: dict[str, int] = {}
    for i, stage in enumerate(spec.stages):
        where = f"stages.{i}"
        if stage.id in seen:
            yield ScenarioError(
                f"duplicate stage id '{stage.id}' (also stages.{seen[stage.id]}).",
                field=f"{where}.id", value=stage.id, fix="give every stage a unique id.",
            )
        elif stage.id in RESERVED_STAGE_IDS:
            yield ScenarioError(f"'{stage.id}' is reserved for the flow.", field=f"{where}.id",
                                value=stage.id, fix="rename the stage.")
        seen.setdefault(stage.id, i)
        if isinstance(stage, SurveyStage):
            yield from check_survey(stage, spec, where)
            continue
        yield from check_prompt(stage, spec, where)
        yield from check_grouping(stage.groups, spec, f"{where}.groups")
        yield from check_ego(stage, spec, where)
        yield from check_stage_roles(stage, spec, where)
        if isinstance(stage, ChoiceStage):
            yield from _check_choice(stage, spec, where)
        elif isinstance(stage, DialogueStage):
            yield from _check_dialogue(stage, spec, where)
        elif isinstance(stage, BroadcastStage):
            yield from _check_broadcast(stage, where)


def _check_broadcast(stage: BroadcastStage, where: str) -> Problems:
    if stage.stop_at is not None and stage.speaker is None and stage.groups.by != "ego":
        yield ScenarioError(
            "stop_at trims generated messages, but this broadcast is the game master's "
            "fixed text.", field=f"{where}.stop_at", value=stage.stop_at,
            fix="remove stop_at, or set speaker: ROLE (or groups: {by: ego}) so that agents "
                "write the message.")


def _check_choice(stage: ChoiceStage, spec: ScenarioSpec, where: str) -> Problems:
    if (stage.levels is None) == (not stage.options):
        yield ScenarioError("a choice stage needs exactly one of 'options' or 'levels'.",
                            field=where, fix="write options: [a, b] or levels: {min: 0, max: "
                                             "10, step: 1}.")
        return
    if stage.levels is not None:
        count = level_count(stage.levels) if stage.levels.max >= stage.levels.min else 0
        if not 2 <= count <= MAX_LEVELS:
            shown = f"{count} option(s)" if count <= MAX_LEVELS else f"over {MAX_LEVELS} options"
            yield ScenarioError(
                f"levels give {shown}; between 2 and {MAX_LEVELS} are allowed.",
                field=f"{where}.levels", fix="check min <= max and the step size.")
            return
    if stage.option_order is not None and stage.shuffle_options is not None \
            and stage.option_order != ("shuffled" if stage.shuffle_options else "fixed"):
        yield ScenarioError(
            f"shuffle_options: {str(stage.shuffle_options).lower()} contradicts option_order: "
            f"{stage.option_order}.", field=f"{where}.shuffle_options",
            value=stage.shuffle_options,
            fix=f"remove shuffle_options (the older spelling of option_order: shuffled) and "
                f"keep option_order: {stage.option_order}.")
    if len(set(stage.options)) != len(stage.options):
        yield ScenarioError("options must be distinct.", field=f"{where}.options",
                            value=stage.options, fix="remove the repeated option.")
    if stage.answer is not None and stage.answer not in stage.choices:
        yield ScenarioError(
            f"answer '{stage.answer}' is not one of the options.", field=f"{where}.answer",
            value=stage.answer,
            fix=f"{did_you_mean(stage.answer, stage.choices)}use one of: "
                f"{', '.join(stage.choices)}.")
    yield from check_choice_payoff(stage, spec, where)


def _check_dialogue(stage: DialogueStage, spec: ScenarioSpec, where: str) -> Problems:
    if stage.groups.by == "all":
        n = spec.population.size
        among = stage.groups.among
        size = n if among is None else min(n, sum(role_size(r, n) for r in spec.roles
                                                  if r.name in among))
        if size > MAX_CHAT_SIZE:
            everyone = f"all {n} agents" if among is None else f"its {size} agents"
            yield ScenarioError(
                f"groups.by 'all' puts {everyone} in one dialogue, one long chat (at most "
                f"{MAX_CHAT_SIZE} agents per dialogue group).", field=f"{where}.groups.by",
                value="all",
                fix="group dialogue stages by random_pairs, groups_of or neighbours.",
            )
    if stage.stop == "accept" and not stage.offers:
        yield ScenarioError("stop: accept needs offers: true (acts are read from offers).",
                            field=f"{where}.stop", fix="add offers: true or remove stop.")
    yield from check_dialogue_payoff(stage, spec, where)
