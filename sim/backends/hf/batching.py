"""Token-budget micro-batching with length bucketing, and failure isolation by bisection.

Pure Python (no torch): the backend hands in lengths, gets back lists of indices.

Example:
    >>> plan_batches([5, 50, 7, 48], [10, 10, 10, 10], max_tokens=160, max_size=8)
    [[0, 2], [3, 1]]
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import TypeVar

__all__ = ["MAX_PADDING", "plan_batches", "run_isolated"]

MAX_PADDING = 1.5
"""Default bound on a batch's padded tokens over its real tokens."""

T = TypeVar("T")
R = TypeVar("R")


def plan_batches(
    lengths: Sequence[int],
    extras: Sequence[int],
    *,
    max_tokens: int,
    max_size: int,
    rows: Sequence[int] | None = None,
    order: Sequence[int] | None = None,
    max_padding: float = MAX_PADDING,
) -> list[list[int]]:
    """Cut items into batches of similar length under a padded-token budget.

    Items are sorted by ``lengths`` (stable) and taken greedily while
    ``sum(rows) * (max(length) + max(extra)) <= max_tokens``, ``sum(rows) <= max_size`` and
    the batch's padded tokens stay within ``max_padding`` times its real tokens (so a long
    prompt never drags short ones to its length, however large the budget).
    An item that alone exceeds the budget still gets a batch of its own.

    Args:
        lengths: prompt length of each item.
        extras: tokens each item adds after its prompt (new tokens, option tokens).
        max_tokens: budget on padded tokens per batch.
        max_size: most rows per batch.
        rows: rows each item expands to (options of a score request); 1 each by default.
        order: the item order batches are cut from (e.g. length order that keeps rows sharing
            a prompt prefix adjacent); sorted by ``lengths`` by default.
        max_padding: most padded tokens per real token in a batch.

    Returns:
        Batches of item indices; every index appears exactly once.
    """
    weights = list(rows) if rows is not None else [1] * len(lengths)
    if order is None:
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    elif sorted(order) != list(range(len(lengths))):
        raise ValueError("order must be a permutation of the item indices")
    batches: list[list[int]] = []
    current: list[int] = []
    n_rows = width = extra = real = 0
    for i in order:
        new_rows = n_rows + weights[i]
        new_width = max(width, lengths[i])
        new_extra = max(extra, extras[i])
        new_real = real + weights[i] * (lengths[i] + extras[i])
        padded = new_rows * (new_width + new_extra)
        fits = padded <= max_tokens and new_rows <= max_size and padded <= max_padding * new_real
        if current and not fits:
            batches.append(current)
            current, new_rows = [], weights[i]
            new_width, new_extra = lengths[i], extras[i]
            new_real = weights[i] * (lengths[i] + extras[i])
        current.append(i)
        n_rows, width, extra, real = new_rows, new_width, new_extra, new_real
    if current:
        batches.append(current)
    return batches


def run_isolated(
    items: Sequence[T],
    run: Callable[[Sequence[T]], list[R]],
    on_error: Callable[[T, Exception], R],
    stats: MutableMapping[str, int],
) -> list[R]:
    """Run a batch; if it fails, retry its halves down to single items.

    Runtime failures (``RuntimeError``: out of memory, NaN logits, a kernel failure;
    ``MemoryError``) are confined to the smallest failing unit, which is answered by
    ``on_error``. Anything else (a user error, a bug) propagates.

    Args:
        items: the batch.
        run: computes results for a sub-batch, in order.
        on_error: builds the result of a single item that still fails.
        stats: counters; ``retries`` and ``failures`` are incremented here.

    Returns:
        One result per item, in order.
    """
    try:
        return run(items)
    except (RuntimeError, MemoryError) as exc:
        _release_memory()
        if len(items) == 1:
            stats["failures"] = stats.get("failures", 0) + 1
            return [on_error(items[0], exc)]
        stats["retries"] = stats.get("retries", 0) + 1
        mid = len(items) // 2
        return run_isolated(items[:mid], run, on_error, stats) + run_isolated(
            items[mid:], run, on_error, stats
        )


def _release_memory() -> None:
    """Give cached accelerator memory back after a failure (a no-op without CUDA)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
