"""Request bodies of the OpenAI-compatible endpoints, parsed into backend terms.

Parsing is strict where a silent default would change results (``n`` other than 1, unknown
roles, token ids outside the vocabulary) and lenient elsewhere (unknown fields are ignored,
as OpenAI-compatible servers do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.requests import Message, SamplingParams

__all__ = [
    "ApiError",
    "ChatJob",
    "CompletionJob",
    "error_body",
    "parse_chat",
    "parse_completion",
    "parse_messages",
    "parse_steering",
]

Steering = tuple[tuple[str, float], ...]
_ROLES = ("system", "user", "assistant")


class ApiError(Exception):
    """A request the server refuses; becomes an OpenAI-shaped error response."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def error_body(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    """The OpenAI error envelope."""
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


@dataclass(frozen=True, slots=True)
class ChatJob:
    """A parsed chat completion request."""

    messages: tuple[Message, ...]
    sampling: SamplingParams
    steering: Steering
    logprobs: bool
    top_logprobs: int


@dataclass(frozen=True, slots=True)
class CompletionJob:
    """A parsed completion request: one or more prompts as text or token ids."""

    prompts: tuple[str | tuple[int, ...], ...]
    sampling: SamplingParams
    steering: Steering
    echo: bool
    logprobs: int | None
    prompt_logprobs: int | None


def parse_messages(raw: Any) -> tuple[Message, ...]:
    """Chat messages; list-of-parts contents are joined text parts."""
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content}")
    out: list[Message] = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, Mapping) or msg.get("role") not in _ROLES:
            raise ApiError(400, f"messages[{i}]: role must be one of {list(_ROLES)}")
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(
                str(p.get("text", "")) for p in content
                if isinstance(p, Mapping) and p.get("type") == "text"
            )
        if not isinstance(content, str):
            raise ApiError(400, f"messages[{i}].content must be a string")
        out.append(Message(msg["role"], content))
    return tuple(out)


def parse_steering(body: Mapping[str, Any]) -> Steering:
    """The ``traitlab.steering`` extension: ``[[trait, coefficient], ...]``."""
    ext = body.get("traitlab") or {}
    if not isinstance(ext, Mapping):
        raise ApiError(400, "'traitlab' must be an object like {\"steering\": [[trait, coef]]}")
    pairs = ext.get("steering") or []
    try:
        return tuple((str(name), float(coef)) for name, coef in pairs)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"traitlab.steering must be [[trait, coef], ...]: {exc}") from exc


def _sampling(body: Mapping[str, Any], default_max: int) -> SamplingParams:
    if int(body.get("n") or 1) != 1:
        raise ApiError(400, "'n' must be 1 (send one request per sample, with its own seed)")
    raw_max = body.get("max_completion_tokens", body.get("max_tokens"))
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    try:
        params = SamplingParams(
            max_new_tokens=default_max if raw_max is None else int(raw_max),
            temperature=float(_or(body.get("temperature"), 1.0)),
            top_p=float(_or(body.get("top_p"), 1.0)),
            seed=int(_or(body.get("seed"), 0)),
            stop=tuple(str(s) for s in stop),
        )
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"bad sampling parameter: {exc}") from exc
    if params.max_new_tokens < 0 or params.temperature < 0 or not 0 < params.top_p <= 1:
        raise ApiError(400, "need max_tokens >= 0, temperature >= 0 and 0 < top_p <= 1")
    return params


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def parse_chat(body: Mapping[str, Any]) -> ChatJob:
    """A ``/v1/chat/completions`` body."""
    top = int(body.get("top_logprobs") or 0)
    return ChatJob(
        messages=parse_messages(body.get("messages")),
        sampling=_sampling(body, default_max=256),
        steering=parse_steering(body),
        logprobs=bool(body.get("logprobs")) or top > 0,
        top_logprobs=top,
    )


def parse_completion(body: Mapping[str, Any], vocab_size: int | None) -> CompletionJob:
    """A ``/v1/completions`` body; ``prompt`` is text, token ids, or a list of either."""
    prompts = _prompts(body.get("prompt"))
    for ids in prompts:
        if isinstance(ids, tuple):
            bad = [t for t in ids if vocab_size is not None and not 0 <= t < vocab_size]
            if bad or not ids:
                raise ApiError(400, f"prompt token ids must be non-empty, in [0, {vocab_size})")
    logprobs, prompt_lp = body.get("logprobs"), body.get("prompt_logprobs")
    return CompletionJob(
        prompts=prompts,
        sampling=_sampling(body, default_max=16),
        steering=parse_steering(body),
        echo=bool(body.get("echo")),
        logprobs=None if logprobs is None else int(logprobs),
        prompt_logprobs=None if prompt_lp is None else int(prompt_lp),
    )


def _prompts(raw: Any) -> tuple[str | tuple[int, ...], ...]:
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and raw and all(_is_int(t) for t in raw):
        return (tuple(int(t) for t in raw),)
    if isinstance(raw, list) and raw:
        out: list[str | tuple[int, ...]] = []
        for item in raw:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, list) and all(_is_int(t) for t in item):
                out.append(tuple(int(t) for t in item))
            else:
                raise ApiError(400, "each prompt must be a string or a list of token ids")
        return tuple(out)
    raise ApiError(400, "'prompt' must be a string, token ids, or a non-empty list of either")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_model(body: Mapping[str, Any], names: Sequence[str]) -> None:
    """404 for a model name the server does not serve (a missing name is fine)."""
    model = body.get("model")
    if model is not None and model not in names:
        raise ApiError(404, f"model '{model}' does not exist; served: {list(names)}",
                       "NotFoundError")
