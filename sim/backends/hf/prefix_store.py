"""Prompt KV kept between the batches of one step, reused by later prompts that extend them.

In a multi-turn stage an agent's prompt for turn 3 starts with most of its prompt for turn 1
(persona, scenario, the stage's instructions) and only then differs (the conversation so
far). The store keeps each prefilled prompt's keys and values, indexed by blocks of
:data:`BLOCK` tokens; a later prompt with the same steering that starts with stored blocks
takes their KV instead of recomputing it (vLLM's automatic prefix caching and SGLang's radix
cache do the same on GPUs).

The engine empties the store at the start of every step (``forget``), so what a step
computes never depends on earlier steps' batches: a run resumed from a checkpoint gives the
same records as one that was never interrupted. Entries are evicted least recently used
first once the store holds more than ``max_tokens`` tokens.

Example:
    >>> store = PrefixStore(max_tokens=1000)
    >>> store.add(list(range(40)), (), [])       # normally one (keys, values) per layer
    >>> store.match(list(range(36)) + [99], ())[0]
    32
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from sim.backends.hf.steering_hook import Steering

__all__ = ["BLOCK", "PrefixStore", "StoredPrompt"]

BLOCK = 16
"""Tokens per indexed block: a reused prefix is a whole number of blocks."""

LayerKV = tuple[torch.Tensor, torch.Tensor]


@dataclass(slots=True)
class StoredPrompt:
    """One prefilled prompt: its token ids, steering and ``[kv_heads, tokens, dim]`` KV."""

    ids: tuple[int, ...]
    steering: Steering
    kv: list[LayerKV]
    keys: list[int]


class PrefixStore:
    """Least-recently-used store of prompt KV, matched on whole leading blocks.

    Args:
        max_tokens: most prompt tokens held (older entries are evicted first).
    """

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.tokens = 0
        self._entries: OrderedDict[int, StoredPrompt] = OrderedDict()
        self._index: dict[int, int] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._entries)

    def forget(self) -> None:
        """Drop every entry (start of a step; steering directions changed)."""
        self._entries.clear()
        self._index.clear()
        self.tokens = 0

    def match(self, ids: Sequence[int], steering: Steering) -> tuple[int, StoredPrompt | None]:
        """Return how many leading tokens of ``ids`` a stored prompt provides, and that prompt.

        The length is a multiple of :data:`BLOCK` and leaves ``ids`` at least one token of its
        own; ``(0, None)`` when nothing matches.
        """
        best: tuple[int, int] | None = None
        for blocks, key in enumerate(_block_keys(ids, steering, len(ids) - 1), start=1):
            number = self._index.get(key)
            if number is None:
                break
            best = (blocks * BLOCK, number)
        if best is None:
            return 0, None
        length, number = best
        stored = self._entries[number]
        if tuple(steering) != stored.steering or tuple(ids[:length]) != stored.ids[:length]:
            return 0, None  # a hash collision: never reuse what does not match exactly
        self._entries.move_to_end(number)
        return length, stored

    def add(self, ids: Sequence[int], steering: Steering, kv: list[LayerKV]) -> None:
        """Keep a prompt's KV (one ``(keys, values)`` of ``[kv_heads, len(ids), dim]`` per layer).

        Prompts shorter than one block, or longer than the whole store, are not kept.
        """
        if len(ids) < BLOCK or len(ids) > self.max_tokens:
            return
        number, self._next = self._next, self._next + 1
        keys = list(_block_keys(ids, steering, len(ids)))
        self._entries[number] = StoredPrompt(tuple(ids), tuple(steering), kv, keys)
        for key in keys:
            self._index[key] = number
        self.tokens += len(ids)
        while self.tokens > self.max_tokens:
            self._evict()

    def _evict(self) -> None:
        number, old = self._entries.popitem(last=False)
        self.tokens -= len(old.ids)
        for key in old.keys:
            if self._index.get(key) == number:
                del self._index[key]


def _block_keys(ids: Sequence[int], steering: Steering, limit: int) -> Iterator[int]:
    """Chained hashes of the whole blocks of ``ids[:limit]`` (each depends on all before it)."""
    key = hash(("prefix-store", tuple(steering)))
    for end in range(BLOCK, limit + 1, BLOCK):
        key = hash((key, tuple(ids[end - BLOCK : end])))
        yield key
