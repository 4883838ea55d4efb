"""An agent: persona + memory + game state. It builds requests and applies results.

Agents never call a model. The stage runners in :mod:`sim.engine.stages` ask agents for requests,
the engine batches the requests of a whole wave, and the results come back to the agents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import mesa

from agents.memory import Memory, Moment
from agents.persona import Persona, render_persona
from agents.policies import policy_for
from agents.roles import role_in_round
from sim.requests import (
    GenerateRequest,
    Message,
    PolicyCall,
    PolicyFacts,
    SamplingParams,
    ScoreRequest,
)
from sim.scenario.options import option_value
from sim.scenario.spec import BroadcastStage, ChoiceStage, DialogueStage, PolicySpec, SanctionStage
from sim.scenario.templates import render

if TYPE_CHECKING:
    from sim.engine.replica import Replica

__all__ = ["TALK_CONTEXT", "TURN_CUE", "Agent"]

AnyStage = ChoiceStage | DialogueStage | BroadcastStage | SanctionStage

# How to speak is context about the agent, not text of the conversation: it lives in the
# system prompt, in the second person, so that small models do not copy it into a message
# (the old line at the end of the user turn was echoed word for word).
TALK_CONTEXT = ("In conversations you speak only for yourself: when it is your turn you say "
                "one or two short sentences, the way you would say them, and you never write "
                "your name before them.")
TURN_CUE = "Your turn."


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
        received: the distinct choices partners played against this agent, in order of
            first appearance (all a policy needs to know is whether a move was ever
            received; a set keeps the state bounded however long the run).
        inventory: names heard per choice stage since the last success (one entry per
            hearing), kept only by stateful scripted policies
            (``naming_game``); a stage without an entry starts from the policy's ``initial``.
        base_role: the role assigned at the start (``None``: no role); :meth:`role` gives
            the role of a round (roles may alternate).
        private: the agent's private values (a buyer's ``reserve``, ...).
        values: ``stage -> (round, value)``: the number a formula sees for the agent's
            latest choice in each stage.
    """

    def __init__(self, model: Replica, *, index: int, persona: Persona,
                 policy: PolicySpec | None, cohort: str | None, preamble: str,
                 base_role: str | None = None, private: Mapping[str, float] | None = None
                 ) -> None:
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
        self.base_role = base_role
        self.private = dict(private or {})
        self.values: dict[str, tuple[int, float]] = {}
        # The shared scenario preamble comes first so prompts share a prefix across agents.
        self._preamble = preamble
        self._system = ""
        self.set_persona_text(render_persona(persona))
        self.steering: tuple[tuple[str, float], ...] = ()  # set by sim.run.conditioning

    @property
    def name(self) -> str:
        """The persona's name."""
        return self.persona.name

    @property
    def system_prompt(self) -> str:
        """The system prompt: the scenario preamble, then the persona."""
        return self._system

    def set_persona_text(self, text: str) -> None:
        """Replace the persona part of the system prompt (the scenario preamble stays first)."""
        self._system = (f"{self._preamble}\n\n" if self._preamble else "") + text

    def state_dict(self) -> dict[str, Any]:
        """The agent's mutable state as JSON-ready data (persona and policy come from the spec).

        Returns:
            ``memory`` (moments), ``score``, ``last_choice``, ``received`` and ``inventory``.
        """
        return {"key": self.key, "memory": self.memory.state_dict(), "score": self.score,
                "last_choice": dict(self.last_choice), "received": list(self.received),
                "inventory": {k: list(v) for k, v in self.inventory.items()},
                "values": {k: list(v) for k, v in self.values.items()}}

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
        self.values = {k: (int(r), float(v)) for k, (r, v) in state.get("values", {}).items()}

    def inventory_of(self, stage_id: str) -> list[str]:
        """The names this agent knows in a stage (the policy's ``initial`` until it plays)."""
        if stage_id in self.inventory:
            return list(self.inventory[stage_id])
        return list(self.policy.initial or []) if self.policy is not None else []

    def context(self, stage: AnyStage, partners: Sequence[Agent],
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
        if isinstance(stage, ChoiceStage | SanctionStage):
            ctx["options"] = ", ".join(options if options is not None
                                       else getattr(stage, "choices", ()))
        else:
            ctx["turns"] = getattr(stage, "turns", 1)
        ctx.update(self._library_context(partners, round_))
        return ctx

    def role(self, round_: int) -> str | None:
        """The agent's role in a round.

        The assigned role, swapped on even rounds when the scenario alternates roles.
        """
        spec = self.model.spec
        return role_in_round(self.base_role, round_, spec.roles, spec.alternate_roles)

    def value_in(self, stage_id: str, round_: int) -> float:
        """The number of the agent's choice in a stage this round (0 if it did not choose)."""
        r, v = self.values.get(stage_id, (0, 0.0))
        return v if r == round_ else 0.0

    def _library_context(self, partners: Sequence[Agent], round_: int) -> dict[str, Any]:
        """Template fields of roles, private values and choices by stage id."""
        partner = partners[0] if partners else None
        ctx: dict[str, Any] = {"role": self.role(round_),
                               "partner.role": partner.role(round_) if partner else None}
        ctx.update({f"my.{k}": f"{v:g}" for k, v in self.private.items()})
        ctx.update(self.model.world.template_fields(self.index))
        if partner is not None:  # the partner's own variables, under partner.state.Y
            ctx.update({f"partner.{k.removeprefix('my.')}": v for k, v in
                        self.model.world.template_fields(partner.index).items()
                        if k.startswith("my.state.")})
        for sid in {k for p in partners for k in p.last_choice} | set(self.last_choice):
            ctx[f"my.{sid}"] = self.last_choice.get(sid)
            ctx[f"partner.{sid}"] = partner.last_choice.get(sid) if partner else None
            ctx[f"partners.{sid}"] = ", ".join(f"{p.name}: {p.last_choice[sid]}"
                                               for p in partners if sid in p.last_choice) or None
        return ctx

    def _role_text(self, round_: int) -> str:
        """The role line put before a stage prompt (empty without a role)."""
        role_name = self.role(round_)
        if role_name is None:
            return ""
        role = next(r for r in self.model.spec.roles if r.name == role_name)
        text = f"Your role: {role_name}. {role.prompt.strip()}".strip()
        if self.private:
            text += " Private information (only you know it): " + ", ".join(
                f"your {k} is {v:g}" for k, v in self.private.items()) + "."
        return text + "\n\n"

    def apply_payoff(self, stage: AnyStage, round_: int, partners: Sequence[Agent],
                     payoff: float | None, note: str = "nothing",
                     their: Sequence[str] = ()) -> None:
        """Credit a payoff earned outside a plain choice and remember it.

        Used for members paid by a formula over others' moves (``note``: what the agent did,
        ``their``: what the others did), for sanctions and for negotiated deals.
        """
        if payoff is not None:
            self.score += payoff
        self.memory.add(Moment(round=round_, stage=stage.id,
                               partners=tuple(p.name for p in partners), my_choice=note,
                               their_choices=tuple(their), payoff=payoff))

    def _messages(self, user: str, context: str = "") -> tuple[Message, ...]:
        system = f"{self._system}\n\n{context}" if context else self._system
        return (Message("system", system), Message("user", user))

    def _policy_call(self, stage_id: str, partners: Sequence[Agent], round_: int,
                     extra: Mapping[str, Any] | None = None) -> PolicyCall:
        """The agent's policy and what it observes.

        ``extra`` fills further facts by name (a negotiation's ``turn``, ``my_offer``,
        ``partner_offer``).
        """
        assert self.policy is not None
        partner = partners[0] if partners else None
        values = tuple((sid, v) for sid, (r, v) in partner.values.items() if r == round_) \
            if partner else ()
        facts = PolicyFacts(
            name=self.name, round=round_, stage=stage_id,
            partner_last_choice=partner.last_choice.get(stage_id) if partner else None,
            my_last_choice=self.last_choice.get(stage_id),
            received=tuple(self.received),
            inventory=tuple(self.inventory_of(stage_id)),
            role=self.role(round_), private=tuple(self.private.items()),
            partner_values=values, traits=tuple(self.persona.big_five.as_dict().items()),
        )
        return PolicyCall(spec=self.policy, facts=replace(facts, **(extra or {})))

    def choice_request(self, stage: ChoiceStage | SanctionStage, partners: Sequence[Agent],
                       round_: int, rounds: int, order: Sequence[int] | None = None,
                       options: Sequence[str] | None = None, *,
                       canonical_policy: bool = False) -> ScoreRequest:
        """A request to score the stage's options as this agent's answer.

        Args:
            stage: the choice stage.
            partners: the other members of the agent's group.
            round_: the current round.
            rounds: rounds in the run.
            order: the canonical option indices in the order shown (default: as written);
                the request's options, and its log-probabilities, follow this order.
            options: the options (default: the stage's ``choices``; a sanction stage's
                targets).
            canonical_policy: a scripted policy answers over the canonical options (mapped
                to the shown order), so that scoring one choice in several orders (a
                ``balanced`` stage) cannot change what a rule plays.
        """
        canonical = list(options) if options is not None \
            else stage.choices  # type: ignore[union-attr]
        shown = tuple(canonical[i] for i in order) if order is not None else tuple(canonical)
        prompt = self._role_text(round_) + render(
            stage.prompt, self.context(stage, partners, round_, rounds, shown))
        user = (f"{prompt}\n\nWhat you remember:\n{self.memory.render(stage.memory)}\n\n"
                f"Answer with exactly one of: {', '.join(shown)}.")
        policy = self._policy_call(stage.id, partners, round_) if self.policy else None
        if policy is not None and canonical_policy:
            policy = replace(policy, options=tuple(canonical))
        return ScoreRequest(messages=self._messages(user), options=shown, policy=policy,
                            steering=self.steering)

    def dialogue_request(self, stage: DialogueStage | BroadcastStage, partners: Sequence[Agent],
                         transcript: Sequence[tuple[str, str]], round_: int, rounds: int,
                         sampling: SamplingParams, facts: Mapping[str, Any] | None = None
                         ) -> GenerateRequest:
        """A request for this agent's next message in a group conversation.

        ``facts``: extra facts for a scripted policy (a negotiation's standing offers).
        """
        prompt = self._role_text(round_) + render(
            stage.prompt, self.context(stage, partners, round_, rounds))
        lines = "\n".join(f"{who}: {text}" for who, text in transcript) or "(no messages yet)"
        user = (f"{prompt}\n\nWhat you remember:\n{self.memory.render(stage.memory)}\n\n"
                f"Conversation so far:\n{lines}\n\n{TURN_CUE}")
        policy = self._policy_call(stage.id, partners, round_, facts) if self.policy else None
        return GenerateRequest(messages=self._messages(user, TALK_CONTEXT), sampling=sampling,
                               policy=policy,
                               steering=self.steering)

    def apply_choice(self, stage: ChoiceStage | SanctionStage, round_: int, choice: str,
                     partners: Sequence[Agent], their_choices: Sequence[str],
                     payoff: float | None) -> None:
        """Fold a resolved choice (and what partners chose) into this agent's state.

        A stateful scripted policy (``naming_game``) also updates its inventory of the stage
        by its learning rule (:meth:`agents.policies.Policy.update`). Under a coordination payoff
        the remembered moment says whether the group matched.
        """
        self.last_choice[stage.id] = choice
        if isinstance(stage, ChoiceStage):
            self.values[stage.id] = (round_, option_value(stage.choices,
                                                          stage.choices.index(choice)))
        for theirs in their_choices:
            if theirs not in self.received:
                self.received.append(theirs)
        if payoff is not None:
            self.score += payoff
        rule = policy_for(self.policy.name) if self.policy is not None else None
        if rule is not None and rule.stateful:
            self.inventory[stage.id] = rule.update(self.inventory_of(stage.id), choice,
                                                   their_choices)
        matched = None
        if isinstance(stage, ChoiceStage) and stage.payoff is not None \
                and stage.payoff.coordination is not None and their_choices:
            matched = all(t == choice for t in their_choices)
        self.memory.add(Moment(round=round_, stage=stage.id,
                               partners=tuple(p.name for p in partners), my_choice=choice,
                               their_choices=tuple(their_choices), payoff=payoff,
                               matched=matched))

    def apply_conversation(self, stage: DialogueStage | BroadcastStage, round_: int,
                           partners: Sequence[Agent],
                           transcript: Sequence[tuple[str, str]]) -> None:
        """Remember a finished conversation (what this agent said last and heard last)."""
        said = [text for who, text in transcript if who == self.name]
        heard = tuple(text for who, text in transcript if who != self.name)
        self.memory.add(Moment(round=round_, stage=stage.id,
                               partners=tuple(p.name for p in partners),
                               said=said[-1] if said else "", heard=heard))
