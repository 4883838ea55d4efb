"""How each agent is conditioned: persona text, steering coefficients, or neither.

Pure: it reads the scenario's population spec and sets fields on the agents; the steering
directions those coefficients refer to are computed on the backend side
(:mod:`sim.run.conditioning`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.persona import TRAITS, render_persona
from agents.steering import big_five_coefficients, mbti_coefficients
from sim.scenario.spec import PopulationSpec, ScenarioSpec

__all__ = ["condition_agent", "condition_agents", "method_of", "needs_steering"]


def method_of(population: PopulationSpec, cohort: str | None) -> str:
    """The conditioning of an agent: its cohort's, else the population's."""
    for i, spec in enumerate(population.cohorts):
        if (spec.name or f"cohort{i}") == cohort and spec.conditioning is not None:
            return spec.conditioning
    return population.conditioning


def needs_steering(spec: ScenarioSpec) -> bool:
    """True when any agent is, or an intervention may make it, conditioned by steering."""
    pop = spec.population
    methods = {pop.conditioning, *(c.conditioning for c in pop.cohorts if c.conditioning),
               *(i.conditioning.conditioning for i in spec.interventions if i.conditioning)}
    return bool(methods & {"steering", "both"})


def condition_agents(agents: Sequence[Any], spec: ScenarioSpec) -> None:
    """Set each language-model agent's system prompt and steering from its conditioning.

    ``prompt`` keeps the persona text; ``none`` and ``steering`` replace it by the name only
    (plus the persona's background); ``steering`` and ``both`` set the steering
    coefficients (MBTI personas through :func:`agents.steering.mbti_coefficients`).
    Scripted agents are left alone.
    """
    pop = spec.population
    for agent in agents:
        if agent.policy is None:
            condition_agent(agent, method_of(pop, agent.cohort), pop.steering_strength)


def condition_agent(agent: Any, method: str, strength: float) -> None:
    """Set one language-model agent's persona text and steering for a conditioning method.

    Used at the start and when an intervention changes a cohort's conditioning mid-run.
    """
    persona = agent.persona
    if method in ("none", "steering"):
        agent.set_persona_text(f"You are {persona.name}." + (
            f" {persona.background}" if persona.background else ""))
    else:
        agent.set_persona_text(render_persona(persona))
    strengths = dict.fromkeys(TRAITS, float(strength))
    agent.steering = () if method not in ("steering", "both") else (
        mbti_coefficients(persona.mbti, strengths) if persona.mbti
        else big_five_coefficients(persona.big_five, strengths))
