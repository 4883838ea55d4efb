"""An agent: persona + memory + game state. It builds requests and applies results.

Agents never call a model. The stage runners in :mod:`sim.stages` ask agents for requests,
the engine batches the requests of a whole wave, and the results come back to the agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import mesa

from agents.memory import Memory, Moment
from agents.persona import Persona, render_persona
from sim.backends.base import (
    GenerateRequest,
    Message,
    PolicyCall,
    SamplingParams,
    ScoreRequest,
)
from sim.backends.scripted import STATEFUL_POLICIES, naming_game_update
from sim.spec import ChoiceStage, DialogueStage, PolicySpec
from sim.templates import render

if TYPE_CHECKING:
    from sim.simulation import Simulation

__all__ = ["Agent"]

_TALK = ("Write your next message in the conversation: one or two short sentences, in your "
         "own voice, without your name in front.")


class Agent(mesa.Agent):
    """One simulated person.

    Attributes:
        key: stable id from the spec (``a007``).
        index: position in the population.
        persona: who the agent is.
        policy: a scripted policy, or ``None`` for a language-model agent.
        cohort: the cohort name, if any.
        memory: what the agent remembers.
        score: cumulative payoff.
        last_choice: the agent's latest choice in each choice stage.
        received: every choice partners played against this agent, oldest first.
        inventory: names heard per choice stage since the last success (one entry per
            hearing), kept only by stateful scripted policies
            (``naming_game``); a stage without an entry starts from the policy's ``initial``.
    """

    def __init__(self, model: Simulation, *, index: int, persona: Persona,
                 policy: PolicySpec | None, cohort: str | None, preamble: str) -> None:
        super().__init__(model)
        self.key = f"a{index:03d}"
        self.index = index
        self.persona = persona
        self.policy = policy
        self.cohort = cohort
        self.memory = Memory()
        self.score = 0.0
        self.last_choice: dict[str, str] = {}
        self.received: list[str] = []
        self.inventory: dict[str, list[str]] = {}
        # The shared scenario preamble comes first so prompts share a prefix across agents.
        self._system = (f"{preamble}\n\n" if preamble else "") + render_persona(persona)
        # --- conditioning (issue 4) ---
        self._preamble = preamble
        self.steering: tuple[tuple[str, float], ...] = ()  # set by sim.conditioning
        # --- end conditioning (issue 4) ---

    @property
    def name(self) -> str:
        """The persona's name."""
        return self.persona.name

    def state_dict(self) -> dict[str, Any]:
        """The agent's mutable state as JSON-ready data (persona and policy come from the spec).

        Returns:
            ``memory`` (moments), ``score``, ``last_choice``, ``received`` and ``inventory``.
        """
        return {"key": self.key, "memory": self.memory.state_dict(), "score": self.score,
                "last_choice": dict(self.last_choice), "received": list(self.received),
                "inventory": {k: list(v) for k, v in self.inventory.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state saved by :meth:`state_dict`.

        Raises:
            ValueError: if the state belongs to another agent.
        """
        if state["key"] != self.key:
            raise ValueError(f"agent state of {state['key']!r} given to {self.key!r}")
        self.memory.load_state_dict(state["memory"])
        self.score = float(state["score"])
        self.last_choice = dict(state["last_choice"])
        self.received = list(state["received"])
        self.inventory = {k: list(v) for k, v in state.get("inventory", {}).items()}

    def inventory_of(self, stage_id: str) -> list[str]:
        """The names this agent knows in a stage (the policy's ``initial`` until it plays)."""
        if stage_id in self.inventory:
            return list(self.inventory[stage_id])
        return list(self.policy.initial or []) if self.policy is not None else []

    def context(self, stage: ChoiceStage | DialogueStage, partners: Sequence[Agent],
                round_: int, rounds: int, options: Sequence[str] | None = None
                ) -> dict[str, Any]:
        """The typed template context: the only values a stage prompt can reach.

        ``options``: the choice options in the order this agent is shown them (default: the
        stage's order).
        """
        partner = partners[0] if partners else None
        ctx: dict[str, Any] = {
            "name": self.name, "round": round_, "rounds": rounds, "stage": stage.id,
            "score": f"{self.score:g}", "group_size": len(partners) + 1,
            "partner.name": partner.name if partner else "nobody",
            "partners": ", ".join(p.name for p in partners) or "nobody",
            "history": self.memory.render(stage.memory),
            "partner.last_choice": partner.last_choice.get(stage.id) if partner else None,
            "my.last_choice": self.last_choice.get(stage.id),
        }
        if isinstance(stage, ChoiceStage):
            ctx["options"] = ", ".join(options if options is not None else stage.options)
        else:
            ctx["turns"] = stage.turns
        return ctx

    def _messages(self, user: str) -> tuple[Message, ...]:
        return (Message("system", self._system), Message("user", user))

    def _policy_call(self, stage_id: str, partners: Sequence[Agent], round_: int) -> PolicyCall:
        assert self.policy is not None
        partner = partners[0] if partners else None
        return PolicyCall(
            name=self.policy.name,
            params=self.policy.model_dump(exclude={"name"}, exclude_none=True),
            facts={
                "name": self.name, "round": round_, "stage": stage_id,
                "partner_last_choice": partner.last_choice.get(stage_id) if partner else None,
                "my_last_choice": self.last_choice.get(stage_id),
                "received": tuple(self.received),
                "inventory": tuple(self.inventory_of(stage_id)),
            },
        )

    def choice_request(self, stage: ChoiceStage, partners: Sequence[Agent], round_: int,
                       rounds: int, order: Sequence[int] | None = None) -> ScoreRequest:
        """A request to score the stage's options as this agent's answer.

        Args:
            stage: the choice stage.
            partners: the other members of the agent's group.
            round_: the current round.
            rounds: rounds in the run.
            order: the canonical option indices in the order shown (default: as written);
                the request's options, and its log-probabilities, follow this order.
        """
        shown = tuple(stage.options[i] for i in order) if order is not None \
            else tuple(stage.options)
        prompt = render(stage.prompt, self.context(stage, partners, round_, rounds, shown))
        user = (f"{prompt}\n\nWhat you remember:\n{self.memory.render(stage.memory)}\n\n"
                f"Answer with exactly one of: {', '.join(shown)}.")
        policy = self._policy_call(stage.id, partners, round_) if self.policy else None
        return ScoreRequest(messages=self._messages(user), options=shown, policy=policy,
                            steering=self.steering)  # steering: issue 4

    def dialogue_request(self, stage: DialogueStage, partners: Sequence[Agent],
                         transcript: Sequence[tuple[str, str]], round_: int, rounds: int,
                         sampling: SamplingParams) -> GenerateRequest:
        """A request for this agent's next message in a group conversation."""
        prompt = render(stage.prompt, self.context(stage, partners, round_, rounds))
        lines = "\n".join(f"{who}: {text}" for who, text in transcript) or "(no messages yet)"
        user = (f"{prompt}\n\nWhat you remember:\n{self.memory.render(stage.memory)}\n\n"
                f"Conversation so far:\n{lines}\n\n{_TALK}")
        policy = self._policy_call(stage.id, partners, round_) if self.policy else None
        return GenerateRequest(messages=self._messages(user), sampling=sampling, policy=policy,
                               steering=self.steering)  # steering: issue 4

    def apply_choice(self, stage: ChoiceStage, round_: int, choice: str,
                     partners: Sequence[Agent], their_choices: Sequence[str],
                     payoff: float | None) -> None:
        """Fold a resolved choice (and what partners chose) into this agent's state.

        A stateful scripted policy (``naming_game``) also updates its inventory of the stage
        by :func:`~sim.backends.scripted.naming_game_update`. Under a coordination payoff
        the remembered moment says whether the group matched.
        """
        self.last_choice[stage.id] = choice
        self.received.extend(their_choices)
        if payoff is not None:
            self.score += payoff
        if self.policy is not None and self.policy.name in STATEFUL_POLICIES:
            self.inventory[stage.id] = naming_game_update(self.inventory_of(stage.id), choice,
                                                          their_choices)
        matched = None
        if stage.payoff is not None and stage.payoff.coordination is not None and their_choices:
            matched = all(t == choice for t in their_choices)
        self.memory.add(Moment(round=round_, stage=stage.id,
                               partners=tuple(p.name for p in partners), my_choice=choice,
                               their_choices=tuple(their_choices), payoff=payoff,
                               matched=matched))

    def apply_conversation(self, stage: DialogueStage, round_: int, partners: Sequence[Agent],
                           transcript: Sequence[tuple[str, str]]) -> None:
        """Remember a finished conversation (what this agent said last and heard last)."""
        said = [text for who, text in transcript if who == self.name]
        heard = tuple(text for who, text in transcript if who != self.name)
        self.memory.add(Moment(round=round_, stage=stage.id,
                               partners=tuple(p.name for p in partners),
                               said=said[-1] if said else "", heard=heard))
