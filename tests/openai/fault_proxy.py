"""Test-only servers in front of `traitlab serve`: fault injection and capability stripping.

FaultProxy forwards every request to an upstream server, except that it can
  * answer the next requests of a path with an HTTP status and a Retry-After header,
  * pretend to be a plain OpenAI server (no traitlab extensions, no /tokenize, no echo
    log-probs), optionally honouring vLLM's `guided_choice` (and only that variant),
  * answer chat requests with scripted replies,
  * echo the Authorization header inside an error (a hostile server), to test scrubbing.
ClosingServer accepts TCP connections and closes them at once (a dead server).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        # (path, status, retry-after[, seed]): the next request of path (with that seed) fails
        self.faults: deque[tuple[Any, ...]] = deque()
        self.plain = False
        self.guided = False
        self.replies: deque[str] = deque()
        self.echo_auth = False
        self.seen: list[tuple[str, float]] = []
        self.auth_headers: list[str] = []
        self.app = Starlette(routes=[
            Route("/{path:path}", self._handle, methods=["GET", "POST"]),
        ])

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.seen if p == path)

    async def _handle(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        self.seen.append((path, time.monotonic()))
        self.auth_headers.append(request.headers.get("authorization", ""))
        body: Any = await request.json() if request.method == "POST" else None
        fault = self._fault(path, body)
        if fault is not None:
            _, status, retry_after, *_ = fault
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return JSONResponse({"error": {"message": "injected"}}, status, headers=headers)
        if self.echo_auth and path == "/v1/chat/completions":
            auth = request.headers.get("authorization", "")
            return JSONResponse({"error": {"message": f"bad key {auth}"}}, 400)
        if self.plain:
            refused = self._refuse(path, body)
            if refused is not None:
                return refused
        if path == "/v1/chat/completions" and self.replies:
            return JSONResponse(_chat_reply(self.replies.popleft()))
        guided = body.pop("guided_choice", None) if isinstance(body, dict) else None
        if isinstance(body, dict) and self.plain:
            body.pop("structured_outputs", None)
            body.pop("response_format", None)
        async with httpx.AsyncClient(base_url=self.upstream, timeout=60) as client:
            resp = await client.request(request.method, path, json=body)
        out = resp.json()
        if path == "/v1/models" and self.plain:
            for card in out["data"]:
                card["owned_by"] = "someone"
                card.pop("traitlab", None)
        if guided and self.guided and resp.status_code == 200:
            # a deterministic pick that does not depend on the code under test
            last = body["messages"][-1]["content"]
            out["choices"][0]["message"]["content"] = guided[len(last) % len(guided)]
        return JSONResponse(out, resp.status_code)

    def _fault(self, path: str, body: Any) -> tuple[Any, ...] | None:
        for fault in self.faults:
            seed = fault[3] if len(fault) > 3 else None
            if fault[0] == path and (seed is None or (body or {}).get("seed") == seed):
                self.faults.remove(fault)
                return fault
        return None

    def _refuse(self, path: str, body: Any) -> Response | None:
        if path in ("/tokenize", "/detokenize") or path.startswith("/traitlab"):
            return JSONResponse({"error": {"message": "not found"}}, 404)
        if path == "/v1/completions" and isinstance(body, dict) and (
            body.get("echo") or body.get("logprobs") is not None
        ):
            return JSONResponse({"error": {"message": "logprobs are not supported"}}, 400)
        return None


def _chat_reply(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    }


class ClosingServer:
    """Accepts connections on 127.0.0.1 and closes each at once."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
