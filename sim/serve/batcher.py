"""Gather concurrent HTTP requests into waves, so peers that send one request at a time batch.

A request waits up to a short window for others; the wave is then handed to the backend in
one call per kind (generate, score, ...), in one worker thread, since the backend is not
thread-safe: one wave runs at a time, and requests arriving meanwhile form the next wave.
A kind's call that raises is retried one request at a time, so one bad request fails alone.

Example:
    >>> batcher = WaveBatcher({"generate": served.generate}, window_ms=10)  # doctest: +SKIP
    >>> result = await batcher.submit("generate", request)                  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["WaveBatcher"]

Handler = Callable[[Sequence[Any]], Sequence[Any]]


class WaveBatcher:
    """Waves of requests, one kind-call each, run in a single worker thread.

    Args:
        handlers: one function per kind; it answers a list of items in order.
        window_ms: how long the first request of a wave waits for others.
        max_wave: most requests in one wave.
    """

    def __init__(
        self, handlers: Mapping[str, Handler], *, window_ms: float = 10.0, max_wave: int = 512
    ) -> None:
        self._handlers = dict(handlers)
        self._window = max(window_ms, 0.0) / 1000.0
        self._max_wave = max_wave
        self._queue: asyncio.Queue[tuple[str, Any, asyncio.Future[Any]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="traitlab-wave")
        self.stats: dict[str, int] = {"waves": 0, "requests": 0, "largest_wave": 0}

    def start(self) -> None:
        """Start gathering (inside the server's running event loop)."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop gathering; requests still queued get an error."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue is not None and not self._queue.empty():
            _, _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, kind: str, item: Any) -> Any:
        """Queue one item of ``kind`` and return its answer (or raise its error)."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        if kind not in self._handlers:
            raise KeyError(kind)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put((kind, item, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            wave = [await self._queue.get()]
            if self._window:
                await asyncio.sleep(self._window)
            while not self._queue.empty() and len(wave) < self._max_wave:
                wave.append(self._queue.get_nowait())
            live = [job for job in wave if not job[2].done()]  # a client may have gone
            if not live:
                continue
            self.stats["waves"] += 1
            self.stats["requests"] += len(live)
            self.stats["largest_wave"] = max(self.stats["largest_wave"], len(live))
            answers = await loop.run_in_executor(self._executor, self._run_wave, live)
            for (_, _, future), answer in zip(live, answers, strict=True):
                if future.done():
                    continue
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    def _run_wave(self, wave: Sequence[tuple[str, Any, Any]]) -> list[Any]:
        """In the worker thread: one handler call per kind, answers in wave order."""
        answers: list[Any] = [None] * len(wave)
        for kind, handler in self._handlers.items():
            index = [i for i, job in enumerate(wave) if job[0] == kind]
            if not index:
                continue
            outs = _isolated(handler, [wave[i][1] for i in index])
            for i, out in zip(index, outs, strict=True):
                answers[i] = out
        return answers


def _isolated(handler: Handler, items: list[Any]) -> list[Any]:
    """Answers of ``items``; if the joint call raises, each item alone (its error kept)."""
    try:
        outs = list(handler(items))
    except Exception as exc:
        if len(items) == 1:
            return [exc]
        return [_isolated(handler, [item])[0] for item in items]
    if len(outs) != len(items):
        return [RuntimeError("the backend returned a wrong number of results")] * len(items)
    return outs
