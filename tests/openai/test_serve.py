"""`traitlab serve`: the OpenAI-compatible endpoints over the tiny model, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from sim.requests import Message, ScoreRequest
from tests.openai.requests_ import PD, SCORES

CHAT = [{"role": m.role, "content": m.content} for m in PD]


def test_models_lists_the_model_as_traitlab(server, served_backend) -> None:
    data = httpx.get(f"{server.base_url}/models", timeout=10).json()["data"]
    assert [card["id"] for card in data] == [served_backend.info.model_id]
    assert data[0]["owned_by"] == "traitlab"


def test_tokenize_renders_the_chat_exactly_as_the_backend(server, reference_backend) -> None:
    body = {"messages": CHAT, "add_generation_prompt": True}
    got = httpx.post(f"{server.url}/tokenize", json=body, timeout=10).json()
    assert got["tokens"] == reference_backend.render(PD)
    assert got["count"] == len(got["tokens"])
    text = httpx.post(f"{server.url}/detokenize", json={"tokens": got["tokens"]},
                      timeout=10).json()["prompt"]
    assert text == reference_backend.tokenizer.decode(reference_backend.render(PD))


def test_echo_logprobs_reproduce_the_backends_option_scores(server, reference_backend) -> None:
    """Prompt ids + option ids, echoed with max_tokens 0: the option positions sum to score()."""
    for req in SCORES:
        prompt = reference_backend.render(req.messages)
        options = [reference_backend.option_ids(o) for o in req.options]
        body = {"prompt": [prompt + o for o in options], "echo": True, "logprobs": 0,
                "max_tokens": 0, "prompt_logprobs": 0}
        reply = httpx.post(f"{server.base_url}/completions", json=body, timeout=30).json()
        want = reference_backend.score([req])[0].logprobs
        for choice, ids, expected in zip(reply["choices"], options, want, strict=True):
            legacy = choice["logprobs"]["token_logprobs"]
            assert legacy[0] is None and len(legacy) == len(prompt) + len(ids)
            assert math.fsum(legacy[len(prompt):]) == pytest.approx(expected, abs=1e-4)
            vllm = choice["prompt_logprobs"][len(prompt):]
            full = prompt + ids
            total = math.fsum(e[str(full[len(prompt) + k])]["logprob"]
                              for k, e in enumerate(vllm))
            assert total == pytest.approx(expected, abs=1e-4)
        assert reply["usage"]["completion_tokens"] == 0


def test_completion_from_text_and_chat_logprobs(server, reference_backend) -> None:
    body = {"prompt": "Alice meets Bob", "max_tokens": 4, "temperature": 0, "logprobs": 2}
    choice = httpx.post(f"{server.base_url}/completions", json=body, timeout=30).json()[
        "choices"][0]
    assert len(choice["logprobs"]["token_logprobs"]) >= 1
    assert all(v <= 0 for v in choice["logprobs"]["token_logprobs"])
    chat = {"messages": CHAT, "max_tokens": 5, "temperature": 0, "logprobs": True,
            "top_logprobs": 2}
    reply = httpx.post(f"{server.base_url}/chat/completions", json=chat, timeout=30).json()
    content = reply["choices"][0]["logprobs"]["content"]
    assert content and all(len(t["top_logprobs"]) == 2 for t in content)


def test_traitlab_score_extension_is_the_backends_score(server, reference_backend) -> None:
    req = SCORES[1]
    body = {"messages": [{"role": m.role, "content": m.content} for m in req.messages],
            "options": list(req.options)}
    got = httpx.post(f"{server.url}/traitlab/score", json=body, timeout=30).json()
    # equal up to float rounding (a kept prompt prefix changes the summation order)
    assert got["logprobs"] == pytest.approx(reference_backend.score([req])[0].logprobs, abs=1e-4)


def test_concurrent_requests_share_waves(server) -> None:
    async def burst() -> list[dict]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            bodies = [{"messages": CHAT, "max_tokens": 3, "temperature": 0.8, "seed": s}
                      for s in range(8)]
            replies = await asyncio.gather(*(client.post("/chat/completions", json=b)
                                             for b in bodies))
            return [r.json() for r in replies]

    before = httpx.get(f"{server.url}/health", timeout=10).json()
    replies = asyncio.run(burst())
    after = httpx.get(f"{server.url}/health", timeout=10).json()
    assert all(r["choices"][0]["message"]["content"] is not None for r in replies)
    assert after["requests"] - before["requests"] == 8
    assert after["waves"] - before["waves"] < 8  # gathered, not one wave per request


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, 400),
        ("/v1/chat/completions", {"messages": CHAT, "n": 2}, 400),
        ("/v1/chat/completions", {"messages": CHAT, "model": "nope"}, 404),
        ("/v1/completions", {"prompt": [10**9], "max_tokens": 0}, 400),
        ("/v1/chat/completions", {"messages": CHAT, "traitlab": {"steering": [["x", 1]]}}, 400),
    ],
)
def test_bad_requests_are_refused_with_openai_errors(server, path, body, status) -> None:
    reply = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    assert reply.status_code == status
    assert reply.json()["error"]["message"]


def test_non_loopback_hosts_are_warned_about() -> None:
    from sim.serve import loopback_warning

    assert loopback_warning("127.0.0.1") is None
    assert loopback_warning("::1") is None
    assert loopback_warning("localhost") is None
    assert "0.0.0.0" in (loopback_warning("0.0.0.0") or "")
    assert loopback_warning("192.168.1.5") is not None


def test_any_backend_can_be_served_without_tokenize() -> None:
    from sim.backends.scripted import ScriptedBackend
    from sim.serve import start_server

    backend = ScriptedBackend()
    with start_server(backend, window_ms=0) as handle:
        reply = httpx.post(f"{handle.base_url}/chat/completions",
                           json={"messages": CHAT, "seed": 5}, timeout=10).json()
        want = backend.generate([_generate(PD, 5)])[0].text
        assert reply["choices"][0]["message"]["content"] == want
        assert httpx.post(f"{handle.url}/tokenize", json={"prompt": "x"},
                          timeout=10).status_code == 404
        score = httpx.post(f"{handle.url}/traitlab/score",
                           json={"messages": CHAT, "options": ["a", "b"]}, timeout=10).json()
        assert score["logprobs"] == list(
            backend.score([ScoreRequest(messages=PD, options=("a", "b"))])[0].logprobs)


def _generate(messages: tuple[Message, ...], seed: int):
    from sim.requests import GenerateRequest, SamplingParams

    return GenerateRequest(messages=messages, sampling=SamplingParams(max_new_tokens=256,
                                                                      temperature=1.0, seed=seed))
