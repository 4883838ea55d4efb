"""In-process executor: one backend call per request kind per route for a whole wave."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from sim.backends.protocol import Backend, Counting, PrefixReuse, capabilities_of
from sim.backends.scripted import ScriptedBackend
from sim.requests import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult

__all__ = ["Executor", "ExecutorStats", "LocalExecutor", "Request", "Result"]

Request = GenerateRequest | ScoreRequest
Result = GenerateResult | ScoreResult


class Executor(Protocol):
    """Runs a wave of requests and returns results in order."""

    def run(self, requests: Sequence[Request]) -> list[Result]:
        """Answer every request; result ``i`` answers request ``i``."""
        ...

    def begin_step(self) -> None:
        """A new engine step starts: drop state kept between the previous step's waves."""
        ...


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

    def run(self, requests: Sequence[Request]) -> list[Result]:
        """Answer a wave, one backend call per (route, kind) present in it."""
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
            if route == "model":
                self.stats.model_seconds += time.perf_counter() - started
            self.stats.retries += _retries(backend) - retried
            key = f"{route}.{kind}"
            self.stats.calls[key] = self.stats.calls.get(key, 0) + 1
            for i, answer in zip(indices, answers, strict=True):
                results[i] = answer
                self._count(answer)
        self.stats.waves += 1
        self.stats.requests += len(requests)
        return [r for r in results if r is not None]

    def _count(self, result: Result) -> None:
        self.stats.prompt_tokens += result.num_prompt_tokens
        self.stats.cached_tokens += result.num_cached_tokens
        if isinstance(result, GenerateResult):
            self.stats.new_tokens += result.num_new_tokens
        if result.error is not None:
            self.stats.failures += 1


def _retries(backend: Backend) -> int:
    """The backend's count of retried batches, if it declares counters (``HFBackend.stats``)."""
    if not capabilities_of(backend).stats:
        return 0
    return int(cast(Counting, backend).stats.get("retries", 0))
