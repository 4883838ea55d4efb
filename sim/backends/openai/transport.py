"""HTTP to the server: pooled async client, retries, rate limits, the response store, counters.

All requests run on one private event loop in a daemon thread, so a pooled
``httpx.AsyncClient`` lives across waves; callers block on :meth:`Transport.run`. A request
is looked up in the response store first; a live one retries timeouts, connection errors,
429 and 5xx with exponential backoff and jitter (honouring ``Retry-After``), and one that
still fails comes back as a failed :class:`Reply`, never as an exception.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sim.backends.openai.config import OpenAIConfig, public_url
from sim.backends.openai.limits import RateLimiter, backoff_delay, retry_after_s
from sim.backends.openai.store import ResponseStore, request_key
from sim.errors import BackendError

__all__ = ["ReplayMissError", "Reply", "Transport"]

T = TypeVar("T")
_RETRIED_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class ReplayMissError(BackendError):
    """A replay met a request that the response store does not hold."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A server's answer to one request: a JSON body, or why there is none."""

    body: Any = None
    status: int = 200
    error: str | None = None
    stored: bool = False

    @property
    def ok(self) -> bool:
        """Whether the request succeeded."""
        return self.error is None


class Transport:
    """Sends requests to one server, or answers them from a response store.

    Args:
        config: the backend settings.
        store: responses already received (and where new ones go), if any.
        offline: never contact a server; a request not in ``store`` raises
            :class:`ReplayMissError`.

    Raises:
        BackendError: ``api_key_env`` names a variable that is not set.
    """

    def __init__(
        self, config: OpenAIConfig, store: ResponseStore | None = None, *, offline: bool = False
    ) -> None:
        self.config = config
        self.store = store
        self.offline = offline
        self._secret: str | None = None
        if config.api_key_env and not offline:
            self._secret = os.environ.get(config.api_key_env) or None
            if self._secret is None:
                raise BackendError(
                    f"api_key_env '{config.api_key_env}': the environment variable is not "
                    f"set. Fix: export {config.api_key_env}=<your key> before the run."
                )
        self.stats: dict[str, int] = dict.fromkeys(
            ("requests", "retries", "failures", "store_hits", "prompt_tokens",
             "completion_tokens"), 0)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="traitlab-openai")
        self._thread.start()
        self._client: Any = None
        self._gate: asyncio.Semaphore | None = None
        self._limiter = RateLimiter(config.requests_per_minute, config.tokens_per_minute)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the transport's loop and return its result (blocking)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        """Close the HTTP client and the store's file, and stop the loop."""
        if self._client is not None:
            self.run(self._client.aclose())
            self._client = None
        if self.store is not None:
            self.store.close()
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def scrub(self, text: str) -> str:
        """``text`` with the API key and any URL password (if they got in) replaced by ``***``."""
        for secret in (self._secret, urlsplit(self.config.base_url).password):
            if secret:
                text = text.replace(secret, "***")
        return text

    async def request(self, method: str, path: str, body: Any = None) -> Reply:
        """Send one request (or answer it from the store); never raises for server trouble.

        Raises:
            ReplayMissError: offline, and the store does not hold this request.
        """
        key = request_key(method, path, body)
        if self.store is not None and key in self.store:
            self.stats["store_hits"] += 1
            return Reply(body=self.store.get(key), stored=True)
        if self.offline:
            raise ReplayMissError(
                f"replay: request {key} ({method} {path}) is not in the response store "
                f"{self.store.path if self.store else '(none)'}. Fix: replay the run directory "
                "that produced these requests, or run it against a server."
            )
        reply = await self._send(method, path, body)
        if reply.ok:
            usage = reply.body.get("usage") if isinstance(reply.body, dict) else None
            if isinstance(usage, dict):
                self.stats["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
                self.stats["completion_tokens"] += int(usage.get("completion_tokens") or 0)
            if self.store is not None:
                self.store.put(key, method, path, body, reply.body)
        else:
            self.stats["failures"] += 1
        return reply

    def _http(self) -> Any:
        import httpx

        if self._client is None:
            cfg = self.config
            headers = {"Authorization": f"Bearer {self._secret}"} if self._secret else {}
            self._client = httpx.AsyncClient(
                base_url=cfg.api_root,
                headers=headers,
                timeout=httpx.Timeout(cfg.timeout_s),
                limits=httpx.Limits(max_connections=cfg.concurrency,
                                    max_keepalive_connections=cfg.concurrency),
            )
            self._gate = asyncio.Semaphore(self.config.concurrency)
        return self._client

    async def _send(self, method: str, path: str, body: Any) -> Reply:
        import httpx

        client, cfg = self._http(), self.config
        assert self._gate is not None
        await self._limiter.acquire(_token_estimate(body))
        last = "not sent"
        for attempt in range(cfg.retries + 1):
            if attempt:
                self.stats["retries"] += 1
            self.stats["requests"] += 1
            wait: float | None = None
            try:
                async with self._gate:
                    resp = await client.request(method, path, json=body)
            except httpx.TimeoutException as exc:
                last = f"timeout after {cfg.timeout_s} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last = f"connection error ({type(exc).__name__}: {exc})"
            else:
                if resp.status_code < 300:
                    try:
                        return Reply(body=resp.json(), status=resp.status_code)
                    except json.JSONDecodeError:
                        last = f"HTTP {resp.status_code} with a body that is not JSON"
                else:
                    last = f"HTTP {resp.status_code}: {_message(resp)}"
                    if resp.status_code not in _RETRIED_STATUS:
                        return Reply(status=resp.status_code, error=self._reason(path, last))
                    wait = retry_after_s(resp.headers.get("retry-after"))
            if attempt < cfg.retries:
                await asyncio.sleep(backoff_delay(attempt, cfg.backoff_s, cfg.max_backoff_s,
                                                  wait))
        tries = cfg.retries + 1
        return Reply(status=0, error=self._reason(path, f"{last}; gave up after {tries} tries"))

    def _reason(self, path: str, text: str) -> str:
        return self.scrub(f"{public_url(self.config.api_root)}{path}: {text}")


def _message(resp: Any) -> str:
    """The error message of an error response, shortened."""
    try:
        body = resp.json()
        text = body.get("error", {}).get("message") if isinstance(body, dict) else None
        text = text or json.dumps(body)
    except (ValueError, AttributeError):
        text = resp.text
    text = str(text).replace("\n", " ")
    return text[:300] + ("..." if len(text) > 300 else "")


def _token_estimate(body: Any) -> int:
    """Prompt tokens (about four characters each) plus the completion budget."""
    if not isinstance(body, dict):
        return 1
    text = json.dumps(body.get("messages") or body.get("prompt") or "")
    budget = body.get("max_tokens") or body.get("max_completion_tokens") or 0
    return len(text) // 4 + int(budget)
