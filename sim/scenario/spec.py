"""The scenario contract (``ScenarioSpec``) and how a run executes (``RunConfig``).

Every model is frozen and forbids unknown keys, so a misspelt key is an error, never a silent
default. Types, ranges and closed sets live here; checks that relate several fields
(flow edges naming stages, payoff shapes, template fields) live in
:mod:`sim.scenario.validate.core`, so that each can point at the exact field that is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sim.requests import SamplingParams

__all__ = [
    "BigFiveSpec",
    "BroadcastStage",
    "ChoiceStage",
    "CohortSpec",
    "CoordinationSpec",
    "DialogueStage",
    "EdgeSpec",
    "GroupingSpec",
    "LevelsSpec",
    "MbtiSpec",
    "NetworkSpec",
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
    "StageSpec",
    "SurveyStage",
    "WhileSpec",
]

Slug = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Formula = Annotated[str, Field(min_length=1, max_length=1000)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")]


class Strict(BaseModel):
    """Base of every spec model: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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
    clarity: Annotated[list[Unit], Field(min_length=4, max_length=4)] = [0.5, 0.5, 0.5, 0.5]

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
    """

    name: Literal["always", "random", "tit_for_tat", "grim_trigger", "naming_game",
                  "threshold", "haggle"]
    option: str | None = None
    p: Unit | None = None
    cooperate: str | None = None
    defect: str | None = None
    initial: list[str] | None = None
    pick: Literal["uniform", "frequency"] | None = None
    threshold: float | None = None
    side: Literal["buyer", "seller"] | None = None
    concession: Annotated[float, Field(gt=0.0, le=1.0)] | None = None


Conditioning = Literal["none", "prompt", "steering", "both"]
"""How personas condition the model: ``none`` (name only, the control), ``prompt`` (persona
text with graded trait markers), ``steering`` (name only plus an activation-steering vector
from the persona's traits), ``both``."""


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
    profiles: list[ProfileSpec] = []
    cohorts: list[CohortSpec] = []
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


class GroupingSpec(Strict):
    """Who meets whom in a stage.

    ``all``: one group of everyone; ``random_pairs``: random pairs (an odd agent sits out,
    recorded); ``groups_of``: random groups of ``size`` (the ``n % size`` left over sit out,
    or join the last groups with ``remainder: merge``); ``round_robin``: pairs rotate so that
    every pair meets once in ``n - 1`` rounds (``n`` when odd, one agent sitting out each
    round), then the schedule repeats; ``neighbours``: every edge of the network is a pair;
    ``fixed``: the explicit ``groups`` of agent indices (agents in none sit out);
    ``bipartite``: pairs across the two ``roles`` rotate so that every cross pair meets once
    in as many rounds as the larger role has members (its extra members sit out).
    ``among``: only agents whose role is listed are grouped (the others sit out).
    ``redraw`` (``random_pairs`` and ``groups_of``): ``round`` re-draws every round,
    ``never`` keeps the round-1 draw for the whole run. Options that a rule does not use are
    refused by :mod:`sim.scenario.validate.core`.
    """

    by: Literal["all", "random_pairs", "groups_of", "round_robin", "neighbours", "fixed",
                "bipartite"] = "all"
    size: int | None = None
    remainder: Literal["sit_out", "merge"] = "sit_out"
    redraw: Literal["round", "never"] = "round"
    groups: list[list[int]] | None = None
    roles: Annotated[list[Slug], Field(min_length=2, max_length=2)] | None = None
    among: list[Slug] | None = None


class CoordinationSpec(Strict):
    """A coordination payoff: ``success`` if the whole group chose one option, else ``failure``."""

    success: float = 1.0
    failure: float = 0.0


class PayoffSpec(Strict):
    """What a choice earns: exactly one of two typed formulas (see :mod:`sim.scenario.validate`).

    ``matrix``: pairwise, ``matrix[mine][theirs]`` is what I earn against each partner,
    summed over the partners of my group. ``coordination``: one payoff per agent and round,
    ``success`` if the whole group chose alike, else ``failure``. ``formula``: arithmetic
    over named values (:mod:`sim.scenario.formula`), one for everyone or one per role (``{proposer:
    ..., responder: ...}``), evaluated for every member of a group, acting or not.
    """

    matrix: list[list[float]] | None = None
    coordination: CoordinationSpec | None = None
    formula: Formula | dict[Slug, Formula] | None = None


class StageBase(Strict):
    """Fields shared by every stage kind.

    ``actors``: the roles that act (choose, speak) in the stage; other members of a group
    are still partners (and are paid by a formula), but make no request.
    """

    id: Slug
    prompt: Annotated[str, Field(min_length=1, max_length=20_000)]
    groups: GroupingSpec = GroupingSpec()
    memory: Annotated[int, Field(ge=0, le=100)] = 3
    actors: list[Slug] | None = None


class ChoiceStage(StageBase):
    """Every agent picks one of a closed set of options, scored by log-likelihood.

    ``shuffle_options``: every request shows the options in its own seeded order (against
    position bias); records keep the canonical order of ``options``.
    ``levels``: numeric options ``min, min+step, ..., max`` instead of ``options``.
    ``answer``: the correct option (a quiz question): rows record ``correct``.
    ``outcomes``: named formulas evaluated per agent and recorded in the ``outcomes`` column.
    """

    kind: Literal["choice"]
    options: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]],
                       Field(min_length=2, max_length=64)] = []
    payoff: PayoffSpec | None = None
    decision: Literal["sample", "argmax"] = "sample"
    shuffle_options: bool = False
    levels: LevelsSpec | None = None
    answer: str | None = None
    outcomes: dict[Name, Formula] = {}

    @property
    def choices(self) -> list[str]:
        """The closed set of answers: ``options``, or the ``levels`` written as numbers."""
        if self.levels is None:
            return list(self.options)
        from sim.scenario.options import level_options  # local: options imports spec

        return level_options(self.levels)


class DialogueStage(StageBase):
    """Agents of each group speak in turn; turn ``k`` of every group forms one wave."""

    kind: Literal["dialogue"]
    turns: Annotated[int, Field(ge=1, le=100)] = 4
    max_new_tokens: Annotated[int, Field(ge=1, le=2048)] | None = None
    lead: Slug | None = None
    offers: bool = False
    stop: Literal["accept"] | None = None
    payoff: PayoffSpec | None = None


class LevelsSpec(Strict):
    """Numeric options ``min, min + step, ..., max`` (at most 64 of them)."""

    min: float
    max: float
    step: Annotated[float, Field(gt=0.0)] = 1.0


class PrivateSpec(Strict):
    """A private value of each member of a role.

    Fixed (``value``) or drawn uniformly from ``min, min + step, ..., max``, per agent, from
    the run's seed.
    """

    value: float | None = None
    min: float | None = None
    max: float | None = None
    step: Annotated[float, Field(gt=0.0)] = 1.0


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
    private: dict[Name, PrivateSpec] = {}


class BroadcastStage(StageBase):
    """One message to each group.

    The ``prompt`` itself, said by the game master, or, with ``speaker: ROLE``, a message
    the group's member of that role writes in answer to the ``prompt``.
    """

    kind: Literal["broadcast"]
    speaker: Slug | None = None
    max_new_tokens: Annotated[int, Field(ge=1, le=2048)] | None = None


class SanctionStage(StageBase):
    """Every acting member picks one other member of its group to fine, or nobody.

    The punisher pays ``cost``; the target loses ``fine`` per punisher.
    """

    kind: Literal["sanction"]
    cost: Annotated[float, Field(ge=0.0)] = 1.0
    fine: Annotated[float, Field(ge=0.0)] = 3.0
    decision: Literal["sample", "argmax"] = "sample"


class SurveyStage(StageBase):
    """Administer a questionnaire to the language-model agents, in a side channel.

    One score request per item, agent and control, all in one batched wave. Answers go to
    the run's ``surveys/`` shards only: never to the agents' memory, scores, later prompts or the
    events. Scripted agents are skipped; ``actors`` limits the survey to some roles.

    ``instrument``: ``ipip-50`` (default), ``mini-ipip``, ``ipip-neo-120``; the restricted
    ``bfi-44`` and ``oejts`` need ``allow_restricted: true`` (non-commercial terms).
    ``mode``: ``isolated`` (persona only) or ``in_situ`` (persona plus the agent's last
    ``memory`` moments). ``rounds``: the rounds it is administered at (default: every round
    the flow reaches it; on other rounds the stage does nothing). ``orders``, ``paraphrases``,
    ``repeats``: the controls, recorded as factors on every row. ``items``: item ids to ask
    (default: all). ``prompt``: optional text shown before the instruction (fields
    ``{name}``, ``{round}``, ``{rounds}``).
    """

    kind: Literal["survey"]
    prompt: Annotated[str, Field(max_length=20_000)] = ""
    memory: Annotated[int, Field(ge=0, le=100)] = 10
    instrument: Annotated[str, Field(min_length=1, max_length=64)] = "ipip-50"
    allow_restricted: bool = False
    mode: Literal["isolated", "in_situ"] = "isolated"
    rounds: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] | None = None
    orders: Annotated[list[Literal["asc", "desc"]],
                      Field(min_length=1, max_length=2)] = ["asc", "desc"]
    paraphrases: Annotated[int, Field(ge=1, le=3)] = 3
    repeats: Annotated[int, Field(ge=1, le=20)] = 1
    items: Annotated[list[Annotated[str, Field(min_length=1, max_length=32)]],
                     Field(min_length=1)] | None = None


StageSpec = Annotated[ChoiceStage | DialogueStage | BroadcastStage | SanctionStage | SurveyStage,
                      Field(discriminator="kind")]


class WhileSpec(Strict):
    """A typed loop condition on the round number (exactly one bound)."""

    round_lt: Annotated[int, Field(ge=1)] | None = None
    round_le: Annotated[int, Field(ge=1)] | None = None


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
    (round 2, 4, ...); ``params``: named constants that formulas may use.
    """

    name: Slug
    description: Annotated[str, Field(max_length=20_000)] = ""
    rounds: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    population: PopulationSpec
    network: NetworkSpec | None = None
    stages: Annotated[list[StageSpec], Field(min_length=1, max_length=256)]
    flow: list[EdgeSpec] | None = None
    roles: list[RoleSpec] = []
    alternate_roles: bool = False
    params: dict[Name, float] = {}


class RunConfig(Strict):
    """How a run executes; CLI flags override these, never the scenario.

    These field defaults are the only copy of the run's defaults: ``traitlab run`` reads its
    flag defaults from them, the transformers backend's settings
    (:class:`sim.backends.hf.config.HFConfig`) default to them, and the sampling defaults come
    from :class:`sim.requests.SamplingParams`.
    """

    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    backend: Literal["hf", "scripted"] = "hf"
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
