"""A model stand-in with a planted position preference, for position-bias tests."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sim.requests import GenerateRequest, GenerateResult, ModelInfo, ScoreRequest, ScoreResult


class PositionBackend:
    """Two-option choices with a known preference plus a known first-position bonus.

    The option shown first gets ``base[option] + bonus / 2`` and the second
    ``base[option] - bonus / 2``, so P(option | first) - P(option | second) = ``bonus`` and
    the average over both orders is exactly ``base``.
    """

    def __init__(self, base: Mapping[str, float], bonus: float) -> None:
        self.base = dict(base)
        self.bonus = bonus

    @property
    def info(self) -> ModelInfo:
        """Identity for the manifest."""
        return ModelInfo(backend="scripted", model_id="position-planted")

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Log-probabilities of the shown options under the planted model."""
        out = []
        for r in requests:
            first, second = r.options
            p = self.base[first] + self.bonus / 2
            out.append(ScoreResult(logprobs=(math.log(p), math.log(1.0 - p))))
            assert second in self.base
        return out

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Unused: the test scenarios have no dialogue."""
        return [GenerateResult(text="", num_new_tokens=0) for _ in requests]
