"""Checks of the ``population:`` section: profiles, sampling options, names, cohorts, policies."""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario.spec import ChoiceStage, PolicySpec, ScenarioSpec
from sim.scenario.validate.suggest import Problems, did_you_mean

__all__ = ["check_policy", "check_population", "scripted_count"]

_POLICY_KEYS = (("initial", "naming_game"), ("pick", "naming_game"), ("threshold", "threshold"),
                ("threshold", "share"),
                ("side", "haggle"), ("concession", "haggle"), ("trait", "trait_linked"),
                ("slope", "trait_linked"), ("base", "trait_linked"))
"""Policy options and the one policy that uses each."""


def scripted_count(spec: ScenarioSpec) -> int:
    """How many agents the cohorts with a scripted ``policy`` ask for."""
    pop = spec.population
    return sum(c.count if c.count is not None else round((c.fraction or 0.0) * pop.size)
               for c in pop.cohorts if c.policy is not None)


def _check_names(spec: ScenarioSpec) -> Problems:
    """Written-out names are unique (without case or surrounding space) and not ``nobody``.

    Events name agents by key, never by name, but prompts, transcripts and the options of a
    sanction stage (``nobody`` and the other members' names) show names.
    """
    pop = spec.population
    names, profiles = pop.names or [], pop.profiles
    written = []  # the name each agent is given where the file writes one out
    for i in range(min(pop.size, max(len(names), len(profiles)))):
        if i < len(profiles) and profiles[i].name is not None:
            written.append((f"population.profiles.{i}.name", profiles[i].name))
        elif i < len(names):
            written.append((f"population.names.{i}", names[i]))
    seen: dict[str, str] = {}
    for field, name in written:
        key = name.strip().casefold()
        if key == "nobody":
            yield ScenarioError(f"the name {name!r} reads as 'nobody', the 'punish nobody' "
                                "option of sanction stages.",
                                field=field, value=name, fix="choose another name.")
        elif key in seen:
            yield ScenarioError(f"the name {name!r} is given twice (also {seen[key]}).",
                                field=field, value=name, fix="give every agent its own name.")
        seen.setdefault(key, field)


def check_population(spec: ScenarioSpec) -> Problems:
    """Profiles, personality options, names and cohorts fit the population."""
    pop = spec.population
    if len(pop.profiles) > pop.size:
        yield ScenarioError(
            f"{len(pop.profiles)} profiles for a population of {pop.size}.",
            field="population.profiles", value=len(pop.profiles),
            fix="raise population.size or remove profiles.",
        )
    for i, profile in enumerate(pop.profiles):
        if (profile.big_five is None) == (profile.mbti is None):
            yield ScenarioError(
                "a profile needs exactly one of 'big_five' or 'mbti'.",
                field=f"population.profiles.{i}",
                fix="give either big_five scores or an mbti type.",
            )
    personality = pop.personality
    if personality.mean is not None and personality.sample != "normal":
        yield ScenarioError(
            "'mean' is only used with sample: normal.", field="population.personality.mean",
            fix="set sample: normal or remove mean.",
        )
    if personality.types is not None and personality.model != "mbti":
        yield ScenarioError(
            "'types' is only used with model: mbti.", field="population.personality.types",
            fix="set model: mbti or remove types.",
        )
    yield from _check_names(spec)
    if pop.names is not None and len(pop.names) < pop.size:
        yield ScenarioError(
            f"{len(pop.names)} names for a population of {pop.size}.", field="population.names",
            value=len(pop.names), fix="give one name per agent or remove 'names'.",
        )
    yield from _check_cohorts(spec)


def _check_cohorts(spec: ScenarioSpec) -> Problems:
    pop = spec.population
    total = 0
    for i, cohort in enumerate(pop.cohorts):
        if (cohort.count is None) == (cohort.fraction is None):
            yield ScenarioError(
                "a cohort needs exactly one of 'count' or 'fraction'.",
                field=f"population.cohorts.{i}", fix="write count: N or fraction: 0.25.",
            )
        else:
            total += cohort.count if cohort.count is not None \
                else round((cohort.fraction or 0.0) * pop.size)
        if cohort.policy is not None:
            yield from check_policy(cohort.policy, spec, f"population.cohorts.{i}.policy")
    if total > pop.size:
        yield ScenarioError(
            f"cohorts add up to {total} agents, more than the population of {pop.size}.",
            field="population.cohorts", value=total, fix="lower the cohort counts or fractions.",
        )


def check_policy(policy: PolicySpec, spec: ScenarioSpec, where: str) -> Problems:
    """Problems of a scripted policy: options no choice stage offers, keys its rule ignores."""
    options = sorted({o for s in spec.stages if isinstance(s, ChoiceStage) for o in s.choices})
    named = [(key, getattr(policy, key)) for key in ("option", "cooperate", "defect")]
    named += [(f"initial.{i}", v) for i, v in enumerate(policy.initial or [])]
    for key, value in named:
        if value is not None and value not in options:
            yield ScenarioError(
                f"'{value}' is not an option of any choice stage.", field=f"{where}.{key}",
                value=value, fix=f"{did_you_mean(value, options)}use one of: {', '.join(options)}.",
            )
    for key, user in _POLICY_KEYS:
        users = [u for k, u in _POLICY_KEYS if k == key]
        if getattr(policy, key) is not None and policy.name not in users and user == users[0]:
            yield ScenarioError(
                f"'{key}' is only used by policy '{user}', not '{policy.name}'.",
                field=f"{where}.{key}", fix=f"remove '{key}' or use name: {user}.")
    if policy.name == "always" and policy.option is None:
        yield ScenarioError("policy 'always' needs an 'option'.", field=f"{where}.option",
                            fix="add option: <the option it always plays>.")
    if policy.name == "trait_linked" and policy.trait is None:
        yield ScenarioError("policy 'trait_linked' needs a 'trait'.", field=f"{where}.trait",
                            fix="add trait: <openness, conscientiousness, extraversion, "
                                "agreeableness or neuroticism>.")
