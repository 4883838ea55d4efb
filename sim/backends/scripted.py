"""The scripted backend: answers requests with rule policies instead of a model.

Rule policies are real experimental conditions (fixed-strategy partners, committed
minorities) and this is the fast deterministic backend of the tests. A request's policy is
looked up in :data:`agents.policies.POLICIES`; a request without a policy gets uniform
scores, and a short stock message for dialogue (as does a policy without its own messages).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from agents.policies import policy_for
from sim.backends.protocol import Capabilities
from sim.requests import (
    GenerateRequest,
    GenerateResult,
    ModelInfo,
    PolicyCall,
    ScoreRequest,
    ScoreResult,
)

__all__ = ["ScriptedBackend", "policy_probabilities"]

_PHRASES = (
    "Hello! I think we can both do well if we trust each other.",
    "I have been thinking about the last round, and I want to be fair.",
    "Let us keep it simple and play it straight this time.",
    "I am not sure yet; what are you planning to do?",
    "Good to meet you. I usually keep my promises.",
    "Honestly, I care most about how this ends for both of us.",
)


def policy_probabilities(policy: PolicyCall | None, options: Sequence[str]) -> list[float]:
    """Probability of each option under a request's policy (uniform without one)."""
    if policy is None:
        return [1.0 / len(options)] * len(options)
    rule = policy_for(policy.spec.name)
    if policy.options is None:
        return rule.probabilities(policy.spec, policy.facts, options)
    canonical = rule.probabilities(policy.spec, policy.facts, policy.options)
    by_option = dict(zip(policy.options, canonical, strict=True))
    return [by_option[o] for o in options]


class ScriptedBackend:
    """Answers score requests with policy distributions and generate requests with stock text.

    Attributes:
        calls: number of ``generate`` / ``score`` calls (tests count batching with it).
    """

    capabilities = Capabilities()
    """No steering, no prefix cache, no counters beyond :attr:`calls`."""

    def __init__(self) -> None:
        self.calls = {"generate": 0, "score": 0}

    @property
    def info(self) -> ModelInfo:
        """Identity for the manifest."""
        return ModelInfo(backend="scripted", model_id="scripted-policies")

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Log-probability of every option under each request's policy."""
        self.calls["score"] += 1
        return [
            ScoreResult(logprobs=tuple(math.log(p) if p > 0 else -math.inf
                                       for p in policy_probabilities(r.policy, r.options)),
                        decided_by="policy")
            for r in requests
        ]

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """The policy's message, or a stock phrase picked by the request's seed."""
        self.calls["generate"] += 1
        out = []
        for r in requests:
            text = None
            if r.policy is not None:
                text = policy_for(r.policy.spec.name).message(r.policy.spec, r.policy.facts)
            if text is None:
                rng = np.random.default_rng(r.sampling.seed)
                text = _PHRASES[int(rng.integers(len(_PHRASES)))]
            out.append(GenerateResult(text=text, num_new_tokens=len(text.split())))
        return out
