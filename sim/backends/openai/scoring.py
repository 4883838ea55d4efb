"""Option choice through a server: log-likelihoods where it can, else a choice it is held to.

Every result says how it was decided (``logprobs``, ``constrained``, ``parsed`` or
``failed``). ``logprobs`` values are the hf backend's option log-likelihoods; a constrained or
parsed choice has log-likelihood 0 for the chosen option and ``-inf`` for the others, so the
engine's argmax and sampling pick it.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sim.backends.openai.capabilities import (
    Capabilities,
    echo_logprobs,
    guided_fields,
    guided_reply,
)
from sim.backends.openai.config import OpenAIConfig
from sim.backends.openai.transport import Transport
from sim.requests import Message, ScoreRequest, ScoreResult

__all__ = ["DECIDED_BY", "REASK", "Scorer", "parse_choice", "score_result"]

DECIDED_BY = ("logprobs", "constrained", "parsed", "failed")
REASK = "Reply with exactly one of the following, and nothing else: {options}"
_STRIP = " \t\r\n.!,;:\"'*`()[]"


def score_result(
    logprobs: Sequence[float],
    *,
    decided_by: str,
    num_prompt_tokens: int = 0,
    error: str | None = None,
) -> ScoreResult:
    """A :class:`ScoreResult` saying how it was decided (a :data:`DECIDED_BY` value)."""
    return ScoreResult(logprobs=tuple(logprobs), num_prompt_tokens=num_prompt_tokens,
                       error=error, decided_by=decided_by)


def messages_json(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Chat messages as the API sends them."""
    return [{"role": m.role, "content": m.content} for m in messages]


def steering_fields(steering: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """The ``traitlab`` extension field carrying steering coefficients (none if empty)."""
    if not steering:
        return {}
    return {"traitlab": {"steering": [[name, float(coef)] for name, coef in steering]}}


def parse_choice(text: str, options: Sequence[str]) -> str | None:
    """The option a reply names, strictly: the whole reply, or its first words.

    Case, surrounding quotes and punctuation are ignored; where several options begin the
    reply, the longest wins (``agree strongly`` over ``agree``). Anything else is ``None``.
    """
    reply = text.strip(_STRIP).lower()
    by_norm = {o.strip(_STRIP).lower(): o for o in options}
    if reply in by_norm:
        return by_norm[reply]
    starts = [norm for norm in by_norm
              if norm and re.match(rf"{re.escape(norm)}(?![\w-])", reply)]
    return by_norm[max(starts, key=len)] if starts else None


@dataclass(slots=True)
class Scorer:
    """Scores one wave of requests with the strategy the capabilities chose."""

    transport: Transport
    caps: Capabilities
    config: OpenAIConfig

    async def score(self, requests: Sequence[ScoreRequest]) -> list[tuple[ScoreResult, str]]:
        """One ``(result, decided_by)`` per request, in order; never raises for a request."""
        strategy = self.caps.scoring
        if strategy == "logprobs":
            return await self._logprob_wave(requests)
        one = {"native": self._native, "constrained": self._constrained}.get(
            strategy, self._parsed)
        return list(await asyncio.gather(*(one(r) for r in requests)))

    def _failed(self, error: str | None, n_prompt: int = 0) -> tuple[ScoreResult, str]:
        reason = error or "unknown error"
        return score_result((), decided_by="failed", num_prompt_tokens=n_prompt,
                            error=reason), "failed"

    async def _native(self, req: ScoreRequest) -> tuple[ScoreResult, str]:
        body = {"model": self.caps.model, "messages": messages_json(req.messages),
                "options": list(req.options), **steering_fields(req.steering)}
        reply = await self.transport.request("POST", "/traitlab/score", body)
        values = reply.body.get("logprobs") if reply.ok else None
        if not isinstance(values, list) or len(values) != len(req.options):
            return self._failed(reply.error or "the score reply has no logprobs list")
        n_prompt = int((reply.body.get("usage") or {}).get("prompt_tokens") or 0)
        return score_result([float(v) for v in values], decided_by="logprobs",
                            num_prompt_tokens=n_prompt), "logprobs"

    async def _tokenize(self, body: dict[str, Any]) -> list[int] | str:
        reply = await self.transport.request("POST", "/tokenize", body)
        ids = reply.body.get("tokens") if reply.ok and isinstance(reply.body, dict) else None
        if isinstance(ids, list) and all(isinstance(t, int) for t in ids):
            return ids
        return reply.error or "the tokenize reply has no token list"

    async def _logprob_wave(
        self, requests: Sequence[ScoreRequest]
    ) -> list[tuple[ScoreResult, str]]:
        model = self.caps.model
        chats = {json.dumps(messages_json(r.messages)): r.messages for r in requests}
        words = sorted({o for r in requests for o in r.options if o})
        chat_ids = await asyncio.gather(*(
            self._tokenize({"model": model, "messages": messages_json(m),
                            "add_generation_prompt": True}) for m in chats.values()))
        word_ids = await asyncio.gather(*(
            self._tokenize({"model": model, "prompt": w, "add_special_tokens": False})
            for w in words))
        prompts = dict(zip(chats, chat_ids, strict=True))
        options: dict[str, list[int] | str] = dict(zip(words, word_ids, strict=True))
        options[""] = []
        return list(await asyncio.gather(*(
            self._echo(r, prompts[json.dumps(messages_json(r.messages))], options)
            for r in requests)))

    async def _echo(
        self, req: ScoreRequest, prompt: list[int] | str, options: dict[str, list[int] | str]
    ) -> tuple[ScoreResult, str]:
        if isinstance(prompt, str):
            return self._failed(prompt)
        opt_ids = [options[o] for o in req.options]
        bad = next((o for o in opt_ids if isinstance(o, str)), None)
        if bad is not None:
            return self._failed(str(bad), len(prompt))
        body = {"model": self.caps.model, "prompt": [prompt + list(o) for o in opt_ids],
                "echo": True, "logprobs": 0, "max_tokens": self.caps.echo_max_tokens,
                "temperature": 0, **steering_fields(req.steering)}
        reply = await self.transport.request("POST", "/v1/completions", body)
        if not reply.ok:
            return self._failed(reply.error, len(prompt))
        choices = sorted(reply.body.get("choices") or [], key=lambda c: c.get("index", 0))
        ordered = {**reply.body, "choices": choices}
        totals: list[float] = []
        for i, ids in enumerate(opt_ids):
            values = echo_logprobs(ordered, i, len(prompt) + len(ids))
            if values is None:
                return self._failed("the completion reply has no prompt log-probs", len(prompt))
            totals.append(math.fsum(values[len(prompt):]))
        return score_result(totals, decided_by="logprobs",
                            num_prompt_tokens=len(prompt)), "logprobs"

    async def _chat(self, messages: list[dict[str, str]], req: ScoreRequest,
                    extra: dict[str, Any]) -> tuple[str | None, int, str | None]:
        """(reply text, prompt tokens, error) of a greedy chat request."""
        body = {"model": self.caps.model, "messages": messages,
                "max_tokens": self.config.choice_max_tokens, "temperature": 0, "seed": 0,
                **extra, **steering_fields(req.steering)}
        reply = await self.transport.request("POST", "/v1/chat/completions", body)
        if not reply.ok:
            return None, 0, reply.error
        try:
            text = str(reply.body["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            return None, 0, "the chat reply has no message content"
        return text, int((reply.body.get("usage") or {}).get("prompt_tokens") or 0), None

    async def _constrained(self, req: ScoreRequest) -> tuple[ScoreResult, str]:
        variant = self.caps.guided or "guided_choice"
        text, n_prompt, error = await self._chat(
            messages_json(req.messages), req, guided_fields(variant, list(req.options)))
        if text is None:
            return self._failed(error, n_prompt)
        chosen = guided_reply(variant, text)
        if chosen not in req.options:
            return self._failed(f"guided reply {chosen[:80]!r} is not an option", n_prompt)
        return _one_hot(req.options, chosen, "constrained", n_prompt), "constrained"

    async def _parsed(self, req: ScoreRequest) -> tuple[ScoreResult, str]:
        messages = messages_json(req.messages)
        first_prompt, text = 0, ""
        for attempt in range(self.config.max_reasks + 1):
            text_or_none, n_prompt, error = await self._chat(messages, req, {})
            if text_or_none is None:
                return self._failed(error, first_prompt)
            text = text_or_none
            first_prompt = first_prompt or n_prompt
            chosen = parse_choice(text, req.options)
            if chosen is not None:
                return _one_hot(req.options, chosen, "parsed", first_prompt), "parsed"
            if attempt < self.config.max_reasks:
                self.transport.stats["reasks"] = self.transport.stats.get("reasks", 0) + 1
                messages = [*messages, {"role": "assistant", "content": text},
                            {"role": "user", "content": REASK.format(
                                options=" | ".join(req.options))}]
        self.transport.stats["parse_failures"] = self.transport.stats.get("parse_failures", 0) + 1
        asks = self.config.max_reasks + 1
        return self._failed(f"parse failure: no option in the reply after {asks} asks "
                            f"(last reply {text[:80]!r})", first_prompt)


def _one_hot(options: Sequence[str], chosen: str, decided_by: str,
             n_prompt: int) -> ScoreResult:
    values = [0.0 if o == chosen else -math.inf for o in options]
    return score_result(values, decided_by=decided_by, num_prompt_tokens=n_prompt)
