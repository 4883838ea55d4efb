"""Stage models: the five stage kinds, who meets whom (grouping) and what a choice earns.

Re-exported by :mod:`sim.scenario.spec`; cross-field rules live in :mod:`sim.scenario.validate`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from sim.scenario.fields import Formula, Name, Number, Slug, Strict
from sim.scenario.options import LevelsSpec, level_options
from sim.scenario.world import Updates

__all__ = [
    "STAGE_KINDS",
    "BroadcastStage",
    "ChoiceStage",
    "CoordinationSpec",
    "DialogueStage",
    "GroupingSpec",
    "PayoffSpec",
    "SanctionStage",
    "StageBase",
    "StageSpec",
    "SurveyStage",
]


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
    ``neighbour_sample``: every agent with at least one network neighbour initiates one
    pair game with each of ``k`` (default 1) neighbours drawn without replacement (all of
    them when it has fewer); pairs list the initiator first, agents in index order; an
    agent may be in several pairs (its own and those its neighbours initiate; two
    neighbours who draw each other play twice); agents in no pair sit out (recorded).
    ``ego``: one group per agent with at least one neighbour: the agent (first) and all its
    neighbours, in index order; an agent with no neighbours sits out. In a broadcast the
    ego speaks and its neighbours hear it.
    ``among``: only agents whose role is listed are grouped (the others sit out).
    ``redraw`` (``random_pairs``, ``groups_of``, ``neighbour_sample``): ``round`` re-draws
    every round,
    ``never`` keeps the round-1 draw for the whole run. Options that a rule does not use are
    refused by :mod:`sim.scenario.validate`.
    """

    by: Literal["all", "random_pairs", "groups_of", "round_robin", "neighbours", "fixed",
                "bipartite", "neighbour_sample", "ego"] = "all"
    size: int | None = None
    k: int | None = None
    remainder: Literal["sit_out", "merge"] = "sit_out"
    redraw: Literal["round", "never"] = "round"
    groups: list[list[int]] | None = None
    roles: Annotated[list[Slug], Field(min_length=2, max_length=2)] | None = None
    among: list[Slug] | None = None


class CoordinationSpec(Strict):
    """A coordination payoff: ``success`` if the whole group chose one option, else ``failure``."""

    success: Number = 1.0
    failure: Number = 0.0


class PayoffSpec(Strict):
    """What a choice earns: exactly one of two typed formulas (see :mod:`sim.scenario.validate`).

    ``matrix``: pairwise, ``matrix[mine][theirs]`` is what I earn against each partner,
    summed over the partners of my group. ``coordination``: one payoff per agent and round,
    ``success`` if the whole group chose alike, else ``failure``. ``formula``: arithmetic
    over named values (:mod:`sim.scenario.formula`), one for everyone or one per role (``{proposer:
    ..., responder: ...}``), evaluated for every member of a group, acting or not.
    """

    matrix: list[list[Number]] | None = None
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

    ``option_order``: how options are listed to the model, against position bias.
    ``fixed`` (the default): as written. ``shuffled``: every request shows its own seeded
    order. ``balanced``: every option is scored in every position (a seeded cyclic Latin
    square of k orders for k options) and the per-order probabilities are averaged, so
    additive position effects cancel, at k times the scoring cost. Records keep the
    canonical order of ``options``. ``shuffle_options: true`` is the older spelling of
    ``shuffled`` (:attr:`order` resolves the two).
    ``levels``: numeric options ``min, min+step, ..., max`` instead of ``options``.
    ``answer``: the correct option (a quiz question): rows record ``correct``.
    ``outcomes``: named formulas evaluated per agent and recorded in the ``outcomes`` column.
    ``update``: world-state updates after the stage (:mod:`sim.scenario.world`; also on
    dialogue, broadcast and sanction stages).
    """

    kind: Literal["choice"]
    options: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]],
                       Field(min_length=2, max_length=64)] = Field(default=[])
    payoff: PayoffSpec | None = None
    decision: Literal["sample", "argmax"] = "sample"
    option_order: Literal["fixed", "shuffled", "balanced"] | None = None
    shuffle_options: bool | None = None
    levels: LevelsSpec | None = None
    answer: str | None = None
    outcomes: dict[Name, Formula] = Field(default={})
    update: Updates = Field(default={})

    @property
    def order(self) -> Literal["fixed", "shuffled", "balanced"]:
        """The effective option order (``option_order``, else ``shuffle_options``)."""
        if self.option_order is not None:
            return self.option_order
        return "shuffled" if self.shuffle_options else "fixed"

    @property
    def choices(self) -> list[str]:
        """The closed set of answers: ``options``, or the ``levels`` written as numbers."""
        if self.levels is None:
            return list(self.options)
        return level_options(self.levels)


class DialogueStage(StageBase):
    """Agents of each group speak in turn; turn ``k`` of every group forms one wave.

    ``stop_at: sentence``: a message that the token limit cut is trimmed back to its last
    complete sentence (rows record ``trimmed``); default: kept as generated.
    """

    kind: Literal["dialogue"]
    turns: Annotated[int, Field(ge=1, le=100)] = 4
    max_new_tokens: Annotated[int, Field(ge=1, le=2048)] | None = None
    stop_at: Literal["sentence"] | None = None
    lead: Slug | None = None
    offers: bool = False
    stop: Literal["accept"] | None = None
    payoff: PayoffSpec | None = None
    update: Updates = Field(default={})


class BroadcastStage(StageBase):
    """One message to each group.

    The ``prompt`` itself, said by the game master, or, with ``speaker: ROLE``, a message
    the group's member of that role writes in answer to the ``prompt``. With
    ``groups: {by: ego}`` every ego writes a message to its neighbours (``speaker: ROLE``
    limits the speakers to egos of that role). ``stop_at``: as in dialogue stages.
    """

    kind: Literal["broadcast"]
    speaker: Slug | None = None
    max_new_tokens: Annotated[int, Field(ge=1, le=2048)] | None = None
    update: Updates = Field(default={})
    stop_at: Literal["sentence"] | None = None


class SanctionStage(StageBase):
    """Every acting member picks one other member of its group to fine, or nobody.

    The punisher pays ``cost``; the target loses ``fine`` per punisher.
    """

    kind: Literal["sanction"]
    cost: Annotated[Number, Field(ge=0.0)] = 1.0
    fine: Annotated[Number, Field(ge=0.0)] = 3.0
    decision: Literal["sample", "argmax"] = "sample"
    update: Updates = Field(default={})


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
                      Field(min_length=1, max_length=2)] = Field(default=["asc", "desc"])
    paraphrases: Annotated[int, Field(ge=1, le=3)] = 3
    repeats: Annotated[int, Field(ge=1, le=20)] = 1
    items: Annotated[list[Annotated[str, Field(min_length=1, max_length=32)]],
                     Field(min_length=1)] | None = None


StageSpec = Annotated[ChoiceStage | DialogueStage | BroadcastStage | SanctionStage | SurveyStage,
                      Field(discriminator="kind")]

STAGE_KINDS: dict[str, type[BaseModel]] = {"choice": ChoiceStage, "dialogue": DialogueStage,
                                            "broadcast": BroadcastStage,
                                            "sanction": SanctionStage, "survey": SurveyStage}
"""Every stage model by its ``kind`` tag (pydantic puts the tag in error locations)."""
