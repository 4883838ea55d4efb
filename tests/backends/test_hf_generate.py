from __future__ import annotations

import pytest

from sim.backends.protocol import Backend
from sim.requests import GenerateResult
from tests.backends.backend_requests import gen, mixed_generate


def _same(a: GenerateResult, b: GenerateResult) -> None:
    assert (a.text, a.num_new_tokens, a.finish_reason) == (
        b.text, b.num_new_tokens, b.finish_reason)


def test_backend_protocol(tiny_backend):
    assert isinstance(tiny_backend, Backend)
    info = tiny_backend.info
    assert info.backend == "hf" and info.dtype == "float32" and info.device == "cpu"
    assert len(info.weights_hash) == 64


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_row_alone_equals_row_in_batch(tiny_backend, temperature):
    target = gen(9, seed=7, temperature=temperature, max_new=12)
    alone = tiny_backend.generate([target])[0]
    others = mixed_generate(16, temperature=temperature)
    batch = [*others[:5], target, *others[5:]]
    results = tiny_backend.generate(batch)
    _same(results[5], alone)
    assert alone.num_new_tokens > 0 and alone.finish_reason in ("stop", "length")
    for req, res in zip(others, results[:5] + results[6:], strict=True):
        _same(res, tiny_backend.generate([req])[0])
    assert tiny_backend.stats["retries"] == tiny_backend.stats["failures"] == 0


def test_same_seed_same_text_different_seeds_differ(tiny_backend):
    reqs = [gen(6, seed=s, temperature=1.0, max_new=10) for s in (1, 1)]
    a, b = tiny_backend.generate(reqs)
    assert a.text == b.text
    again = tiny_backend.generate([reqs[0]])[0]
    assert again.text == a.text
    texts = {r.text for r in tiny_backend.generate(
        [gen(6, seed=1, temperature=1.0, max_new=10).__class__(
            messages=reqs[0].messages,
            sampling=reqs[0].sampling.__class__(max_new_tokens=10, temperature=1.0, seed=s))
         for s in range(6)])}
    assert len(texts) > 1


def test_greedy_ignores_seed(tiny_backend):
    a, b = tiny_backend.generate([gen(5, seed=1, max_new=8), gen(5, seed=1, max_new=8)])
    assert a.text == b.text


def test_order_preserved_with_small_budget(tiny_backend):
    reqs = mixed_generate(12, temperature=1.0)
    expected = [tiny_backend.generate([r])[0] for r in reqs]
    before = tiny_backend.stats["batches"]
    tiny_backend.max_batch_tokens = 120
    try:
        got = tiny_backend.generate(reqs)
    finally:
        tiny_backend.max_batch_tokens = 8192
    assert tiny_backend.stats["batches"] - before > 1
    for g, e in zip(got, expected, strict=True):
        _same(g, e)
    assert [g.num_prompt_tokens for g in got] == [e.num_prompt_tokens for e in expected]
    assert len({g.num_prompt_tokens for g in got}) > 3


def test_max_new_tokens_and_early_exit(tiny_backend):
    reqs = [gen(4 + k, seed=k, temperature=1.0, max_new=m) for k, m in enumerate([1, 9, 3, 0, 6])]
    results = tiny_backend.generate(reqs)
    for req, res in zip(reqs, results, strict=True):
        assert res.num_new_tokens <= req.sampling.max_new_tokens
        if res.finish_reason == "length":
            assert res.num_new_tokens == req.sampling.max_new_tokens
        _same(res, tiny_backend.generate([req])[0])
    assert results[3].text == "" and results[3].num_new_tokens == 0


def test_end_of_turn_token_stops_row(fresh_backend):
    req = gen(8, seed=3, max_new=10)
    ids = fresh_backend.render(req.messages)
    free = fresh_backend.generate([req])[0]
    assert free.finish_reason == "length"
    # find the greedy tokens and declare the 4th one an end-of-turn token
    import torch
    seq = list(ids)
    with torch.no_grad():
        for _ in range(4):
            logits = fresh_backend.model(input_ids=torch.tensor([seq])).logits[0, -1]
            seq.append(int(logits.argmax()))
    stop_tok = seq[len(ids) + 3]
    assert stop_tok not in seq[len(ids): len(ids) + 3]
    fresh_backend._ctx.stop_ids = frozenset({stop_tok})
    other = gen(3, seed=9, temperature=1.0, max_new=10)
    stopped, _ = fresh_backend.generate([req, other])
    assert stopped.finish_reason == "stop" and stopped.num_new_tokens == 4
    expected = fresh_backend.tokenizer.decode(seq[len(ids): len(ids) + 3], skip_special_tokens=True)
    assert stopped.text == expected


def test_stop_strings(tiny_backend):
    req = gen(10, seed=2, max_new=16)
    full = tiny_backend.generate([req])[0].text
    k = next(i for i in range(1, len(full) - 1)
             if full[i:i + 2].isascii() and full[i:i + 2].isalnum())
    stop = full[k:k + 2]
    stopped_req = gen(10, seed=2, max_new=16, stop=("zzzzqq", stop))
    res = tiny_backend.generate([gen(4, seed=5, temperature=1.0), stopped_req])[1]
    assert res.finish_reason == "stop"
    assert res.text == full[: full.find(stop)]
    assert res.num_new_tokens < 16


def test_stats_count_tokens(fresh_backend):
    res = fresh_backend.generate([gen(3, max_new=4), gen(5, max_new=2)])
    stats = fresh_backend.stats
    assert stats["batches"] == 1 and stats["failures"] == 0
    assert stats["new_tokens"] == sum(r.num_new_tokens for r in res)
    assert stats["prompt_tokens"] == sum(r.num_prompt_tokens for r in res)
