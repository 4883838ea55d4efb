"""The OpenAI-compatible ASGI app of ``traitlab serve``.

Endpoints: ``GET /v1/models``; ``POST /v1/chat/completions``; ``POST /v1/completions`` (with
``echo``, ``logprobs``, vLLM's ``prompt_logprobs``, ``max_tokens: 0``, prompts as text or
token ids); vLLM's ``POST /tokenize`` and ``POST /detokenize``; and the extension
``POST /traitlab/score`` (the backend's own option scoring). Chat and completion requests
accept ``"traitlab": {"steering": [[trait, coef], ...]}``. ``/v1/models`` lists the model
with ``"owned_by": "traitlab"``, which is how a client knows the extensions exist.

Scoring an option exactly as the hf backend does: ``/tokenize`` the chat with
``add_generation_prompt: true``, append the option's ids (``/tokenize`` of the option text
with ``add_special_tokens: false``), send them to ``/v1/completions`` with ``echo: true``,
``logprobs: 0`` and ``max_tokens: 0``, and sum the option positions' ``token_logprobs``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sim.serve.api import (
    ApiError,
    ChatJob,
    CompletionJob,
    check_model,
    error_body,
    parse_chat,
    parse_completion,
    parse_messages,
    parse_steering,
)
from sim.serve.batcher import WaveBatcher
from sim.serve.ops import DecodeRow, LogprobRow, ServedModel, TokenLogprob

__all__ = ["build_app"]

Endpoint = Callable[[Request], Any]


def build_app(served: ServedModel, *, window_ms: float = 10.0) -> Starlette:
    """The ASGI app answering with ``served``, gathering requests into waves.

    Args:
        served: the backend and what it can do.
        window_ms: how long a wave's first request waits for others.
    """
    batcher = WaveBatcher(
        {
            "call": lambda fns: [fn() for fn in fns],
            "generate": served.generate,
            "score": served.score,
            "decode": served.decode,
            "logprobs": served.prompt_logprobs,
        },
        window_ms=window_ms,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()

    handlers = _Handlers(served, batcher)
    routes = [
        Route("/v1/models", _wrap(handlers.models), methods=["GET"]),
        Route("/v1/chat/completions", _wrap(handlers.chat), methods=["POST"]),
        Route("/v1/completions", _wrap(handlers.completions), methods=["POST"]),
        Route("/tokenize", _wrap(handlers.tokenize), methods=["POST"]),
        Route("/detokenize", _wrap(handlers.detokenize), methods=["POST"]),
        Route("/traitlab/score", _wrap(handlers.score), methods=["POST"]),
        Route("/health", _wrap(handlers.health), methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.batcher = batcher
    return app


def _wrap(fn: Callable[[Any], Any]) -> Endpoint:
    """JSON in, JSON out; refusals become OpenAI error envelopes."""

    async def endpoint(request: Request) -> JSONResponse:
        try:
            body = await request.json() if request.method == "POST" else {}
            if not isinstance(body, dict):
                raise ApiError(400, "the request body must be a JSON object")
            return JSONResponse(await fn(body))
        except ApiError as exc:
            return JSONResponse(error_body(exc.message, exc.kind), status_code=exc.status)
        except ValueError as exc:  # malformed JSON
            return JSONResponse(error_body(f"bad request: {exc}"), status_code=400)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            return JSONResponse(error_body(message, "server_error"), status_code=500)

    return endpoint


class _Handlers:
    def __init__(self, served: ServedModel, batcher: WaveBatcher) -> None:
        self.served = served
        self.batcher = batcher
        tokenizer = getattr(served.backend, "tokenizer", None)
        self.vocab = len(tokenizer) if tokenizer is not None else None

    async def health(self, _body: dict[str, Any]) -> dict[str, Any]:
        return {"status": "ok", **self.batcher.stats}

    async def models(self, _body: dict[str, Any]) -> dict[str, Any]:
        info = self.served.backend.info
        card = {
            "id": self.served.name,
            "object": "model",
            "created": 0,
            "owned_by": "traitlab",
            "root": info.model_id,
            "traitlab": {
                "extensions": ["steering", "score"],
                "tokenize": self.served.can_tokenize,
                "prompt_logprobs": self.served.can_forward,
                "deterministic": ("seeded requests reproduce for the same batch composition; in "
                                  "bfloat16 a reply can depend on the other rows of its batch"),
            },
        }
        return {"object": "list", "data": [card]}

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        from sim.requests import GenerateRequest

        check_model(body, [self.served.name])
        job = parse_chat(body)
        request = GenerateRequest(messages=job.messages, sampling=job.sampling,
                                  steering=job.steering)
        result = await self._submit("generate", request)
        if result.error:
            raise ApiError(500, f"generation failed: {result.error}", "server_error")
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": result.text},
            "finish_reason": result.finish_reason,
            "logprobs": await self._chat_logprobs(job, result.text) if job.logprobs else None,
        }
        return _envelope("chat.completion", self.served.name, [choice],
                         result.num_prompt_tokens, result.num_new_tokens)

    async def _chat_logprobs(self, job: ChatJob, text: str) -> dict[str, Any]:
        """Teacher-forced log-probs of the reply's tokens (text re-tokenized as plain text)."""
        prompt = await self._submit("call", lambda: self.served.render(job.messages))
        reply = await self._submit(
            "call", lambda: self.served.tokenize(text, add_special_tokens=False)
        )
        rows = await self._submit(
            "logprobs", LogprobRow(prompt + reply, job.steering, job.top_logprobs)
        )
        content = [
            {
                "token": self.served.token_text(t.token_id),
                "logprob": t.logprob,
                "top_logprobs": [
                    {"token": self.served.token_text(i), "logprob": v} for i, v in t.top
                ],
            }
            for t in rows[len(prompt):]
        ]
        return {"content": content}

    async def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        check_model(body, [self.served.name])
        job = parse_completion(body, self.vocab)
        # the prompts of one request join the same wave (a client scores options this way)
        outs = await asyncio.gather(*(self._completion_choice(job, p) for p in job.prompts))
        choices = [{"index": i, **choice} for i, (choice, _, _) in enumerate(outs)]
        n_prompt = sum(len(ids) for _, ids, _ in outs)
        n_new = sum(new for _, _, new in outs)
        return _envelope("text_completion", self.served.name, choices, n_prompt, n_new)

    async def _completion_choice(
        self, job: CompletionJob, prompt: str | tuple[int, ...]
    ) -> tuple[dict[str, Any], list[int], int]:
        served = self.served
        if isinstance(prompt, str):
            ids = await self._submit("call", lambda: served.tokenize(prompt))
        else:
            ids = list(prompt)
        text, finish, new_ids, n_new = "", "length", [], 0
        if job.sampling.max_new_tokens > 0:
            result = await self._submit("decode", DecodeRow(ids, job.sampling, job.steering))
            if result.error:
                raise ApiError(500, f"generation failed: {result.error}", "server_error")
            text, finish, n_new = result.text, result.finish_reason, result.num_new_tokens
            if job.logprobs is not None:
                new_ids = await self._submit(
                    "call", lambda: served.tokenize(text, add_special_tokens=False)
                )
        want_prompt = job.prompt_logprobs is not None or (job.echo and job.logprobs is not None)
        token_lps: list[TokenLogprob] = []
        if want_prompt or new_ids:
            top = max(job.logprobs or 0, job.prompt_logprobs or 0)
            token_lps = await self._submit(
                "logprobs", LogprobRow(ids + new_ids, job.steering, top)
            )
        prompt_text = await self._submit("call", lambda: served.detokenize(ids)) if (
            job.echo) else ""
        choice: dict[str, Any] = {"text": prompt_text + text, "finish_reason": finish}
        if job.logprobs is not None:
            shown = token_lps if job.echo else token_lps[len(ids):]
            choice["logprobs"] = self._legacy_logprobs(shown, job.logprobs)
        else:
            choice["logprobs"] = None
        if job.prompt_logprobs is not None:
            choice["prompt_logprobs"] = [
                self._vllm_entry(t, job.prompt_logprobs) for t in token_lps[: len(ids)]
            ]
        return choice, ids, n_new

    def _legacy_logprobs(self, tokens: Sequence[TokenLogprob], top: int) -> dict[str, Any]:
        texts = [self.served.token_text(t.token_id) for t in tokens]
        offsets, pos = [], 0
        for text in texts:
            offsets.append(pos)
            pos += len(text)
        return {
            "tokens": texts,
            "token_ids": [t.token_id for t in tokens],
            "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [
                {self.served.token_text(i): v for i, v in t.top[:top]} if t.top and top
                else None
                for t in tokens
            ],
            "text_offset": offsets,
        }

    def _vllm_entry(self, token: TokenLogprob, top: int) -> dict[str, Any] | None:
        if token.logprob is None:
            return None
        entry = {str(token.token_id): {"logprob": token.logprob,
                                       "decoded_token": self.served.token_text(token.token_id)}}
        for i, v in token.top[:top]:
            entry.setdefault(str(i), {"logprob": v, "decoded_token": self.served.token_text(i)})
        return entry

    async def tokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        check_model(body, [self.served.name])
        if not self.served.can_tokenize:
            raise ApiError(404, "this server's backend cannot tokenize", "NotFoundError")
        if "messages" in body:
            messages = parse_messages(body["messages"])
            if body.get("add_generation_prompt", True) is not True:
                raise ApiError(400, "only add_generation_prompt: true is supported")
            ids = await self._submit("call", lambda: self.served.render(messages))
        elif isinstance(body.get("prompt"), str):
            special = bool(body.get("add_special_tokens", True))
            text = body["prompt"]
            ids = await self._submit(
                "call", lambda: self.served.tokenize(text, add_special_tokens=special)
            )
        else:
            raise ApiError(400, "send 'messages' (a chat) or 'prompt' (a string)")
        return {"tokens": ids, "count": len(ids), "max_model_len": None}

    async def detokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        tokens = body.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ApiError(400, "'tokens' must be a list of token ids")
        return {"prompt": await self._submit("call", lambda: self.served.detokenize(tokens))}

    async def score(self, body: dict[str, Any]) -> dict[str, Any]:
        from sim.requests import ScoreRequest

        check_model(body, [self.served.name])
        options = body.get("options")
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise ApiError(400, "'options' must be a list of strings")
        request = ScoreRequest(messages=parse_messages(body.get("messages")),
                               options=tuple(options), steering=parse_steering(body))
        result = await self._submit("score", request)
        if result.error:
            raise ApiError(500, f"scoring failed: {result.error}", "server_error")
        return {"object": "traitlab.score", "model": self.served.name,
                "logprobs": list(result.logprobs),
                "usage": {"prompt_tokens": result.num_prompt_tokens, "completion_tokens": 0,
                          "total_tokens": result.num_prompt_tokens}}

    async def _submit(self, kind: str, item: Any) -> Any:
        from sim.errors import BackendError

        try:
            return await self.batcher.submit(kind, item)
        except BackendError as exc:  # a request the backend refuses (unknown steering, ...)
            raise ApiError(400, str(exc)) from exc


def _envelope(
    kind: str, model: str, choices: list[dict[str, Any]], n_prompt: int, n_new: int
) -> dict[str, Any]:
    return {
        "id": f"{'chatcmpl' if kind == 'chat.completion' else 'cmpl'}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "traitlab",
        "choices": choices,
        "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_new,
                  "total_tokens": n_prompt + n_new},
    }
