"""What every stage runner shares: the plan type, its context, event-row helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.engine.groups import Grouping
from sim.requests import GenerateRequest, ScoreRequest, ScoreResult

if TYPE_CHECKING:
    from agents.agent import Agent
    from sim.engine.world import World
    from sim.executors.local import Request, Result

__all__ = ["Plan", "StageContext", "decided_by", "event_row", "prompt_hash"]

Plan = Generator[list["Request"], list["Result"], list[dict[str, Any]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class StageContext:
    """Everything a stage runner may use for one stage execution.

    Attributes:
        agents: the population, by index.
        grouping: who meets whom.
        round: the current round (1-based).
        rounds: rounds in the run.
        seed_for: deterministic per-request seed from (agent index, group, turn).
        rng_for: a numpy Generator from the same keys (for sampling choices).
        max_new_tokens: run default for generation.
        temperature: run default for generation.
        params: the scenario's named constants (for formulas).
        side: side-channel rows (survey answers) that are no events; the simulation hands
            them to the recorder for the run's ``surveys/`` shards.
        world: the replica's world state (read by formulas and bounded options; updated
            by the replica after the stage, never by a runner).
    """

    agents: Sequence[Agent]
    grouping: Grouping
    round: int
    rounds: int
    seed_for: Callable[..., int]
    rng_for: Callable[..., np.random.Generator]
    max_new_tokens: int
    temperature: float
    params: Mapping[str, float] = field(default_factory=dict)
    side: list[dict[str, Any]] = field(default_factory=list)
    world: World | None = None

    def acts(self, agent: Agent, actors: Sequence[str] | None) -> bool:
        """Whether an agent acts in a stage with these ``actors`` roles (``None``: all)."""
        return actors is None or agent.role(self.round) in actors


def prompt_hash(request: GenerateRequest | ScoreRequest) -> str:
    """Short content hash of a request's messages (and options)."""
    h = hashlib.sha256()
    for m in request.messages:
        h.update(m.role.encode() + b"\0" + m.content.encode() + b"\0")
    if isinstance(request, ScoreRequest):
        h.update("\0".join(request.options).encode())
    return h.hexdigest()[:16]


def event_row(agent: Agent, *, kind: str, group: str, partners: Sequence[Agent],
              turn: int = 0, **values: Any) -> dict[str, Any]:
    """An event row with the agent's identity filled in (the engine adds step and stage)."""
    row: dict[str, Any] = {
        "kind": kind, "group": group, "turn": turn, "agent": agent.key,
        "partners": [p.key for p in partners], "score": agent.score,
        "backend": "scripted" if agent.policy else "model",
        "role": agent.role(agent.model.state.round) if agent.model.state else agent.base_role,
        "policy": agent.policy.name if agent.policy else None,
        "status": "ok",
    }
    row.update(values)
    return row


def decided_by(result: ScoreResult) -> str | None:
    """How a scored choice was decided; a failed result is ``failed`` whatever the backend said."""
    if result.error is not None or not result.logprobs:
        return "failed"
    return result.decided_by


def sit_out_rows(ctx: StageContext) -> list[dict[str, Any]]:
    """One row per agent sitting this stage out."""
    return [event_row(ctx.agents[i], kind="sit_out", group="-", partners=[])
            for i in ctx.grouping.sitting_out]
