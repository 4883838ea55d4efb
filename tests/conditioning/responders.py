"""A scripted synthetic responder: a Backend whose respondents have known traits.

It is not a model and not a mock of one: it answers survey score requests the way a person
with known Big Five scores, item-level noise and a yea-saying bias would, so the survey
scorer and the psychometrics can be checked against the truth.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from agents.instruments import Instrument
from sim.backends.protocol import Capabilities
from sim.requests import ModelInfo, ScoreRequest, ScoreResult


class SyntheticResponders:
    """Answers by system prompt: ``truth[system] = {trait: score in [0, 1]}``."""

    capabilities = Capabilities()  # answers by prompt only: no steering, cache or counters

    def __init__(self, inst: Instrument, truth: Mapping[str, Mapping[str, float]], *,
                 bias: float = 0.0, noise: float = 0.5, sharpness: float = 3.0) -> None:
        self.inst, self.truth = inst, truth
        self.bias, self.noise, self.sharpness = bias, noise, sharpness
        self.by_text = {item.text: item for item in inst.items}

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(backend="synthetic", model_id="synthetic")

    def generate(self, requests):  # pragma: no cover - score mode only
        raise NotImplementedError

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        out = []
        for req in requests:
            system = req.messages[0].content
            statement = req.messages[-1].content.rsplit("Statement: ", 1)[1]
            item = self.by_text[statement]
            seed = zlib.crc32(f"{system}|{item.id}".encode())
            noise = np.random.default_rng(seed).normal(0.0, self.noise)
            trait = self.truth[system][item.trait]
            latent = 3.0 + 4.0 * (trait - 0.5) * item.keyed + noise + self.bias
            logps = [-self.sharpness * (int(o) - latent) ** 2 for o in req.options]
            top = max(logps)
            norm = top + math.log(sum(math.exp(x - top) for x in logps))
            out.append(ScoreResult(logprobs=tuple(x - norm for x in logps)))
        return out
