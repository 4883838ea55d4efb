from __future__ import annotations

import torch

from sim.requests import ScoreRequest
from tests.backends.backend_requests import chat, score


def reference_logprob(backend, request: ScoreRequest, option: str) -> float:
    """Unbatched reference: one full forward on prompt + option, sum of log-softmax."""
    prompt = backend.render(request.messages)
    opt = backend.option_ids(option)
    ids = torch.tensor([prompt + opt])
    with torch.no_grad():
        logits = backend.model(input_ids=ids).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[len(prompt) + j - 1, t] for j, t in enumerate(opt)))


def test_score_matches_reference(tiny_backend):
    reqs = [score(3 + 4 * k, offset=k) for k in range(6)]
    reqs.append(score(5, options=("a", "Paris", "The capital of France is Paris.")))
    results = tiny_backend.score(reqs)
    for req, res in zip(reqs, results, strict=True):
        assert res.error is None
        assert res.num_prompt_tokens == len(tiny_backend.render(req.messages))
        expected = [reference_logprob(tiny_backend, req, o) for o in req.options]
        assert len(res.logprobs) == len(req.options)
        for got, exp in zip(res.logprobs, expected, strict=True):
            assert abs(got - exp) < 1e-4


def test_score_batched_equals_alone_and_order(tiny_backend):
    reqs = [score(1 + (5 * k) % 17, offset=k, options=("yes", "no", "maybe later")[: 2 + k % 2])
            for k in range(10)]
    batched = tiny_backend.score(reqs)
    tiny_backend.max_batch_tokens = 90
    try:
        small = tiny_backend.score(reqs)
    finally:
        tiny_backend.max_batch_tokens = 8192
    for req, b, s in zip(reqs, batched, small, strict=True):
        alone = tiny_backend.score([req])[0]
        assert len(b.logprobs) == len(req.options)
        for x, y, z in zip(b.logprobs, s.logprobs, alone.logprobs, strict=True):
            assert abs(x - z) < 1e-4 and abs(y - z) < 1e-4
    assert tiny_backend.stats["retries"] == tiny_backend.stats["failures"] == 0


def test_shared_prompt_is_prefilled_once(fresh_backend):
    a = ScoreRequest(messages=chat(6), options=("agree", "disagree"))
    b = ScoreRequest(messages=chat(6), options=("disagree", "agree"))
    ra, rb = fresh_backend.score([a, b])
    assert ra.num_cached_tokens == 0 and rb.num_cached_tokens == ra.num_prompt_tokens
    assert ra.logprobs == rb.logprobs[::-1]
    assert fresh_backend.stats["prompt_tokens"] == ra.num_prompt_tokens
    assert fresh_backend.stats["cached_tokens"] == ra.num_prompt_tokens


def test_single_token_and_empty_options(tiny_backend):
    req = score(4, options=("a", "", "b"))
    res = tiny_backend.score([req])[0]
    assert res.logprobs[1] == 0.0
    assert abs(res.logprobs[0] - reference_logprob(tiny_backend, req, "a")) < 1e-4


def test_option_text_with_control_tokens_is_plain_text(tiny_backend):
    im_start = tiny_backend.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert im_start not in tiny_backend.option_ids("<|im_start|>system")
    res = tiny_backend.score([score(3, options=("<|im_end|>", "ok"))])[0]
    assert res.error is None and len(res.logprobs) == 2


def test_many_options_of_mixed_lengths_share_one_row(tiny_backend):
    """Ten options (1 to many tokens, some sharing leading tokens) in one unit's row."""
    names = ("kaz", "mip", "tolu", "rebi", "zop", "fen fen", "luvo dak", "dak", "kazoo",
             "a much longer option with several words")
    reqs = [ScoreRequest(messages=chat(4 + k), options=names[k:] + names[:k]) for k in range(3)]
    results = tiny_backend.score(reqs)
    for req, res in zip(reqs, results, strict=True):
        expected = [reference_logprob(tiny_backend, req, o) for o in req.options]
        for got, exp in zip(res.logprobs, expected, strict=True):
            assert abs(got - exp) < 1e-4
