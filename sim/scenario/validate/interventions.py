"""Checks of interventions, in a scenario or in a file given to a run (``--intervene``).

Each intervention has a unique id and exactly one trigger (``at`` or ``when``); ``at.round``
is within ``rounds``; ``set`` names declared state variables and params and its formulas read
known names; ``to``, ``policy`` and ``conditioning`` name known roles, cohorts and agents;
``edges`` need a network and join two different agents of the population; and an
intervention changes something.
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.errors import ScenarioError
from sim.scenario.formula import Formula, FormulaError, condition_names, state_names
from sim.scenario.intervention_spec import InterventionSpec, ReachSpec, set_target
from sim.scenario.spec import ScenarioSpec
from sim.scenario.templates import TemplateError, announce_fields, template_fields
from sim.scenario.validate.population import check_policy
from sim.scenario.validate.suggest import Problems, did_you_mean
from sim.scenario.validate.world import check_literals

__all__ = ["check_interventions", "cohort_names", "intervention_problems"]

_FIX = "see 'Interventions' in scenarios/README.md."


def cohort_names(spec: ScenarioSpec) -> list[str]:
    """Every cohort's name as agents carry it (``cohortN`` for an unnamed one)."""
    return [c.name or f"cohort{i}" for i, c in enumerate(spec.population.cohorts)]


def check_interventions(spec: ScenarioSpec) -> Problems:
    """Every problem of the scenario's own ``interventions:``."""
    yield from intervention_problems(spec, spec.interventions)


def intervention_problems(spec: ScenarioSpec, items: Sequence[InterventionSpec], *,
                          where: str = "interventions", taken: Sequence[str] = (),
                          require_trigger: bool = True) -> Problems:
    """Every problem of ``items`` against ``spec`` (fields under ``where``).

    ``taken``: ids already in use (the scenario's own, for a file given to a run);
    ``require_trigger``: refuse an intervention with neither ``at`` nor ``when`` (a file
    applied at once, as a fork does, may leave both out).
    """
    seen: dict[str, str] = {i: "the scenario" for i in taken}
    for k, item in enumerate(items):
        at = f"{where}.{k}"
        if item.id in seen:
            yield ScenarioError(f"duplicate intervention id '{item.id}' (also {seen[item.id]}).",
                                field=f"{at}.id", value=item.id,
                                fix="give every intervention a unique id.")
        seen.setdefault(item.id, at)
        yield from _check_trigger(item, spec, at, require_trigger)
        yield from _check_set(item, spec, at)
        yield from _check_announce(item, spec, at)
        yield from _check_reach(item, spec, at)
        yield from _check_swaps(item, spec, at)
        yield from _check_edges(item, spec, at)


def _check_trigger(item: InterventionSpec, spec: ScenarioSpec, at: str,
                   require: bool) -> Problems:
    if item.at is not None and item.when is not None:
        yield ScenarioError("an intervention has one trigger: 'at' or 'when', not both.",
                            field=f"{at}.when", value=item.when,
                            fix="remove 'when' (fire at the round) or 'at' (fire on the "
                                "condition).")
    elif require and item.at is None and item.when is None:
        yield ScenarioError(f"intervention '{item.id}' has no trigger.", field=at,
                            value=item.id, fix="add at: {round: N} or when: \"<condition>\".")
    if item.at is not None and item.at.round > spec.rounds:
        yield ScenarioError(f"round {item.at.round} is beyond the run's {spec.rounds} "
                            "round(s): the intervention would never fire.",
                            field=f"{at}.at.round", value=item.at.round,
                            fix=f"use a round from 1 to {spec.rounds}, or raise rounds.")
    if item.when is not None:
        yield from _formula(item.when, spec, f"{at}.when", agent=False)
    if not (item.set or item.announce or item.policy or item.conditioning or item.edges):
        yield ScenarioError(f"intervention '{item.id}' changes nothing.", field=at,
                            value=item.id, fix="add set, announce, policy, conditioning or "
                                               "edges.")


def _formula(source: str, spec: ScenarioSpec, where: str, *, agent: bool,
             text_result: bool = False) -> Problems:
    texts = state_names(spec, agent=agent)[1]
    try:
        formula = Formula.parse(source, condition_names(spec, agent=agent), texts=texts,
                                text_result=text_result)
    except FormulaError as exc:
        yield ScenarioError(str(exc) + ".", field=where, value=source, fix=_FIX)
        return
    yield from check_literals(formula, spec, where)


def _check_announce(item: InterventionSpec, spec: ScenarioSpec, at: str) -> Problems:
    """``announce`` uses only :func:`announce_fields` (checked like a stage's prompt)."""
    if item.announce is None:
        return
    try:
        template_fields(item.announce, announce_fields(spec))
    except TemplateError as exc:
        personal = any(f"{{{name}" in item.announce for name in ("my.", "name}", "partner"))
        fix = ("an announcement is one text for everyone it reaches; per-agent values "
               "belong in a stage prompt ({my.state.Y})." if personal else
               "use only the listed fields, and write a literal brace as {{ or }}.")
        yield ScenarioError(str(exc) + ".", field=f"{at}.announce", value=item.announce,
                            fix=fix)


def _check_set(item: InterventionSpec, spec: ScenarioSpec, at: str) -> Problems:
    for target, source in item.set.items():
        field = f"{at}.set.{target}"
        scope, name = set_target(target)
        declared: dict[str, object] = {"global": spec.state, "agent": spec.agent_state,
                                       "params": spec.params}[scope]  # type: ignore[assignment]
        if name not in declared:
            section = {"global": "state", "agent": "agent_state", "params": "params"}[scope]
            yield ScenarioError(
                f"set of an undeclared name '{target}'.", field=field, value=target,
                fix=f"{did_you_mean(name, list(declared))}declare it under {section}: "
                    f"(known: {', '.join(declared) or 'none'}).")
            continue
        var = spec.state.get(name) if scope == "global" else spec.agent_state.get(name)
        categorical = var is not None and scope != "params" and var.categorical
        if isinstance(source, float):
            if categorical:
                yield ScenarioError(f"'{target}' holds text; {source:g} is a number.",
                                    field=field, value=source,
                                    fix=f"write one of: {', '.join(var.values or [])}.")
            continue
        yield from _formula(source, spec, field, agent=scope == "agent",
                            text_result=categorical)


def _check_reach(item: InterventionSpec, spec: ScenarioSpec, at: str) -> Problems:
    reach = item.to
    if reach is None:
        return
    chosen = [k for k in ("role", "cohort", "agents") if getattr(reach, k) is not None]
    if len(chosen) != 1:
        yield ScenarioError("'to' names exactly one of role, cohort or agents.",
                            field=f"{at}.to", fix="write to: {role: R}, {cohort: C} or "
                                                  "{agents: [0, 2]}.")
        return
    if item.announce is None and not any(t.startswith("my.") for t in item.set):
        yield ScenarioError("'to' chooses who an announcement or a my.state set reaches; this "
                            "intervention has neither.", field=f"{at}.to",
                            fix="add announce: or a my.state set, or remove 'to'.")
    yield from _check_who(reach, spec, f"{at}.to")


def _check_who(reach: ReachSpec, spec: ScenarioSpec, where: str) -> Problems:
    roles = [r.name for r in spec.roles]
    if reach.role is not None and reach.role not in roles:
        yield ScenarioError(f"unknown role '{reach.role}'.", field=f"{where}.role",
                            value=reach.role, fix=f"{did_you_mean(reach.role, roles)}known "
                                                  f"roles: {', '.join(roles) or 'none'}.")
    if reach.cohort is not None:
        yield from _check_cohort(reach.cohort, spec, f"{where}.cohort")
    size = spec.population.size
    for j, index in enumerate(reach.agents or []):
        if index >= size:
            yield ScenarioError(f"agent {index} is not in a population of {size}.",
                                field=f"{where}.agents.{j}", value=index,
                                fix=f"use agent indices 0 to {size - 1}.")


def _check_cohort(name: str, spec: ScenarioSpec, where: str) -> Problems:
    known = cohort_names(spec)
    if name not in known:
        yield ScenarioError(f"unknown cohort '{name}'.", field=where, value=name,
                            fix=f"{did_you_mean(name, known)}known cohorts: "
                                f"{', '.join(known) or 'none (population.cohorts)'}.")


def _check_swaps(item: InterventionSpec, spec: ScenarioSpec, at: str) -> Problems:
    if item.policy is not None:
        yield from _check_cohort(item.policy.cohort, spec, f"{at}.policy.cohort")
        yield from check_policy(item.policy.policy, spec, f"{at}.policy.policy")
    if item.conditioning is not None:
        yield from _check_cohort(item.conditioning.cohort, spec, f"{at}.conditioning.cohort")


def _check_edges(item: InterventionSpec, spec: ScenarioSpec, at: str) -> Problems:
    if item.edges is None:
        return
    if spec.network is None:
        yield ScenarioError("edges change the social network, but the scenario has none.",
                            field=f"{at}.edges", fix="declare network: (a generator or "
                                                     "edges), or remove 'edges'.")
        return
    size = spec.population.size
    for part in ("add", "remove"):
        for j, (a, b) in enumerate(getattr(item.edges, part)):
            field = f"{at}.edges.{part}.{j}"
            if max(a, b) >= size:
                yield ScenarioError(f"edge [{a}, {b}] names an agent outside the population "
                                    f"of {size}.", field=field, value=[a, b],
                                    fix=f"use agent indices 0 to {size - 1}.")
            elif a == b:
                yield ScenarioError(f"edge [{a}, {b}] joins agent {a} to itself.",
                                    field=field, value=[a, b], fix="remove it.")
