"""A prompt that does not fit the model's context becomes a failed request with the reason,
never a silent run past the positions the model knows (the tiny model has 4096)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.backends.hf.backend import HFBackend
from sim.requests import GenerateRequest, Message, SamplingParams, ScoreRequest


@pytest.fixture(scope="module")
def hf(tiny_model_path: Path) -> HFBackend:
    """The tiny ChatML model in fp32 on one thread."""
    return HFBackend(tiny_model_path, dtype="float32", threads=1)


def _chat(words: int) -> tuple[Message, ...]:
    return (Message(role="user", content=" ".join(["cooperate"] * words)),)


def test_the_context_is_read_from_the_model(hf):
    assert hf.context == 4096


def test_generate_refuses_a_prompt_over_the_context_and_runs_the_rest(hf):
    sampling = SamplingParams(max_new_tokens=8, temperature=0.0, seed=1)
    fits, too_long, almost = hf.generate([
        GenerateRequest(messages=_chat(5), sampling=sampling),
        GenerateRequest(messages=_chat(5000), sampling=sampling),
        GenerateRequest(messages=_chat(5), sampling=SamplingParams(max_new_tokens=4090)),
    ])
    assert fits.error is None
    assert too_long.error is not None and too_long.num_prompt_tokens > 4096
    assert "over the model's context of 4096 positions" in too_long.error
    assert too_long.text == "" and too_long.finish_reason == "error"
    assert almost.error is not None and "up to 4090 new tokens" in almost.error


def test_score_refuses_a_prompt_over_the_context_and_scores_the_rest(hf):
    fits, too_long = hf.score([
        ScoreRequest(messages=_chat(5), options=("cooperate", "defect")),
        ScoreRequest(messages=_chat(5000), options=("cooperate", "defect")),
    ])
    assert fits.error is None and len(fits.logprobs) == 2
    assert too_long.logprobs == () and too_long.error is not None
    assert "over the model's context of 4096 positions" in too_long.error
