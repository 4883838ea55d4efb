"""Prompt templates that can reach only named fields of a typed context.

A template is ``str.format`` syntax restricted to plain dotted names from a fixed list
(``{partner.name}``, ``{round}``): no indexing, no attribute walking beyond the listed names,
no conversions or format specs. Field names are checked when the scenario is loaded.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from sim.scenario.spec import ChoiceStage, SanctionStage, ScenarioSpec, StageBase, SurveyStage

__all__ = ["CHOICE_FIELDS", "DIALOGUE_FIELDS", "SURVEY_FIELDS", "TemplateError",
           "announce_fields", "library_fields", "render", "stage_fields", "template_fields"]

_COMMON = ("name", "round", "rounds", "stage", "score", "group_size", "partner.name",
           "partners", "history")
CHOICE_FIELDS: tuple[str, ...] = (*_COMMON, "options", "partner.last_choice", "my.last_choice")
DIALOGUE_FIELDS: tuple[str, ...] = (*_COMMON, "turns", "partner.last_choice", "my.last_choice")
SURVEY_FIELDS: tuple[str, ...] = ("name", "round", "rounds")
"""Fields of a survey stage's ``prompt`` (a survey sees no partners and no scenario fields)."""


def library_fields(spec: ScenarioSpec) -> tuple[str, ...]:
    """Fields a scenario adds to the fixed lists.

    ``{role}``, ``{partner.role}``, ``{my.KEY}`` for private values, and ``{my.STAGE}``,
    ``{partner.STAGE}``, ``{partners.STAGE}`` (latest choices) for every choice or sanction
    stage; ``{state.X}``, ``{my.state.Y}`` and ``{partner.state.Y}`` (the first partner's)
    for world-state variables (their values when the prompt is written).
    """
    stages = [s.id for s in spec.stages if isinstance(s, ChoiceStage | SanctionStage)]
    private = sorted({k for r in spec.roles for k in r.private})
    return ("role", "partner.role", *(f"my.{k}" for k in private),
            *(f"{who}.{sid}" for sid in stages for who in ("my", "partner", "partners")),
            *(f"state.{k}" for k in spec.state),
            *(f"{who}.state.{k}" for k in spec.agent_state for who in ("my", "partner")))


def stage_fields(spec: ScenarioSpec, stage: StageBase) -> tuple[str, ...]:
    """Every field the ``prompt`` of ``stage`` (a stage of ``spec``) may use."""
    if isinstance(stage, SurveyStage):
        return SURVEY_FIELDS
    fixed = CHOICE_FIELDS if isinstance(stage, ChoiceStage | SanctionStage) else DIALOGUE_FIELDS
    return (*fixed, *library_fields(spec))


class TemplateError(ValueError):
    """A template uses a field, conversion or format spec that is not allowed."""


def announce_fields(spec: ScenarioSpec) -> tuple[str, ...]:
    """Fields of an intervention's ``announce`` (filled once its ``set`` applied).

    ``{round}``, ``{rounds}``, ``{n_agents}``, ``{state.X}`` and ``{params.Z}``. An
    announcement is one text for every agent it reaches, so it has no per-agent fields.
    """
    return ("round", "rounds", "n_agents", *(f"state.{k}" for k in spec.state),
            *(f"params.{k}" for k in spec.params))


def template_fields(template: str, allowed: Iterable[str]) -> list[str]:
    """Return the fields a template uses, raising if any is not in ``allowed``.

    Raises:
        TemplateError: on a malformed template, an unknown field, a conversion (``!r``) or a
            format spec (``:>10``).
    """
    allowed = tuple(allowed)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"malformed template ({exc}); write literal braces as {{{{ }}}}") \
            from exc
    fields = []
    for _text, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in allowed:
            raise TemplateError(
                f"unknown template field {{{field}}}; allowed: "
                + ", ".join(f"{{{f}}}" for f in allowed)
            )
        if conversion or spec:
            raise TemplateError(f"template field {{{field}}} may not use '!' or ':' modifiers")
        fields.append(field)
    return fields


def render(template: str, context: Mapping[str, object]) -> str:
    """Fill a (validated) template from a flat ``{dotted name: value}`` context."""
    out = []
    for text, field, _spec, _conversion in string.Formatter().parse(template):
        out.append(text)
        if field is not None:
            value = context.get(field)
            out.append("nothing yet" if value is None else str(value))
    return "".join(out)
