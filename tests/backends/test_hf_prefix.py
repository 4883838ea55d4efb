"""Shared-prefix prefill: same results with and without sharing, batched and alone, steered."""

from __future__ import annotations

import pytest
import torch

from sim.backends.hf import prefix
from sim.backends.hf.batching import plan_batches
from sim.requests import GenerateRequest, Message, SamplingParams, ScoreRequest
from tests.backends.test_hf_score import reference_logprob

PREAMBLE = ("You are Alice, a careful baker from a small village by the sea. You answer every "
            "question about yourself honestly and in few words, thinking of your neighbours.")
ITEMS = ["I am the life of the party.", "I sympathize with others.", "I get chores done.",
         "I have frequent mood swings.", "I have a vivid imagination.", "I talk a lot.",
         "Bob?"]
OPTIONS = ("agree", "disagree", "neither agree nor disagree")


def item_chat(item: str, preamble: str = PREAMBLE) -> tuple[Message, ...]:
    return (Message("system", preamble), Message("user", item))


def lcp(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@pytest.fixture
def steered(fresh_backend):
    gen = torch.Generator().manual_seed(3)
    hidden = fresh_backend.model.config.hidden_size
    fresh_backend.set_steering({"joy": torch.randn(hidden, generator=gen)}, layers=[0, 1])
    return fresh_backend


@pytest.fixture
def no_sharing(monkeypatch):
    """Turn prefix sharing off (no two rows ever share enough tokens)."""
    def apply() -> None:
        monkeypatch.setattr(prefix, "MIN_SHARED", 10**9)
    return apply


def test_group_rows_by_hand():
    a, b, c = [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 7], [1, 2, 3, 4, 5, 6]
    # a and c are equal: the prefix leaves each row its last token; b shares 4 with them
    assert prefix.group_rows([a, b, c], [(), (), ()], min_shared=3) == [(4, [0, 2, 1])]
    # different steering never shares; a single long row stays alone
    assert prefix.group_rows([a, c], [(), (("joy", 1.0),)], min_shared=3) == [(0, [0]), (0, [1])]
    # a third row sharing little would shrink the group's saving: it starts its own group
    d, e = [1, 2, 9], [1, 2, 3, 4, 5, 8]
    assert prefix.group_rows([a, e, d], [(), (), ()], min_shared=2) == [(5, [0, 1]), (0, [2])]


def test_prefix_order_keeps_groups_adjacent_and_lengths_sorted():
    long_a = [[7] * 40 + [k] for k in range(3)]
    short = [[k, 1, 2] for k in range(3)]
    prompts = [long_a[0], short[0], long_a[1], short[1], long_a[2], short[2]]
    order = prefix.prefix_order(prompts, [()] * 6, min_shared=8)
    assert order[:3] == [1, 3, 5] and sorted(order[3:]) == [0, 2, 4]


def test_prefix_order_never_pads_a_short_prompt_to_a_long_one():
    """Rows sharing a prefix but 10x apart in length go to different length buckets."""
    head = list(range(100, 140))
    shorts = [[*head, k] for k in range(6)]                 # 41 tokens
    longs = [[*head, *range(200, 560), k] for k in range(2)]  # 401 tokens
    prompts = [*shorts[:3], longs[0], *shorts[3:], longs[1]]
    order = prefix.prefix_order(prompts, [()] * 8, min_shared=8)
    assert sorted(order[:6]) == [0, 1, 2, 4, 5, 6] and sorted(order[6:]) == [3, 7]
    batches = plan_batches([len(p) for p in prompts], [4] * 8, max_tokens=4000, max_size=16,
                           order=order)
    assert all(len({len(prompts[i]) for i in b}) == 1 for b in batches)


def test_score_shared_prefix_matches_reference_and_counts(steered):
    reqs = [ScoreRequest(messages=item_chat(item), options=OPTIONS,
                         steering=(("joy", 1.0),) if k % 2 else ()) for k, item in enumerate(ITEMS)]
    reqs.append(ScoreRequest(messages=item_chat("Hi", preamble="Short."), options=OPTIONS))
    results = steered.score(reqs)
    ids = [steered.render(r.messages) for r in reqs]
    # plain rows (even k) share the preamble with each other; steered rows (odd k) likewise
    plain, pushed = ids[0:7:2], ids[1:7:2]
    shared = [min(lcp(g[0], x) for x in g[1:]) for g in (plain, pushed)]
    assert min(shared) > 30
    expected_cached = (len(plain) - 1) * shared[0] + (len(pushed) - 1) * shared[1]
    assert sum(r.num_cached_tokens for r in results) == expected_cached
    assert steered.stats["cached_tokens"] == expected_cached
    for req, res in zip(reqs, results, strict=True):
        steered.forget_prefixes()  # alone: nothing kept from earlier calls either
        alone = steered.score([req])[0]
        assert alone.num_cached_tokens == 0
        assert res.logprobs == pytest.approx(alone.logprobs, abs=1e-4)
        if not req.steering:
            expected = [reference_logprob(steered, req, o) for o in req.options]
            assert res.logprobs == pytest.approx(expected, abs=1e-4)


def test_score_with_and_without_sharing_agree(tiny_backend, no_sharing):
    reqs = [ScoreRequest(messages=item_chat(item), options=OPTIONS) for item in ITEMS]
    shared = tiny_backend.score(reqs)
    assert sum(r.num_cached_tokens for r in shared) > 0
    no_sharing()
    unshared = tiny_backend.score(reqs)
    assert sum(r.num_cached_tokens for r in unshared) == 0
    for a, b in zip(shared, unshared, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def _gen(item: str, *, seed: int, temperature: float, steering=(), max_new: int = 10):
    return GenerateRequest(
        messages=item_chat(item),
        sampling=SamplingParams(max_new_tokens=max_new, temperature=temperature, seed=seed),
        steering=tuple(steering),
    )


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generate_shared_prefix_equals_alone_and_unshared(steered, no_sharing, temperature):
    reqs = [_gen(item, seed=k, temperature=temperature, max_new=4 + k % 5,
                 steering=(("joy", 2.0),) if k % 3 == 0 else ()) for k, item in enumerate(ITEMS)]
    reqs.append(GenerateRequest(messages=item_chat("Hello there", preamble="Be brief."),
                                sampling=SamplingParams(max_new_tokens=6, temperature=temperature,
                                                        seed=99)))
    batched = steered.generate(reqs)
    assert sum(r.num_cached_tokens for r in batched) > 0
    alone = []
    for r in reqs:
        steered.forget_prefixes()  # alone: nothing kept from earlier calls either
        alone.append(steered.generate([r])[0])
    no_sharing()
    unshared = steered.generate(reqs)
    assert sum(r.num_cached_tokens for r in unshared) == 0
    for b, a, u in zip(batched, alone, unshared, strict=True):
        assert b.error is None and b.num_new_tokens > 0
        assert b == a == u
