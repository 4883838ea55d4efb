"""Retries: 429 and 503 with Retry-After are honoured; a request that still fails is a failed
result (the others are unaffected); a dead server gives failed results, not exceptions."""

from __future__ import annotations

import time

from sim.backends.openai import OpenAIBackend
from tests.openai.conftest import config
from tests.openai.fault_proxy import ClosingServer
from tests.openai.requests_ import GENERATES, SCORES

CHAT = "/v1/chat/completions"


def test_retry_after_is_honoured_then_the_request_succeeds(proxy, reference_backend) -> None:
    fault, handle = proxy
    with OpenAIBackend(config(handle.base_url, retries=3, backoff_s=0.01)) as backend:
        backend.detect()
        fault.faults.extend([(CHAT, 429, "1"), (CHAT, 503, "1")])
        start = time.monotonic()
        got = backend.generate(GENERATES[:1])
        elapsed = time.monotonic() - start
        stats = backend.stats
    assert got == reference_backend.generate(GENERATES[:1])
    assert stats["retries"] == 2 and stats["failures"] == 0
    times = [t for p, t in fault.seen if p == CHAT]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.95 and times[2] - times[1] >= 0.95  # waited as told
    assert elapsed >= 1.9


def test_a_request_that_keeps_failing_becomes_a_failed_result(proxy, reference_backend) -> None:
    fault, handle = proxy
    with OpenAIBackend(config(handle.base_url, retries=2)) as backend:
        backend.detect()
        seed = GENERATES[0].sampling.seed
        fault.faults.extend([(CHAT, 503, "0", seed)] * 3)  # the first request's three tries
        got = backend.generate(GENERATES[:2])
        stats = backend.stats
    assert got[0].finish_reason == "error" and "503" in (got[0].error or "")
    assert "3 tries" in (got[0].error or "")
    assert got[1] == reference_backend.generate(GENERATES[1:2])[0]
    assert stats["retries"] == 2 and stats["failures"] == 1


def test_client_errors_are_not_retried(proxy) -> None:
    fault, handle = proxy
    with OpenAIBackend(config(handle.base_url, retries=3)) as backend:
        backend.detect()
        fault.faults.append((CHAT, 400, None))
        got = backend.generate(GENERATES[:1])
        assert backend.stats["retries"] == 0
    assert got[0].finish_reason == "error" and "HTTP 400" in (got[0].error or "")


def test_a_dead_server_gives_failed_results(server, tmp_path) -> None:
    store = tmp_path / "responses"
    OpenAIBackend(config(server.base_url, extensions=False), store_dir=store).detect()
    dead = ClosingServer()
    try:  # the capabilities come from the store; every new request meets a closed socket
        backend = OpenAIBackend(config(f"http://127.0.0.1:{dead.port}/v1", extensions=False,
                                       retries=2), store_dir=store)
        gen = backend.generate(GENERATES[:2])
        scores = backend.score(SCORES[:1])
        stats = backend.stats
        backend.close()
    finally:
        dead.stop()
    assert [g.finish_reason for g in gen] == ["error", "error"]
    assert all("connection error" in (g.error or "") for g in gen)
    assert scores[0].logprobs == () and scores[0].error
    assert backend.last_decided_by == ["failed"]
    assert stats["failures"] >= 3 and stats["retries"] >= 2 * 3 and dead.accepted >= 9


def test_rate_limits_space_requests_out() -> None:
    import asyncio

    from sim.backends.openai.limits import RateLimiter, backoff_delay, retry_after_s

    async def times(limiter: RateLimiter, costs: list[int]) -> list[float]:
        out = []
        for cost in costs:
            await limiter.acquire(cost)
            out.append(time.monotonic())
        return out

    by_requests = asyncio.run(times(RateLimiter(2, None, window_s=0.5), [1, 1, 1]))
    assert by_requests[1] - by_requests[0] < 0.2 and by_requests[2] - by_requests[0] >= 0.45
    by_tokens = asyncio.run(times(RateLimiter(None, 100, window_s=0.5), [60, 60]))
    assert by_tokens[1] - by_tokens[0] >= 0.45
    assert retry_after_s("3") == 3.0 and retry_after_s(None) is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert backoff_delay(0, 1.0, 30.0, 5.0) == 5.0
    assert 4.0 <= backoff_delay(3, 1.0, 30.0, None) <= 8.0
    assert backoff_delay(10, 1.0, 30.0, None) <= 30.0
