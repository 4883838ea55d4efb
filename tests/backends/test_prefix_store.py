"""Prompt KV kept between batches: exact matches only, LRU-bounded, and results unchanged."""

from __future__ import annotations

import pytest
import torch

from sim.backends.hf.prefix_store import BLOCK, PrefixStore
from sim.engine.loop import drive
from sim.executors.local import LocalExecutor
from sim.requests import GenerateRequest, Message, SamplingParams, ScoreRequest


def kv(n: int, fill: float = 0.0):
    return [(torch.full((2, n, 4), fill), torch.full((2, n, 4), fill + 1))]


def test_match_takes_whole_blocks_and_leaves_a_token():
    store = PrefixStore(max_tokens=1000)
    ids = list(range(3 * BLOCK + 5))
    store.add(ids, (), kv(len(ids)))
    # a prompt extending the stored one reuses every whole block of the shared part
    assert store.match([*ids, 7, 8], ())[0] == 3 * BLOCK
    # the same prompt again: at least one token must stay its own
    assert store.match(ids[: 2 * BLOCK], ())[0] == BLOCK
    # a difference inside block 2 stops the match at block 1
    assert store.match([*ids[:BLOCK], -1, *ids[BLOCK + 1 :]], ())[0] == BLOCK
    # other steering never matches; nor does a different first block
    assert store.match(ids, (("joy", 1.0),)) == (0, None)
    assert store.match([-1, *ids[1:]], ()) == (0, None)


def test_short_prompts_are_not_kept_and_forget_empties():
    store = PrefixStore(max_tokens=1000)
    store.add(list(range(BLOCK - 1)), (), kv(BLOCK - 1))
    assert len(store) == 0
    store.add(list(range(40)), (), kv(40))
    assert len(store) == 1 and store.tokens == 40
    store.forget()
    assert len(store) == 0 and store.tokens == 0 and store.match(list(range(41)), ()) == (0, None)


def test_least_recently_used_is_evicted_first():
    store = PrefixStore(max_tokens=100)
    a, b, c = ([k] * 40 for k in (1, 2, 3))
    store.add(a, (), kv(40))
    store.add(b, (), kv(40))
    assert store.match([*a, 0], ())[0] == 32  # touches a: b is now the oldest
    store.add(c, (), kv(40))
    assert store.tokens == 80
    assert store.match([*b, 0], ()) == (0, None)
    assert store.match([*a, 0], ())[0] == 32 and store.match([*c, 0], ())[0] == 32


def test_a_hash_collision_is_never_reused(monkeypatch):
    from sim.backends.hf import prefix_store

    monkeypatch.setattr(prefix_store, "_block_keys",
                        lambda ids, steering, limit: iter(range(limit // BLOCK)))
    store = PrefixStore(max_tokens=1000)
    store.add([1] * 40, (), kv(40))
    assert store.match([2] * 40, ()) == (0, None)


def chat(turns: list[str]) -> tuple[Message, ...]:
    """A persona system prompt and a growing user message (a later turn extends an earlier)."""
    system = ("You are Alice, a careful baker from a small village by the sea. You answer "
              "honestly and in few words, thinking of your neighbours and of the weather.")
    return (Message("system", system), Message("user", "\n".join(turns)))


TURN_1 = ["Bob says: good morning!", "Reply to Bob."]
TURN_2 = ["Bob says: good morning!", "Reply to Bob.", "Alice: Hi Bob.", "Bob: Bread today?"]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_later_prompt_reuses_an_earlier_one_with_the_same_results(fresh_backend, temperature):
    def ask(turns, seed):
        return GenerateRequest(messages=chat(turns), sampling=SamplingParams(
            max_new_tokens=6, temperature=temperature, seed=seed))

    first = fresh_backend.generate([ask(TURN_1, 1), ask(TURN_1[:1], 2)])
    later = fresh_backend.generate([ask(TURN_2, 3)])[0]
    shared = len(fresh_backend.render(chat(TURN_1)))
    assert later.num_cached_tokens >= shared - BLOCK > 0
    fresh_backend.forget_prefixes()
    fresh = fresh_backend.generate([ask(TURN_2, 3)])[0]
    assert fresh.num_cached_tokens == 0
    assert later == fresh and later.num_new_tokens > 0
    assert all(r.error is None for r in first)


def test_every_row_of_a_padded_batch_is_kept_exactly(fresh_backend):
    """Rows kept from a batch with holes (a shared prefix, then suffixes of other lengths)."""
    def ask(turns, seed):
        return GenerateRequest(messages=chat(turns), sampling=SamplingParams(
            max_new_tokens=5, temperature=1.0, seed=seed))

    words = ["bread", "rye", "oats", "wheat", "flour", "salt", "yeast", "water", "oven", "crust"]
    short = ["Alice says: " + " ".join(words * 3)]   # its suffix sits after the holes
    long = ["Bob says: " + " ".join(reversed(words * 8))]
    fresh_backend.generate([ask(long, 1), ask(short, 2)])
    extended = [ask([*short, "Reply now."], 3), ask([*long, "Reply now."], 4)]
    suffix = len(fresh_backend.render(chat(short))) - len(fresh_backend.render(chat(["A"])))
    later = fresh_backend.generate(extended)
    for request, result in zip(extended, later, strict=True):
        # the reused part reaches well past the shared prefix, into the row's own suffix
        assert result.num_cached_tokens >= len(fresh_backend.render(request.messages)) - 2 * BLOCK
        assert suffix > 2 * BLOCK
    fresh_backend.forget_prefixes()
    for request, reused in zip(extended, later, strict=True):
        fresh_backend.forget_prefixes()
        alone = fresh_backend.generate([request])[0]
        assert alone.num_cached_tokens == 0
        assert reused.text == alone.text and reused.num_new_tokens == alone.num_new_tokens


def test_scores_reuse_kept_prompts_with_the_same_values(fresh_backend):
    item = ScoreRequest(messages=chat(TURN_2), options=("yes", "no", "maybe not"))
    fresh_backend.score([ScoreRequest(messages=chat(TURN_1), options=("yes", "no"))])
    reused = fresh_backend.score([item])[0]
    assert reused.num_cached_tokens > 0
    fresh_backend.forget_prefixes()
    fresh = fresh_backend.score([item])[0]
    assert fresh.num_cached_tokens == 0
    assert reused.logprobs == pytest.approx(fresh.logprobs, abs=1e-4)


def test_steered_prompts_only_reuse_their_own_steering(fresh_backend):
    hidden = fresh_backend.model.config.hidden_size
    gen = torch.Generator().manual_seed(5)
    fresh_backend.set_steering({"joy": torch.randn(hidden, generator=gen)}, layers=[0])
    plain = ScoreRequest(messages=chat(TURN_1), options=("yes", "no"))
    fresh_backend.score([plain])
    steered = ScoreRequest(messages=chat(TURN_2), options=("yes", "no"), steering=(("joy", 3.0),))
    assert fresh_backend.score([steered])[0].num_cached_tokens == 0
    # new directions make every kept prompt stale
    fresh_backend.set_steering({"joy": torch.randn(hidden, generator=gen)}, layers=[0])
    later = ScoreRequest(messages=chat(TURN_2), options=("yes", "no"), steering=(("joy", 3.0),))
    assert fresh_backend.score([later])[0].num_cached_tokens == 0


def test_every_step_starts_with_an_empty_store(fresh_backend):
    """drive() begins a step: the executor empties the backend's store before the first wave."""
    executor = LocalExecutor(fresh_backend)
    ask = GenerateRequest(messages=chat(TURN_1), sampling=SamplingParams(max_new_tokens=3))
    executor.run([ask])
    store = fresh_backend._ctx.prefix_store
    assert store is not None and store.tokens > 0

    def plan():
        results = yield [GenerateRequest(messages=chat(TURN_2),
                                         sampling=SamplingParams(max_new_tokens=3))]
        return [{"cached": results[0].num_cached_tokens}]

    assert drive([plan()], executor) == [[{"cached": 0}]]


def test_store_off_with_zero_budget(tiny_model_path):
    from sim.backends.hf.backend import HFBackend

    backend = HFBackend(tiny_model_path, dtype="float32", threads=1, prefix_cache_mib=0)
    req = GenerateRequest(messages=chat(TURN_1), sampling=SamplingParams(max_new_tokens=2))
    backend.generate([req])
    again = GenerateRequest(messages=chat(TURN_2), sampling=SamplingParams(max_new_tokens=2))
    assert backend.generate([again])[0].num_cached_tokens == 0


def test_a_batch_larger_than_the_store_keeps_only_what_fits(fresh_backend):
    longest = max(len(fresh_backend.render(chat([f"Turn {k}.", *TURN_2]))) for k in range(3))
    fresh_backend._ctx.prefix_store = PrefixStore(max_tokens=longest + 5)
    fresh_backend.generate([GenerateRequest(messages=chat([f"Turn {k}.", *TURN_2]),
                                            sampling=SamplingParams(max_new_tokens=2))
                            for k in range(3)])
    store = fresh_backend._ctx.prefix_store
    assert len(store) == 1 and store.tokens <= longest
