"""The real embedded model: converted into a temporary cache, then asked a question in bf16."""

from __future__ import annotations

import pytest

from sim.requests import GenerateRequest, Message, SamplingParams


@pytest.mark.slow
def test_smollm2_knows_paris(model_cache):
    from sim.backends.hf import model_store
    from sim.backends.hf.backend import HFBackend

    path = model_store.default_model_path(model_cache)
    backend = HFBackend(path, dtype="bfloat16")
    request = GenerateRequest(
        messages=(Message("system", "You are a helpful assistant."),
                  Message("user", "What is the capital of France? Answer in one sentence.")),
        sampling=SamplingParams(max_new_tokens=24, temperature=0.0),
    )
    result = backend.generate([request, request])
    assert "Paris" in result[0].text, result[0].text
    assert result[0] == result[1]
    assert result[0].finish_reason == "stop"
    assert backend.info.dtype == "bfloat16" and len(backend.info.weights_hash) == 64
