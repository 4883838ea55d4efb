"""What a server can do, found once at start with a few small probe requests.

Probes go through the transport like any request, so they are stored and a replay finds the
same capabilities with no server. The scoring strategy follows from them: ``native`` (a
``traitlab serve`` scores with the backend's own scorer), ``logprobs`` (tokenize plus echoed
prompt log-probs: the hf backend's exact number), ``constrained`` (guided choice) or
``parsed`` (generation, strictly parsed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from sim.backends.openai.config import OpenAIConfig, public_url
from sim.backends.openai.transport import Transport
from sim.errors import BackendError

__all__ = ["GUIDED_VARIANTS", "Capabilities", "detect", "echo_logprobs", "guided_fields"]

GUIDED_VARIANTS = ("structured_outputs", "guided_choice", "response_format")
_PROBE_CHOICES = ["purple-7", "orange-3"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the server offers, and the scoring strategy chosen from it.

    Attributes:
        model: the model name requests use.
        models: every model the server lists.
        traitlab: the server is a ``traitlab serve`` (steering and native scoring).
        tokenize: vLLM's ``/tokenize`` (chat template applied server-side) answers.
        prompt_logprobs: completions return echoed prompt log-probs.
        echo_max_tokens: ``max_tokens`` sent with an echo request (0, or 1 where 0 is refused).
        guided: how guided choice is asked for (a :data:`GUIDED_VARIANTS` entry), if at all.
        scoring: ``native``, ``logprobs``, ``constrained`` or ``parsed``.
    """

    model: str
    models: tuple[str, ...]
    traitlab: bool
    tokenize: bool
    prompt_logprobs: bool
    echo_max_tokens: int
    guided: str | None
    scoring: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        out = asdict(self)
        out["models"] = list(self.models)
        return out


async def detect(transport: Transport, config: OpenAIConfig) -> Capabilities:
    """Probe the server once.

    Raises:
        BackendError: the model list cannot be read, the model is ambiguous or unknown, or a
            forced scoring mode is not offered.
    """
    model, models, traitlab = await _model(transport, config)
    native = traitlab and config.extensions and config.scoring in ("auto", "logprobs")
    tokenize, echo, echo_max = False, False, 0
    if config.scoring in ("auto", "logprobs") and not native:
        tokenize, echo, echo_max = await _probe_logprobs(transport, model)
    guided = None
    if config.scoring == "constrained" or (config.scoring == "auto" and not native and not echo):
        guided = await _probe_guided(transport, model)
    scoring = _choose(config, native=native, logprobs=tokenize and echo, guided=guided)
    return Capabilities(model, models, traitlab, tokenize, echo, echo_max, guided, scoring)


async def _model(transport: Transport, config: OpenAIConfig) -> tuple[str, tuple[str, ...], bool]:
    where = public_url(config.base_url)
    reply = await transport.request("GET", "/v1/models")
    data = reply.body.get("data") if reply.ok and isinstance(reply.body, dict) else None
    if not isinstance(data, list):
        raise BackendError(
            f"base_url '{where}': cannot list models ({reply.error or 'no data list'}). "
            "Fix: check --base-url (it ends in /v1) and that the server is running."
        )
    cards = {str(c.get("id")): c for c in data if isinstance(c, dict)}
    names = tuple(cards)
    if config.model is None:
        if len(names) != 1:
            raise BackendError(
                f"base_url '{where}': the server lists {len(names)} models {list(names)}. "
                "Fix: choose one with --api-model NAME (api.model)."
            )
        model = names[0]
    elif config.model in cards:
        model = config.model
    else:
        raise BackendError(
            f"model '{config.model}': not among the models '{where}' lists: {list(names)}. "
            "Fix: use one of those names."
        )
    return model, names, cards[model].get("owned_by") == "traitlab"


async def _probe_logprobs(transport: Transport, model: str) -> tuple[bool, bool, int]:
    chat = {"model": model, "messages": [{"role": "user", "content": "Hello"}],
            "add_generation_prompt": True}
    reply = await transport.request("POST", "/tokenize", chat)
    ids = reply.body.get("tokens") if reply.ok and isinstance(reply.body, dict) else None
    if not (isinstance(ids, list) and ids and all(isinstance(t, int) for t in ids)):
        return False, False, 0
    for max_tokens in (0, 1):
        body = {"model": model, "prompt": ids, "max_tokens": max_tokens, "echo": True,
                "logprobs": 0, "temperature": 0}
        reply = await transport.request("POST", "/v1/completions", body)
        if reply.ok:
            values = echo_logprobs(reply.body, 0, len(ids))
            if values is not None and all(math.isfinite(v) for v in values[1:]):
                return True, True, max_tokens
    return True, False, 0


def echo_logprobs(body: Any, index: int, n: int) -> list[float] | None:
    """The first ``n`` prompt-token log-probs of choice ``index`` (first entry 0.0), if given.

    Reads vLLM's ``prompt_logprobs`` or the legacy echoed ``logprobs.token_logprobs``.
    """
    try:
        choice = body["choices"][index]
    except (KeyError, IndexError, TypeError):
        return None
    values: list[float] = []
    legacy = (choice.get("logprobs") or {}).get("token_logprobs")
    if isinstance(legacy, list) and len(legacy) >= n:
        values = [float(v) if v is not None else 0.0 for v in legacy[:n]]
        return values
    prompt = choice.get("prompt_logprobs")
    ids = body.get("prompt_token_ids") or choice.get("prompt_token_ids")
    if isinstance(prompt, list) and len(prompt) >= n and isinstance(ids, list):
        for pos in range(n):
            entry = prompt[pos]
            picked = entry.get(str(ids[pos])) if isinstance(entry, dict) else None
            value = picked.get("logprob") if isinstance(picked, dict) else picked
            values.append(float(value) if value is not None else 0.0)
        return values
    return None


def guided_fields(variant: str, options: list[str]) -> dict[str, Any]:
    """The request fields asking for a reply that is exactly one of ``options``."""
    if variant == "structured_outputs":
        return {"structured_outputs": {"choice": options}}
    if variant == "guided_choice":
        return {"guided_choice": options}
    schema = {"type": "object", "properties": {"choice": {"type": "string", "enum": options}},
              "required": ["choice"], "additionalProperties": False}
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": "choice", "strict": True,
                                                "schema": schema}}}


def guided_reply(variant: str, content: str) -> str:
    """The chosen option text inside a guided reply."""
    if variant != "response_format":
        return content.strip()
    try:
        import json

        return str(json.loads(content)["choice"]).strip()
    except (ValueError, KeyError, TypeError):
        return content.strip()


async def _probe_guided(transport: Transport, model: str) -> str | None:
    """The first guided-choice variant whose reply is one of two unlikely words."""
    for variant in GUIDED_VARIANTS:
        body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 8, "temperature": 0, "seed": 0,
                **guided_fields(variant, list(_PROBE_CHOICES))}
        reply = await transport.request("POST", "/v1/chat/completions", body)
        if reply.ok and guided_reply(variant, _content(reply.body)) in _PROBE_CHOICES:
            return variant
    return None


def _content(body: Any) -> str:
    try:
        return str(body["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        return ""


def _choose(config: OpenAIConfig, *, native: bool, logprobs: bool, guided: str | None) -> str:
    wanted = config.scoring
    if native:
        return "native"
    if wanted == "logprobs" and not logprobs:
        raise BackendError(
            f"scoring 'logprobs': '{public_url(config.base_url)}' offers no /tokenize with "
            "echoed prompt log-probs. Fix: use scoring 'auto' (falls back to constrained or "
            "parsed choice), or a vLLM/SGLang/traitlab server."
        )
    if wanted == "constrained" and guided is None:
        raise BackendError(
            f"scoring 'constrained': '{public_url(config.base_url)}' ignores guided choice. "
            "Fix: use scoring 'auto' or 'parsed'."
        )
    if wanted in ("auto", "logprobs") and logprobs:
        return "logprobs"
    if wanted in ("auto", "constrained") and guided is not None:
        return "constrained"
    return "parsed"
