"""Client-side request and token rate limits over a sliding minute, and retry delays."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from email.utils import parsedate_to_datetime

__all__ = ["RateLimiter", "backoff_delay", "retry_after_s"]

_WINDOW_S = 60.0


class RateLimiter:
    """At most ``requests_per_minute`` requests and ``tokens_per_minute`` tokens a minute.

    Args:
        requests_per_minute: request budget (``None``: unlimited).
        tokens_per_minute: token budget (``None``: unlimited); a request costing more than
            the whole budget waits for an empty window and then goes alone.
        window_s: the length of the sliding window (a minute; shorter in tests).
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        *,
        window_s: float = _WINDOW_S,
    ) -> None:
        self._window = window_s
        self._rpm = requests_per_minute
        self._tpm = tokens_per_minute
        self._sent: deque[tuple[float, int]] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        """Wait until a request of ``tokens`` fits both budgets, then count it."""
        if self._rpm is None and self._tpm is None:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and now - self._sent[0][0] >= self._window:
                    self._sent.popleft()
                if not self._sent or self._fits(tokens):
                    self._sent.append((now, tokens))
                    return
                await asyncio.sleep(max(self._window - (now - self._sent[0][0]), 0.01))

    def _fits(self, tokens: int) -> bool:
        if self._rpm is not None and len(self._sent) + 1 > self._rpm:
            return False
        used = sum(n for _, n in self._sent)
        return self._tpm is None or used + tokens <= self._tpm


def backoff_delay(attempt: int, base_s: float, cap_s: float, retry_after: float | None) -> float:
    """Delay before retry ``attempt`` (0-based): exponential with jitter, at least Retry-After."""
    delay = min(base_s * 2**attempt, cap_s) * random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def retry_after_s(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
