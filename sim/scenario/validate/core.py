"""Checks that relate several fields of a scenario; each names the exact field that is wrong.

Pydantic (in :mod:`sim.scenario.spec`) checks types, ranges and unknown keys. What remains,
stage ids named by flow edges, payoff shapes, template fields, network generators and the population
arithmetic, is checked here and raised as :class:`~sim.errors.ScenarioError` with a dotted
field path that :mod:`sim.scenario.loader` turns into a line number.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence

from sim.errors import ScenarioError
from sim.scenario.spec import (
    ChoiceStage,
    DialogueStage,
    GroupingSpec,
    SanctionStage,
    ScenarioSpec,
    SurveyStage,
)
from sim.scenario.templates import (
    CHOICE_FIELDS,
    DIALOGUE_FIELDS,
    TemplateError,
    library_fields,
    template_fields,
)

__all__ = ["RESERVED_STAGE_IDS", "check_scenario", "did_you_mean", "network_generator"]

RESERVED_STAGE_IDS = ("start", "end")
_PAIRWISE = ("random_pairs", "groups_of", "round_robin", "neighbours", "fixed", "bipartite")
_OPTION_RULES = {"size": ("groups_of",), "remainder": ("groups_of",),
                 "redraw": ("random_pairs", "groups_of"), "groups": ("fixed",),
                 "roles": ("bipartite",),
                 "among": ("all", "random_pairs", "groups_of", "round_robin")}


def did_you_mean(value: str, choices: Sequence[str]) -> str:
    """``" Did you mean 'x'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def network_generator(name: str) -> Callable[..., object]:
    """Resolve a networkx graph generator by name.

    Raises:
        ScenarioError: if ``name`` is not a networkx generator function.
    """
    import networkx as nx

    known = sorted(
        n for n in dir(nx.generators) if not n.startswith("_") and callable(getattr(nx, n, None))
        and (n.endswith("_graph") or n.endswith("_tree"))
    )
    if name not in known:
        raise ScenarioError(
            f"unknown networkx generator '{name}'.",
            field="network.generator", value=name,
            fix=f"{did_you_mean(name, known)}use a networkx generator such as "
                "watts_strogatz_graph, erdos_renyi_graph, barabasi_albert_graph, complete_graph.",
        )
    return getattr(nx, name)


def check_scenario(spec: ScenarioSpec) -> None:
    """Run every cross-field check; raise the first problem found.

    Raises:
        ScenarioError: with ``field`` set to the dotted path of the offending value.
    """
    from sim.scenario.validate import library  # local: it uses did_you_mean from here

    _check_population(spec)
    library.check_roles(spec)
    _check_network(spec)
    _check_stages(spec)
    _check_flow(spec)


def _check_population(spec: ScenarioSpec) -> None:
    pop = spec.population
    if len(pop.profiles) > pop.size:
        raise ScenarioError(
            f"{len(pop.profiles)} profiles for a population of {pop.size}.",
            field="population.profiles", value=len(pop.profiles),
            fix="raise population.size or remove profiles.",
        )
    for i, profile in enumerate(pop.profiles):
        if (profile.big_five is None) == (profile.mbti is None):
            raise ScenarioError(
                "a profile needs exactly one of 'big_five' or 'mbti'.",
                field=f"population.profiles.{i}",
                fix="give either big_five scores or an mbti type.",
            )
    personality = pop.personality
    if personality.mean is not None and personality.sample != "normal":
        raise ScenarioError(
            "'mean' is only used with sample: normal.", field="population.personality.mean",
            fix="set sample: normal or remove mean.",
        )
    if personality.types is not None and personality.model != "mbti":
        raise ScenarioError(
            "'types' is only used with model: mbti.", field="population.personality.types",
            fix="set model: mbti or remove types.",
        )
    if pop.names is not None and len(pop.names) < pop.size:
        raise ScenarioError(
            f"{len(pop.names)} names for a population of {pop.size}.", field="population.names",
            value=len(pop.names), fix="give one name per agent or remove 'names'.",
        )
    total = 0
    for i, cohort in enumerate(pop.cohorts):
        if (cohort.count is None) == (cohort.fraction is None):
            raise ScenarioError(
                "a cohort needs exactly one of 'count' or 'fraction'.",
                field=f"population.cohorts.{i}", fix="write count: N or fraction: 0.25.",
            )
        total += cohort.count if cohort.count is not None else round(cohort.fraction * pop.size)
        if cohort.policy is not None:
            _check_policy(spec, i)
    if total > pop.size:
        raise ScenarioError(
            f"cohorts add up to {total} agents, more than the population of {pop.size}.",
            field="population.cohorts", value=total, fix="lower the cohort counts or fractions.",
        )


def _check_policy(spec: ScenarioSpec, index: int) -> None:
    policy = spec.population.cohorts[index].policy
    assert policy is not None
    options = sorted({o for s in spec.stages if isinstance(s, ChoiceStage) for o in s.choices})
    where = f"population.cohorts.{index}.policy"
    named = [(key, getattr(policy, key)) for key in ("option", "cooperate", "defect")]
    named += [(f"initial.{i}", v) for i, v in enumerate(policy.initial or [])]
    for key, value in named:
        if value is not None and value not in options:
            raise ScenarioError(
                f"'{value}' is not an option of any choice stage.", field=f"{where}.{key}",
                value=value, fix=f"{did_you_mean(value, options)}use one of: {', '.join(options)}.",
            )
    for key, user in (("initial", "naming_game"), ("pick", "naming_game"),
                      ("threshold", "threshold"), ("side", "haggle"), ("concession", "haggle")):
        if getattr(policy, key) is not None and policy.name != user:
            raise ScenarioError(
                f"'{key}' is only used by policy '{user}', not '{policy.name}'.",
                field=f"{where}.{key}", fix=f"remove '{key}' or use name: {user}.")
    if policy.name == "always" and policy.option is None:
        raise ScenarioError("policy 'always' needs an 'option'.", field=f"{where}.option",
                            fix="add option: <the option it always plays>.")


def _check_network(spec: ScenarioSpec) -> None:
    net = spec.network
    if net is None:
        return
    if (net.generator is None) == (net.edges is None):
        raise ScenarioError("a network needs exactly one of 'generator' or 'edges'.",
                            field="network", fix="write generator: NAME or edges: [[0, 1], ...].")
    if net.edges is not None:
        for i, (a, b) in enumerate(net.edges):
            if max(a, b) >= spec.population.size:
                raise ScenarioError(
                    f"edge [{a}, {b}] names an agent beyond the population of "
                    f"{spec.population.size}.", field=f"network.edges.{i}", value=[a, b],
                    fix=f"use agent indices 0..{spec.population.size - 1}.",
                )
        return
    assert net.generator is not None
    generator = network_generator(net.generator)
    params = inspect.signature(generator).parameters
    for key in net.params:
        if key not in params or key == "n":
            allowed = [p for p in params
                       if p not in ("n", "create_using", "seed", "backend", "backend_kwargs")]
            raise ScenarioError(
                f"'{key}' is not a parameter of {net.generator}.", field=f"network.{key}",
                value=key, fix=f"{did_you_mean(key, allowed)}allowed: {', '.join(allowed)}."
                if allowed else f"remove it; {net.generator} takes only the number of agents.",
            )


def _check_stages(spec: ScenarioSpec) -> None:
    from sim.scenario.validate import library

    seen: dict[str, int] = {}
    for i, stage in enumerate(spec.stages):
        where = f"stages.{i}"
        if stage.id in seen:
            raise ScenarioError(
                f"duplicate stage id '{stage.id}' (also stages.{seen[stage.id]}).",
                field=f"{where}.id", value=stage.id, fix="give every stage a unique id.",
            )
        if stage.id in RESERVED_STAGE_IDS:
            raise ScenarioError(f"'{stage.id}' is reserved for the flow.", field=f"{where}.id",
                                value=stage.id, fix="rename the stage.")
        seen[stage.id] = i
        if isinstance(stage, SurveyStage):
            from sim.scenario.validate.survey import check_survey

            check_survey(stage, spec, where)
            continue
        allowed = (*(CHOICE_FIELDS if isinstance(stage, ChoiceStage | SanctionStage)
                     else DIALOGUE_FIELDS), *library_fields(spec))
        try:
            template_fields(stage.prompt, allowed)
        except TemplateError as exc:
            raise ScenarioError(str(exc) + ".", field=f"{where}.prompt",
                                fix="use only the listed fields.") from None
        _check_grouping(stage.groups, spec, f"{where}.groups")
        library.check_stage_roles(stage, spec, where)
        if isinstance(stage, ChoiceStage):
            _check_choice(stage, where)
            library.check_formulas(stage, spec, where)
        if isinstance(stage, DialogueStage):
            library.check_dialogue(stage, spec, where)
        elif isinstance(stage, DialogueStage) and stage.groups.by == "all" \
                and spec.population.size > 12:
            raise ScenarioError(
                f"a dialogue among all {spec.population.size} agents is one long chat.",
                field=f"{where}.groups.by", value="all",
                fix="group dialogue stages by random_pairs or neighbours.",
            )


def _check_grouping(groups: GroupingSpec, spec: ScenarioSpec, where: str) -> None:
    """Check a stage's ``groups:``; ``where`` is its dotted path (``stages.0.groups``)."""
    for key, rules in _OPTION_RULES.items():
        if key in groups.model_fields_set and groups.by not in rules:
            uses = " or ".join(f"by: {r}" for r in rules)
            raise ScenarioError(
                f"'{key}' is only used with {uses}, but the stage groups by {groups.by}.",
                field=f"{where}.{key}", value=getattr(groups, key),
                fix=f"remove '{key}' or set {uses}.",
            )
    n = spec.population.size
    if groups.by == "neighbours" and spec.network is None:
        raise ScenarioError("groups.by 'neighbours' needs a network.", field=f"{where}.by",
                            value="neighbours",
                            fix="add a 'network:' section or group by random_pairs.")
    if groups.by == "groups_of":
        if groups.size is None:
            raise ScenarioError("groups.by 'groups_of' needs a 'size'.", field=where,
                                fix="add size: K, the number of agents per group (K >= 2).")
        if groups.size < 2:
            raise ScenarioError(
                f"groups of {groups.size} agent(s) meet nobody.", field=f"{where}.size",
                value=groups.size, fix="use a size of at least 2.")
        if groups.size > n:
            raise ScenarioError(
                f"groups of {groups.size} in a population of {n}: nobody would be grouped.",
                field=f"{where}.size", value=groups.size, fix=f"use a size of at most {n}.")
    if groups.by == "fixed":
        _check_fixed(groups, n, where)


def _check_fixed(groups: GroupingSpec, n: int, where: str) -> None:
    if not groups.groups:
        raise ScenarioError(
            "groups.by 'fixed' needs a non-empty list 'groups' of agent index lists.",
            field=f"{where}.groups" if groups.groups is not None else where,
            fix="add groups: [[0, 1, 2], [3, 4, 5]].")
    seen: dict[int, int] = {}
    for j, group in enumerate(groups.groups):
        if len(group) < 2:
            raise ScenarioError(
                f"fixed group {j} has {len(group)} agent(s); a group needs at least 2.",
                field=f"{where}.groups.{j}", value=group,
                fix="add agents to the group or remove it (unlisted agents sit out).")
        for m, agent in enumerate(group):
            field = f"{where}.groups.{j}.{m}"
            if not 0 <= agent < n:
                raise ScenarioError(
                    f"agent index {agent} is outside the population of {n}.", field=field,
                    value=agent, fix=f"use agent indices 0..{n - 1}.")
            if agent in seen:
                also = "earlier in this group" if seen[agent] == j else f"in group {seen[agent]}"
                raise ScenarioError(
                    f"agent {agent} is listed twice (also {also}).", field=field, value=agent,
                    fix="list every agent in at most one group.")
            seen[agent] = j


def _check_choice(stage: ChoiceStage, where: str) -> None:
    from sim.scenario.validate.library import check_levels

    check_levels(stage, where)
    if len(set(stage.options)) != len(stage.options):
        raise ScenarioError("options must be distinct.", field=f"{where}.options",
                            value=stage.options, fix="remove the repeated option.")
    if stage.answer is not None and stage.answer not in stage.choices:
        raise ScenarioError(
            f"answer '{stage.answer}' is not one of the options.", field=f"{where}.answer",
            value=stage.answer,
            fix=f"{did_you_mean(stage.answer, stage.choices)}use one of: "
                f"{', '.join(stage.choices)}.")
    if stage.payoff is None:
        return
    given = [k for k in ("matrix", "coordination", "formula")
             if getattr(stage.payoff, k) is not None]
    if len(given) != 1:
        raise ScenarioError(
            "a payoff needs exactly one of 'matrix', 'coordination' or 'formula'"
            + (f" (got {', '.join(given)})." if given else "."),
            field=f"{where}.payoff",
            fix="write matrix: [[...], ...], coordination: {success: 1, failure: 0} or "
                "formula: \"...\".",
        )
    if stage.payoff.matrix is not None:
        _check_matrix(stage, stage.payoff.matrix, where)


def _check_matrix(stage: ChoiceStage, matrix: list[list[float]], where: str) -> None:
    n = len(stage.choices)
    if len(matrix) != n or any(len(row) != n for row in matrix):
        widths = [len(row) for row in matrix]
        if not matrix:
            shape = "empty"
        elif len(set(widths)) == 1:
            shape = f"{len(matrix)}x{widths[0]}"
        else:
            shape = f"ragged (rows of {', '.join(map(str, widths))} entries)"
        raise ScenarioError(
            f"payoff matrix is {shape} but the stage has {n} options.",
            field=f"{where}.payoff.matrix", value=matrix,
            fix=f"write a {n}x{n} matrix: one row per own option, one column per partner option.",
        )
    if stage.groups.by not in _PAIRWISE:
        raise ScenarioError(
            "a payoff matrix scores pairs, but the stage groups everyone together.",
            field=f"{where}.groups.by", value=stage.groups.by,
            fix="set groups: {by: random_pairs} or {by: neighbours}.",
        )


def _check_flow(spec: ScenarioSpec) -> None:
    if spec.flow is None:
        return
    ids = [s.id for s in spec.stages]
    for i, edge in enumerate(spec.flow):
        for key, value, valid in (("from", edge.source, [*ids, "start"]),
                                  ("to", edge.to, [*ids, "end"])):
            if value not in valid:
                raise ScenarioError(
                    f"flow edge {key} unknown stage '{value}'.", field=f"flow.{i}.{key}",
                    value=value, fix=f"{did_you_mean(value, valid)}known: {', '.join(valid)}.",
                )
        if edge.while_ is not None and (edge.while_.round_lt is None) == \
                (edge.while_.round_le is None):
            raise ScenarioError("'while' needs exactly one of round_lt or round_le.",
                                field=f"flow.{i}.while", fix="write while: {round_lt: 10}.")
    from sim.scenario.flow import ScenarioGraph  # local: graph imports spec

    ScenarioGraph.compile(spec)

