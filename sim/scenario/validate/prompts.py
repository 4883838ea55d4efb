"""Check of a stage's ``prompt`` template against the fields its kind offers."""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario.spec import ScenarioSpec, StageBase
from sim.scenario.templates import TemplateError, stage_fields, template_fields
from sim.scenario.validate.suggest import Problems

__all__ = ["check_prompt"]


def check_prompt(stage: StageBase, spec: ScenarioSpec, where: str) -> Problems:
    """The stage's ``prompt`` uses only the template fields its kind offers."""
    try:
        template_fields(stage.prompt, stage_fields(spec, stage))
    except TemplateError as exc:
        yield ScenarioError(str(exc) + ".", field=f"{where}.prompt",
                            fix="use only the listed fields.")
