"""The contract between agents, engine and backends: requests in, results out, in batches.

Agents build requests; they never call a model. The engine gathers every independent request
of a wave and hands the whole list to a :class:`Backend` in one call. Backends are
order-preserving (result ``i`` answers request ``i``) and must not let one request's output
depend on which other requests share its batch.

Example:
    >>> req = ScoreRequest(messages=(Message("user", "Cooperate or defect?"),),
    ...                    options=("cooperate", "defect"))
    >>> len(req.options)
    2
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the scenario layer sits above this one: annotation only
    from sim.scenario.spec import PolicySpec

__all__ = [
    "GenerateRequest",
    "GenerateResult",
    "Message",
    "ModelInfo",
    "PolicyCall",
    "PolicyFacts",
    "SamplingParams",
    "ScoreRequest",
    "ScoreResult",
]

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "error"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. ``content`` is plain text: backends never parse control tokens in it."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SamplingParams:
    """How one generate request is decoded.

    Attributes:
        max_new_tokens: upper bound on generated tokens.
        temperature: 0 means greedy decoding.
        top_p: nucleus sampling mass (1.0 disables it).
        seed: per-request seed. A run's waves are deterministic, so the same seed in the same
            run gives the same tokens; in another batch the logits can differ in the last
            bits (bfloat16 more than float32), and so can a sampled or near-tied token.
        stop: extra stop strings; generation also stops at the model's end-of-turn token.
    """

    max_new_tokens: int = 40
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyFacts:
    """The observable facts of a scripted agent's situation when it is asked to act.

    Attributes:
        name: the agent's name.
        round: the current round (1-based).
        stage: the stage id.
        partner_last_choice: the (first) partner's latest choice in this stage.
        my_last_choice: the agent's own latest choice in this stage.
        received: the distinct choices partners played against the agent, in order of
            first appearance.
        inventory: names heard in this stage since the last success (``naming_game``).
        role: the agent's role this round (``None``: no roles).
        private: the agent's private values (``(("reserve", 80.0),)``).
        partner_values: ``(stage, value)`` of the partner's choices this round.
        turn: the dialogue turn (negotiations only).
        my_offer: the agent's standing offer (negotiations only).
        partner_offer: the partner's latest standing offer (negotiations only).
        traits: the agent's assigned Big Five scores in [0, 1] (``(("agreeableness", 0.8),
            ...)``), for policies whose behaviour depends on the persona (``trait_linked``).
    """

    name: str = ""
    round: int = 0
    stage: str = ""
    partner_last_choice: str | None = None
    my_last_choice: str | None = None
    received: tuple[str, ...] = ()
    inventory: tuple[str, ...] = ()
    role: str | None = None
    private: tuple[tuple[str, float], ...] = ()
    partner_values: tuple[tuple[str, float], ...] = ()
    turn: int | None = None
    my_offer: float | None = None
    partner_offer: float | None = None
    traits: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyCall:
    """What a scripted policy needs to answer a request without a model.

    Attributes:
        spec: the agent's policy from the scenario (a frozen ``PolicySpec``): its name picks
            the rule, its fields are the rule's parameters.
        facts: what the agent observes (partner's last choice, standing offers, ...).
        options: for a score request, the options in canonical order when the policy must
            answer over those rather than the shown order (rules that default to "the first
            option" would otherwise follow the listing); ``None``: the shown order.
    """

    spec: PolicySpec
    facts: PolicyFacts = PolicyFacts()
    options: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        """The policy's name (``tit_for_tat``, ``always``, ...)."""
        return self.spec.name


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateRequest:
    """Free text continuing a chat.

    Attributes:
        messages: the chat so far; the backend applies the model's chat template.
        sampling: decoding parameters, including the per-request seed.
        steering: per-trait steering coefficients (``(("extraversion", 2.0), ...)``).
        policy: set for agents answered by the scripted backend.
    """

    messages: tuple[Message, ...]
    sampling: SamplingParams = SamplingParams()
    steering: tuple[tuple[str, float], ...] = ()
    policy: PolicyCall | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreRequest:
    """Log-likelihood of each option as the assistant's reply to ``messages``.

    Attributes:
        messages: the chat so far; options are scored as the start of the assistant's turn.
        options: the closed set of replies (at least two).
        steering: per-trait steering coefficients, as for generation.
        policy: set for agents answered by the scripted backend.
    """

    messages: tuple[Message, ...]
    options: tuple[str, ...]
    steering: tuple[tuple[str, float], ...] = ()
    policy: PolicyCall | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateResult:
    """The answer to one :class:`GenerateRequest`.

    Attributes:
        text: decoded new text, without the end-of-turn token or stop string.
        num_prompt_tokens: prompt length in tokens.
        num_new_tokens: tokens generated.
        finish_reason: ``stop`` (end of turn / stop string), ``length`` or ``error``.
        num_cached_tokens: prompt tokens served from a shared-prefix cache (depends on what
            the request was batched with, so it is left out of ``==``).
        error: why the request failed, when ``finish_reason == "error"``.
    """

    text: str
    num_prompt_tokens: int = 0
    num_new_tokens: int = 0
    finish_reason: FinishReason = "stop"
    num_cached_tokens: int = field(default=0, compare=False)
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreResult:
    """The answer to one :class:`ScoreRequest`.

    Attributes:
        logprobs: total log-likelihood of each option, in request order.
        num_prompt_tokens: prompt length in tokens.
        num_cached_tokens: prompt tokens served from a shared-prefix cache (depends on what
            the request was batched with, so it is left out of ``==``).
        error: why the request failed (``logprobs`` is then empty).
        decided_by: how the options were decided: ``logprobs`` (option log-likelihoods),
            ``constrained`` (a server held to the option set), ``parsed`` (a reply parsed
            for an option), ``policy`` (a scripted policy) or ``failed``; ``None`` where a
            backend does not say.
    """

    logprobs: tuple[float, ...]
    num_prompt_tokens: int = 0
    num_cached_tokens: int = field(default=0, compare=False)
    error: str | None = None
    decided_by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """What a run's manifest records about the backend."""

    backend: str
    model_id: str
    weights_hash: str | None = None
    dtype: str | None = None
    device: str | None = None
