"""The entry point: every cross-field check of a scenario, all problems at once.

Pydantic (in :mod:`sim.scenario.spec`) checks types, ranges and unknown keys. What remains,
stage ids named by flow edges, payoff shapes, template fields, network generators and the
population arithmetic, is checked by the modules of this package, each yielding every
:class:`~sim.errors.ScenarioError` it finds with a dotted field path that
:mod:`sim.scenario.loader` turns into a line number.
"""

from __future__ import annotations

from sim.errors import ScenarioError, ScenarioErrors
from sim.scenario.spec import ScenarioSpec
from sim.scenario.validate.flow import check_flow
from sim.scenario.validate.interventions import check_interventions
from sim.scenario.validate.network import check_network
from sim.scenario.validate.population import check_population
from sim.scenario.validate.roles import check_roles
from sim.scenario.validate.stages import check_stages
from sim.scenario.validate.world import check_world

__all__ = ["check_scenario", "scenario_problems"]


def scenario_problems(spec: ScenarioSpec) -> list[ScenarioError]:
    """Every cross-field problem of a (structurally valid) scenario, in the order checked.

    Problems are located by ``field`` only; the loader adds lines and sorts by them. A check
    whose inputs are already wrong is skipped rather than repeating the problem (a payoff
    matrix is not measured against options that are missing).
    """
    return [*check_population(spec), *check_roles(spec), *check_network(spec),
            *check_stages(spec), *check_flow(spec), *check_world(spec),
            *check_interventions(spec)]


def check_scenario(spec: ScenarioSpec) -> None:
    """Run every cross-field check.

    Raises:
        ScenarioError: the one problem found, with ``field`` set to its dotted path, or a
            :class:`~sim.errors.ScenarioErrors` holding every problem when there are several.
    """
    problems = scenario_problems(spec)
    if problems:
        raise ScenarioErrors.of(problems)
