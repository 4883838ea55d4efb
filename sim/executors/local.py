"""In-process executor: one backend call per request kind per route for a whole wave."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from sim.backends.protocol import Backend, Counting, PrefixReuse, capabilities_of
from sim.backends.scripted import ScriptedBackend
from sim.requests import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult

__all__ = ["Executor", "ExecutorStats", "LocalExecutor", "Part", "Request", "Result",
           "split_parts"]

Request = GenerateRequest | ScoreRequest
Result = GenerateResult | ScoreResult


@dataclass(slots=True)
class ExecutorStats:
    """Counters for progress display and the manifest."""

    waves: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    new_tokens: int = 0
    cached_tokens: int = 0
    failures: int = 0
    retries: int = 0
    model_seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)


Part = tuple[int, ExecutorStats]
"""A caller's share of a wave: its number of requests and the counters they go to."""


class Executor(Protocol):
    """Runs a wave of requests and returns results in order.

    ``stats`` counts what it ran; ``parts`` lets several callers share one wave (a sweep
    cohort's engines) and each keep its own counts.
    """

    stats: ExecutorStats

    def run(self, requests: Sequence[Request],
            parts: Sequence[Part] | None = None) -> list[Result]:
        """Answer every request; result ``i`` answers request ``i``.

        ``parts``: ``(size, stats)`` per caller, covering ``requests`` in order; each
        caller's share of the wave is counted into its ``stats`` (default: one part, the
        executor's own ``stats``).
        """
        ...

    def begin_step(self) -> None:
        """A new engine step starts: drop state kept between the previous step's waves."""
        ...


class LocalExecutor:
    """Routes scripted-policy requests to the scripted backend, the rest to the model.

    Requests of one kind and route go to their backend in a single call; the backend does its
    own micro-batching under its token budget.
    """

    def __init__(self, model: Backend, scripted: ScriptedBackend | None = None) -> None:
        self.model = model
        self.scripted = scripted or (model if isinstance(model, ScriptedBackend)
                                     else ScriptedBackend())
        self.stats = ExecutorStats()

    def begin_step(self) -> None:
        """Empty the model's prompt KV kept between waves, so no step depends on the last."""
        if capabilities_of(self.model).prefix_cache:
            cast(PrefixReuse, self.model).forget_prefixes()

    def run(self, requests: Sequence[Request],
            parts: Sequence[Part] | None = None) -> list[Result]:
        """Answer a wave, one backend call per (route, kind) present in it.

        Each part (default: the whole wave, counted into ``self.stats``) counts its own
        requests, tokens and failures, one call per (route, kind) it has requests in, the
        model time of those calls in proportion to its requests there, and their retries.
        """
        parts = list(parts) if parts is not None else [(len(requests), self.stats)]
        owner = split_parts(parts, len(requests))
        results: list[Result | None] = [None] * len(requests)
        buckets: dict[tuple[str, str], list[int]] = {}
        for i, request in enumerate(requests):
            route = "scripted" if request.policy is not None else "model"
            kind = "score" if isinstance(request, ScoreRequest) else "generate"
            buckets.setdefault((route, kind), []).append(i)
        for (route, kind), indices in buckets.items():
            backend: Backend = self.scripted if route == "scripted" else self.model
            batch = [requests[i] for i in indices]
            started, retried = time.perf_counter(), _retries(backend)
            answers: Sequence[Result] = (backend.score(batch) if kind == "score"  # type: ignore[arg-type]
                                         else backend.generate(batch))  # type: ignore[arg-type]
            seconds = time.perf_counter() - started if route == "model" else 0.0
            retried = _retries(backend) - retried
            for part, count in Counter(owner[i] for i in indices).items():
                _count_call(parts[part][1], f"{route}.{kind}", seconds * (count / len(indices)),
                            retried)
            for i, answer in zip(indices, answers, strict=True):
                results[i] = answer
                _count_result(parts[owner[i]][1], answer)
        for size, stats in parts:
            stats.waves += 1
            stats.requests += size
        return [r for r in results if r is not None]


def split_parts(parts: Sequence[Part], total: int) -> list[int]:
    """The part index of each of ``total`` requests.

    Raises:
        ValueError: if the parts' sizes do not add up to ``total``.
    """
    owner = [p for p, (size, _stats) in enumerate(parts) for _ in range(size)]
    if len(owner) != total:
        raise ValueError(f"the parts cover {len(owner)} requests, the wave has {total}")
    return owner


def _count_call(stats: ExecutorStats, key: str, model_seconds: float, retries: int) -> None:
    stats.calls[key] = stats.calls.get(key, 0) + 1
    stats.model_seconds += model_seconds
    stats.retries += retries


def _count_result(stats: ExecutorStats, result: Result) -> None:
    stats.prompt_tokens += result.num_prompt_tokens
    stats.cached_tokens += result.num_cached_tokens
    if isinstance(result, GenerateResult):
        stats.new_tokens += result.num_new_tokens
    if result.error is not None:
        stats.failures += 1


def _retries(backend: Backend) -> int:
    """The backend's count of retried batches, if it declares counters (``HFBackend.stats``)."""
    if not capabilities_of(backend).stats:
        return 0
    return int(cast(Counting, backend).stats.get("retries", 0))
