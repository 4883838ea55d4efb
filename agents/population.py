"""Build a population from its spec: personas, policies and cohorts, seeded."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from agents.persona import (
    TRAITS,
    BigFive,
    Mbti,
    Persona,
    default_names,
    mbti_to_big_five,
    sample_big_five,
)
from sim.scenario.spec import PolicySpec, PopulationSpec

__all__ = ["Member", "build_population", "unique_names"]

_ALL_TYPES = tuple(a + b + c + d for a in "EI" for b in "SN" for c in "TF" for d in "JP")


@dataclass(frozen=True, slots=True)
class Member:
    """One agent-to-be: persona plus its cohort and scripted policy (if any)."""

    persona: Persona
    cohort: str | None
    policy: PolicySpec | None


def build_population(spec: PopulationSpec, rng: np.random.Generator) -> list[Member]:
    """Personas for every agent (explicit profiles first, then sampled), cohorts in order."""
    names = list(spec.names) if spec.names else default_names(spec.size)
    personas: list[Persona] = []
    for i, profile in enumerate(spec.profiles):
        name = profile.name or names[i]
        if profile.mbti is not None:
            mbti = Mbti(profile.mbti.type, tuple(profile.mbti.clarity))  # type: ignore[arg-type]
            personas.append(Persona(name=name, big_five=mbti_to_big_five(mbti), mbti=mbti,
                                    background=profile.background))
        else:
            assert profile.big_five is not None
            personas.append(Persona(name=name, big_five=BigFive.from_dict(
                profile.big_five.model_dump()), background=profile.background))
    personas.extend(_sample(spec, rng, names[len(personas):spec.size]))
    personas = unique_names(personas)
    cohorts = _cohort_of_each(spec)
    return [Member(p, c[0], c[1]) for p, c in zip(personas, cohorts, strict=True)]


def unique_names(personas: list[Persona]) -> list[Persona]:
    """Personas whose names are unique, compared without case or surrounding space.

    The rule: the first holder of a name keeps it; a later holder gets the lowest free
    suffix " 2", " 3", ... ("Alex", "Alex" -> "Alex", "Alex 2"). The word ``nobody`` is an
    option of sanction stages, so an agent named so becomes "nobody 2". Validation refuses
    duplicates written out in ``names``; this covers a profile's name meeting a default one.
    """
    taken = {"nobody"}
    out = []
    for persona in personas:
        name, k = persona.name, 1
        while name.strip().casefold() in taken:
            k += 1
            name = f"{persona.name.strip()} {k}"
        taken.add(name.strip().casefold())
        out.append(persona if name == persona.name else replace(persona, name=name))
    return out


def _sample(spec: PopulationSpec, rng: np.random.Generator, names: list[str]) -> list[Persona]:
    count = len(names)
    if count == 0:
        return []
    sampler = spec.personality
    if sampler.model == "mbti":
        types = sampler.types or list(_ALL_TYPES)
        picks = rng.integers(len(types), size=count)
        clarity = rng.uniform(0.3, 1.0, size=(count, 4)).round(3)
        mbtis = [Mbti(types[int(k)], tuple(float(c) for c in row))  # type: ignore[arg-type]
                 for k, row in zip(picks, clarity, strict=True)]
        return [Persona(name=n, big_five=mbti_to_big_five(m), mbti=m)
                for n, m in zip(names, mbtis, strict=True)]
    mean = [getattr(sampler.mean, t) for t in TRAITS] if sampler.mean else None
    profiles = sample_big_five(rng, count, method=sampler.sample, mean=mean, sd=sampler.sd)
    return [Persona(name=n, big_five=b) for n, b in zip(names, profiles, strict=True)]


def _cohort_of_each(spec: PopulationSpec) -> list[tuple[str | None, PolicySpec | None]]:
    out: list[tuple[str | None, PolicySpec | None]] = []
    for i, cohort in enumerate(spec.cohorts):
        n = cohort.count if cohort.count is not None else round((cohort.fraction or 0) * spec.size)
        out.extend([(cohort.name or f"cohort{i}", cohort.policy)] * n)
    out.extend([(None, None)] * (spec.size - len(out)))
    return out[: spec.size]
