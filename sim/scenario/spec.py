"""The scenario contract (``ScenarioSpec``) and how a run executes (``RunConfig``).

Every model is frozen and forbids unknown keys, so a misspelt key is an error, never a silent
default. Types, ranges and closed sets live here (stage models in :mod:`sim.scenario.stages`);
checks that relate several fields (flow edges naming stages, payoff shapes, template fields)
live in :mod:`sim.scenario.validate`, so that each can point at the exact field that is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.requests import SamplingParams
from sim.scenario.api_settings import OpenAISettings
from sim.scenario.fields import Conditioning, Formula, Name, Number, Slug, Strict, Unit
from sim.scenario.intervention_spec import InterventionSpec, PolicySwapSpec
from sim.scenario.options import LevelsSpec
from sim.scenario.stages import (
    BroadcastStage,
    ChoiceStage,
    CoordinationSpec,
    DialogueStage,
    GroupingSpec,
    PayoffSpec,
    SanctionStage,
    StageBase,
    StageSpec,
    SurveyStage,
)
from sim.scenario.world import StateVarSpec

__all__ = [
    "BigFiveSpec",
    "BroadcastStage",
    "ChoiceStage",
    "CohortSpec",
    "Conditioning",
    "CoordinationSpec",
    "DialogueStage",
    "EdgeSpec",
    "Formula",
    "GroupingSpec",
    "InterventionSpec",
    "LevelsSpec",
    "MbtiSpec",
    "Name",
    "NetworkSpec",
    "OpenAISettings",
    "PayoffSpec",
    "PersonalitySpec",
    "PolicySpec",
    "PopulationSpec",
    "PrivateSpec",
    "ProfileSpec",
    "RoleSpec",
    "RunConfig",
    "SanctionStage",
    "ScenarioSpec",
    "Slug",
    "StageBase",
    "StageSpec",
    "StateVarSpec",
    "Strict",
    "SurveyStage",
    "Unit",
    "WhileSpec",
]


class BigFiveSpec(Strict):
    """Five trait scores in [0, 1]."""

    openness: Unit
    conscientiousness: Unit
    extraversion: Unit
    agreeableness: Unit
    neuroticism: Unit


class MbtiSpec(Strict):
    """An MBTI type with optional clarity per axis (E/I, S/N, T/F, J/P) in [0, 1]."""

    type: Annotated[str, Field(pattern=r"^[EI][SN][TF][JP]$")]
    clarity: Annotated[list[Unit], Field(min_length=4, max_length=4)] = Field(
        default=[0.5, 0.5, 0.5, 0.5])

    @field_validator("type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ProfileSpec(Strict):
    """One explicit persona: Big Five scores or an MBTI type (not both)."""

    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    big_five: BigFiveSpec | None = None
    mbti: MbtiSpec | None = None
    background: Annotated[str, Field(max_length=2000)] = ""


class PersonalitySpec(Strict):
    """How personas of agents without an explicit profile are sampled (seeded)."""

    model: Literal["big_five", "mbti"] = "big_five"
    sample: Literal["uniform", "normal"] = "uniform"
    mean: BigFiveSpec | None = None
    sd: Annotated[float, Field(gt=0.0, le=0.5)] = 0.15
    types: list[Annotated[str, Field(pattern=r"^[EI][SN][TF][JP]$")]] | None = None


class PolicySpec(Strict):
    """A scripted rule policy: a fixed-strategy partner, not a language model.

    ``option``: the option an ``always`` or ``random`` policy plays (``random`` plays it
    with probability ``p``, otherwise another option); ``cooperate`` / ``defect`` name the
    nice and nasty options of reactive policies (default: the stage's first and second).
    ``initial``: the starting inventory of a ``naming_game`` agent (default empty: it
    invents a name, uniformly from the stage's options, until it has heard one); ``pick``:
    how it picks from its inventory, ``uniform`` over the names (the minimal naming game) or
    in proportion to how often each was heard since its last success (``frequency``).
    ``threshold``: a ``threshold`` responder plays ``option`` (default: the stage's first
    option) when the partner's value this round is at least ``threshold``, else the other.
    ``side``, ``concession``: a ``haggle`` negotiator (default side: its role's name) opens
    30% beyond its private ``reserve`` and concedes the fraction ``concession`` (default
    0.3) of the remaining gap every turn; it accepts an offer within its reserve.
    ``trait``, ``slope``, ``base``: a ``trait_linked`` agent's behaviour follows its own
    assigned ``trait`` (planted trait-to-behaviour effects, to validate the analysis):
    ``q = clip(base + slope * (trait - 0.5), 0, 1)`` is the probability of ``option``, or,
    without ``option``, the mean position along the stage's options (defaults: base 0.5,
    slope 0).
    ``share`` and ``follow`` play numeric options (``levels``) by ``p`` (see
    :mod:`agents.policies`).
    ``sustainable`` and ``greedy`` harvest a commons whose offered levels are bounded by the
    stock (``max_formula``): ``sustainable`` plays the largest offered level at or below
    ``p`` (default 0.5) times the highest offered one, so harvesters offered at most
    ``stock / n`` each take at most ``p`` of the stock together (with ``p = 0.5`` a stock
    that doubles after the catch never falls); ``greedy`` plays the highest offered level.
    On options that are not numbers both play ``option`` (default: the first, the last).
    """

    name: Literal["always", "random", "tit_for_tat", "grim_trigger", "naming_game",
                  "threshold", "haggle", "trait_linked", "share", "follow", "sustainable",
                  "greedy"]
    option: str | None = None
    p: Unit | None = None
    cooperate: str | None = None
    defect: str | None = None
    initial: list[str] | None = None
    pick: Literal["uniform", "frequency"] | None = None
    threshold: Number | None = None
    side: Literal["buyer", "seller"] | None = None
    concession: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    trait: Literal["openness", "conscientiousness", "extraversion", "agreeableness",
                   "neuroticism"] | None = None
    slope: Annotated[float, Field(ge=-10.0, le=10.0)] | None = None
    base: Unit | None = None


# An intervention may swap a cohort's policy: its model is completed now that PolicySpec exists.
PolicySwapSpec.model_rebuild(_types_namespace={"PolicySpec": PolicySpec})
InterventionSpec.model_rebuild(_types_namespace={"PolicySpec": PolicySpec})


class CohortSpec(Strict):
    """A sub-population (by count or fraction of the population, assigned in order)."""

    name: Slug | None = None
    count: Annotated[int, Field(ge=0)] | None = None
    fraction: Unit | None = None
    policy: PolicySpec | None = None
    conditioning: Conditioning | None = None  # None: the population's


class PopulationSpec(Strict):
    """Who is in the simulation."""

    size: Annotated[int, Field(ge=1, le=100_000)]
    personality: PersonalitySpec = PersonalitySpec()
    profiles: list[ProfileSpec] = Field(default=[])
    cohorts: list[CohortSpec] = Field(default=[])
    names: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None
    conditioning: Conditioning = "prompt"
    steering_strength: Annotated[float, Field(ge=0.0, le=64.0)] = 4.0
    steering_layers: list[Annotated[int, Field(ge=0)]] | None = None


class NetworkSpec(BaseModel):
    """A social network: a networkx generator by name with its parameters, or edges.

    Generator parameters are written inline (``{generator: watts_strogatz_graph, k: 4,
    p: 0.1}``) and checked against the generator's signature; ``n`` is the population size.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    generator: str | None = None
    edges: list[Annotated[list[Annotated[int, Field(ge=0)]],
                          Field(min_length=2, max_length=2)]] | None = None

    @property
    def params(self) -> dict[str, Any]:
        """The generator's keyword parameters (every key but ``generator`` and ``edges``)."""
        return dict(self.model_extra or {})


class PrivateSpec(Strict):
    """A private value of each member of a role.

    Fixed (``value``) or drawn uniformly from ``min, min + step, ..., max``, per agent, from
    the run's seed.
    """

    value: Number | None = None
    min: Number | None = None
    max: Number | None = None
    step: Annotated[Number, Field(gt=0.0)] = 1.0


class RoleSpec(Strict):
    """A role: who holds it, what it is told and what it privately knows.

    Members: explicit ``agents`` indices, a ``count`` or a ``fraction`` of the population
    (filled in seeded order). ``prompt`` is added to every prompt of its members;
    ``private`` values are drawn per agent.
    """

    name: Slug
    agents: list[Annotated[int, Field(ge=0)]] | None = None
    count: Annotated[int, Field(ge=0)] | None = None
    fraction: Unit | None = None
    prompt: Annotated[str, Field(max_length=5000)] = ""
    private: dict[Name, PrivateSpec] = Field(default={})


class WhileSpec(Strict):
    """A typed loop condition: on the round number (at most one bound) and/or on world state.

    ``state``: a formula of ``state.X``, params and ``round`` (:mod:`sim.scenario.world`);
    the edge applies only while it is true (checked when the flow leaves the edge's source).
    """

    round_lt: Annotated[int, Field(ge=1)] | None = None
    round_le: Annotated[int, Field(ge=1)] | None = None
    state: Formula | None = None


class EdgeSpec(Strict):
    """A flow edge. ``start`` and ``end`` are the beginning and end of every round.

    An edge applies when all its conditions hold for the current round: ``every: 3`` on
    rounds 1, 4, 7, ... (shifted by ``offset``), ``rounds: [2, 5]`` on those rounds,
    ``while: {round_lt: 10}`` while the round is below 10. The first applicable edge out of
    a stage is taken.
    """

    source: Slug = Field(alias="from")
    to: Slug
    every: Annotated[int, Field(ge=1)] | None = None
    offset: Annotated[int, Field(ge=0)] = 0
    rounds: list[Annotated[int, Field(ge=1)]] | None = None
    while_: WhileSpec | None = Field(default=None, alias="while")


class ScenarioSpec(Strict):
    """A whole scenario: population, network, stages and the flow between them.

    ``roles``: who plays which part; ``alternate_roles``: the two roles swap every round
    (round 2, 4, ...); ``params``: named constants that formulas may use. ``state``,
    ``agent_state``: world-state variables, global and per agent; ``stop``: a formula that
    ends the run once true (:mod:`sim.scenario.world`); ``interventions``: changes to the
    running world at a round or on a condition (:mod:`sim.scenario.intervention_spec`).
    """

    name: Slug
    description: Annotated[str, Field(max_length=20_000)] = ""
    rounds: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    population: PopulationSpec
    network: NetworkSpec | None = None
    stages: Annotated[list[StageSpec], Field(min_length=1, max_length=256)]
    flow: list[EdgeSpec] | None = None
    roles: list[RoleSpec] = Field(default=[])
    alternate_roles: bool = False
    params: dict[Name, Number] = Field(default={})
    state: dict[Name, StateVarSpec] = Field(default={})
    agent_state: dict[Name, StateVarSpec] = Field(default={})
    stop: Formula | None = None
    interventions: Annotated[list[InterventionSpec], Field(max_length=256)] = Field(default=[])


class RunConfig(Strict):
    """How a run executes; CLI flags override these, never the scenario.

    These field defaults are the only copy of the run's defaults: ``traitlab run`` reads its
    flag defaults from them, the transformers backend's settings
    (:class:`sim.backends.hf.config.HFConfig`) default to them, and the sampling defaults come
    from :class:`sim.requests.SamplingParams`.

    ``backend: openai`` talks to an OpenAI-compatible server described by ``api``
    (:class:`~sim.scenario.api_settings.OpenAISettings`); ``max_cost`` (US dollars, at the
    ``api`` prices) stops the run, resumably, before a step that would cross it.
    """

    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    backend: Literal["hf", "scripted", "openai"] = "hf"
    model: str | None = None
    dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    device: Literal["cpu", "cuda"] = "cpu"
    max_new_tokens: Annotated[int, Field(ge=1, le=4096)] = SamplingParams().max_new_tokens
    temperature: Annotated[float, Field(ge=0.0, le=5.0)] = SamplingParams().temperature
    batch_tokens: Annotated[int, Field(ge=256)] = 16_384
    batch_rows: Annotated[int, Field(ge=1)] = 64
    prefix_cache_mib: Annotated[int, Field(ge=0)] = 512
    out: Path = Path("runs")
    steps: Annotated[int, Field(ge=1)] | None = None
    replicas: Annotated[int, Field(ge=1, le=4096)] = 1
    api: OpenAISettings | None = None
    max_cost: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _api_for_openai(self) -> RunConfig:
        # A server backend without an address cannot start; say so before anything opens.
        if self.backend == "openai" and self.api is None:
            raise ValueError("backend 'openai' needs the server's address: api.base_url (the "
                             "--base-url flag), e.g. http://127.0.0.1:8000/v1")
        priced = self.api is not None and (self.api.price_in_per_million is not None
                                           or self.api.price_out_per_million is not None)
        if self.max_cost is not None and not (self.backend == "openai" and priced):
            raise ValueError("max_cost needs backend 'openai' with prices to estimate the cost: "
                             "api.price_in_per_million and api.price_out_per_million (the "
                             "--price-in and --price-out flags), or no max_cost")
        return self
