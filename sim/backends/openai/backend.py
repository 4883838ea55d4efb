"""The OpenAI-compatible backend: a model behind any OpenAI-compatible HTTP server.

vLLM, SGLang, Ollama, llama.cpp, a hosted API or ``traitlab serve``, behind the
:class:`~sim.backends.protocol.Backend` protocol.

A wave is a set of concurrent HTTP requests; results come back in request order, and a
request that fails (after retries) becomes a failed result, never an exception. Every
response is stored (when a store directory is given), so a resumed run does not ask again and
:class:`ReplayBackend` answers with no server.

Example:
    >>> cfg = OpenAIConfig(base_url="http://127.0.0.1:8000/v1")      # doctest: +SKIP
    >>> with OpenAIBackend(cfg, store_dir="runs/x/responses") as backend:  # doctest: +SKIP
    ...     backend.generate([GenerateRequest(messages=(Message("user", "Hi"),))])
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.backends.openai.capabilities import Capabilities, detect
from sim.backends.openai.config import OpenAIConfig, public_url
from sim.backends.openai.scoring import Scorer, messages_json, steering_fields
from sim.backends.openai.store import ResponseStore
from sim.backends.openai.transport import Transport
from sim.backends.protocol import Capabilities as BackendCapabilities
from sim.closing import Closing
from sim.errors import BackendError
from sim.requests import GenerateRequest, GenerateResult, ModelInfo, ScoreRequest, ScoreResult

__all__ = ["CONFIG_FILE", "OpenAIBackend", "ReplayBackend"]

CONFIG_FILE = "backend.json"


class OpenAIBackend(Closing):
    """A model behind an OpenAI-compatible HTTP server.

    Args:
        config: server, model and limits.
        store_dir: directory of the response store (``None``: responses are not kept).
        offline: answer only from the store (a replay); a missing request raises
            :class:`~sim.backends.openai.transport.ReplayMissError`.

    Raises:
        BackendError: ``api_key_env`` names an unset variable.
    """

    def __init__(
        self, config: OpenAIConfig, *, store_dir: str | Path | None = None, offline: bool = False
    ) -> None:
        self.config = config
        store = ResponseStore(store_dir, readonly=offline) if store_dir is not None else None
        if store is not None and not offline:
            settings = config.model_dump(mode="json")
            settings["base_url"] = public_url(config.base_url)  # no credentials on disk
            (store.directory / CONFIG_FILE).write_text(
                json.dumps(settings, indent=1, sort_keys=True) + "\n")
        self._transport = Transport(config, store, offline=offline)
        self._caps: Capabilities | None = None
        self.last_decided_by: list[str] = []
        self.decided_by_counts: Counter[str] = Counter()

    @property
    def info(self) -> ModelInfo:
        """Identity of the model, for the manifest (probes the server once)."""
        caps = self.detect()
        return ModelInfo(backend="openai", model_id=caps.model,
                         device=public_url(self.config.base_url))

    @property
    def capabilities(self) -> BackendCapabilities:
        """Counters only: steering and prefix reuse happen on the server, if anywhere."""
        return BackendCapabilities(stats=True)

    @property
    def can_steer(self) -> bool:
        """Whether requests may carry steering (only a ``traitlab serve`` applies it)."""
        return self.detect().traitlab and self.config.extensions

    @property
    def stats(self) -> dict[str, Any]:
        """Requests, retries, failures, store hits, tokens, re-asks, parse failures, cost."""
        out: dict[str, Any] = dict(self._transport.stats)
        out.setdefault("reasks", 0)
        out.setdefault("parse_failures", 0)
        out["decided_by"] = dict(self.decided_by_counts)
        out["cost_usd"] = self.estimated_cost()
        return out

    def estimated_cost(self) -> float | None:
        """Cost of the tokens used so far at the configured prices (``None``: no prices)."""
        cfg = self.config
        if cfg.price_in_per_million is None and cfg.price_out_per_million is None:
            return None
        stats = self._transport.stats
        return (stats["prompt_tokens"] * (cfg.price_in_per_million or 0.0)
                + stats["completion_tokens"] * (cfg.price_out_per_million or 0.0)) / 1e6

    def detect(self) -> Capabilities:
        """What the server offers (probed once, then remembered).

        Raises:
            BackendError: the server cannot be reached or the model is ambiguous.
        """
        if self._caps is None:
            self._caps = self._run(detect(self._transport, self.config))
        return self._caps

    def describe(self) -> dict[str, Any]:
        """What the manifest records: URL without credentials, model, capabilities, claims."""
        caps = self.detect()
        determinism = (
            "traitlab serve: seeded requests reproduce for the same batch composition (fp32: "
            "batch-independent within 1e-4; bf16: a reply can depend on its batch)"
            if caps.traitlab else
            "each request's seed is sent; whether the server reproduces it is its own claim"
        )
        return {
            "backend": "openai",
            "base_url": public_url(self.config.base_url),
            "model": caps.model,
            "capabilities": caps.as_dict(),
            "determinism": determinism,
            "api_key_env": self.config.api_key_env,
            "replay": self._transport.offline,
        }

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Generate for every request concurrently; result ``i`` answers request ``i``.

        Raises:
            BackendError: a request asks for steering and the server cannot steer.
        """
        self._check_steering(requests)
        caps = self.detect()
        return self._run(_gather([self._generate_one(caps, r) for r in requests]))

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Score every request's options; ``last_decided_by[i]`` says how ``i`` was decided.

        Raises:
            BackendError: a request asks for steering and the server cannot steer.
        """
        self._check_steering(requests)
        scorer = Scorer(self._transport, self.detect(), self.config)
        pairs = self._run(scorer.score(requests))
        self.last_decided_by = [how for _, how in pairs]
        self.decided_by_counts.update(self.last_decided_by)
        return [result for result, _ in pairs]

    def close(self) -> None:
        """Close connections and the response store."""
        self._transport.close()


    def _run(self, coro: Any) -> Any:
        try:
            return self._transport.run(coro)
        finally:
            if self._transport.store is not None:
                self._transport.store.commit()  # one fsync per wave

    async def _generate_one(self, caps: Capabilities, req: GenerateRequest) -> GenerateResult:
        s = req.sampling
        body: dict[str, Any] = {
            "model": caps.model, "messages": messages_json(req.messages),
            "max_tokens": s.max_new_tokens, "temperature": s.temperature, "top_p": s.top_p,
            "seed": s.seed, **steering_fields(req.steering)}
        if s.stop:
            body["stop"] = list(s.stop)
        reply = await self._transport.request("POST", "/v1/chat/completions", body)
        if not reply.ok:
            return GenerateResult(text="", finish_reason="error", error=reply.error)
        try:
            choice = reply.body["choices"][0]
            text = str(choice["message"].get("content") or "")
        except (KeyError, IndexError, TypeError, AttributeError):
            return GenerateResult(text="", finish_reason="error",
                                  error="the chat reply has no message content")
        usage = reply.body.get("usage") or {}
        return GenerateResult(
            text=text,
            num_prompt_tokens=int(usage.get("prompt_tokens") or 0),
            num_new_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
        )

    def _check_steering(self, requests: Sequence[GenerateRequest | ScoreRequest]) -> None:
        wanted = next((r.steering for r in requests if r.steering), None)
        if wanted and not self.can_steer:
            raise BackendError(
                f"steering {wanted}: the server at '{public_url(self.config.base_url)}' "
                "cannot steer activations (it does not expose the model's weights). Fix: "
                "remove steering, or serve the model with `traitlab serve`."
            )


async def _gather(coros: list[Any]) -> list[Any]:
    return list(await asyncio.gather(*coros))


class ReplayBackend(OpenAIBackend):
    """Answers every request from a run's response store, with no server.

    Args:
        store_dir: the response store directory a run with :class:`OpenAIBackend` wrote.

    Raises:
        BackendError: the directory holds no response store.
    """

    def __init__(self, store_dir: str | Path) -> None:
        path = Path(store_dir) / CONFIG_FILE
        try:
            config = OpenAIConfig.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackendError(
                f"replay '{store_dir}': no readable {CONFIG_FILE} ({type(exc).__name__}). "
                "Fix: pass the response directory of a run made with the openai backend."
            ) from exc
        super().__init__(config, store_dir=store_dir, offline=True)
