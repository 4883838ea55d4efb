"""The transformers backend: batched generation and option scoring on a local HF model.

Every call takes the whole wave of requests. Requests are rendered with the chat template
(contents never become control tokens), sorted by length, cut into micro-batches under a
padded-token budget, run, and put back in request order. A batch that fails (out of memory,
NaN logits) is retried in halves; a request that still fails alone gets an error result and
the others are unaffected.

Example:
    >>> backend = HFBackend(HFConfig(dtype="float32", batch_rows=16))  # doctest: +SKIP
    >>> backend.generate([GenerateRequest(messages=(Message("user", "Hi!"),))])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.backends.hf.batching import plan_batches, run_isolated
from sim.backends.hf.config import HFConfig
from sim.backends.hf.loading import load_model, prefix_store, resolve_dtype, torch_device
from sim.backends.hf.model_store import default_model_id, default_model_path, weights_hash
from sim.backends.protocol import Capabilities
from sim.errors import BackendError, ModelNotFoundError
from sim.requests import (
    GenerateRequest,
    GenerateResult,
    ModelInfo,
    ScoreRequest,
    ScoreResult,
)

if TYPE_CHECKING:
    import torch

    from sim.backends.hf.decoding import GenerateRow
    from sim.backends.hf.forward import ModelContext
    from sim.backends.hf.scoring import ScoreUnit

__all__ = ["HFBackend", "HFConfig"]


class HFBackend:
    """A transformers causal LM behind the :class:`~sim.backends.protocol.Backend` protocol.

    Args:
        config: the backend's settings (:class:`~sim.backends.hf.config.HFConfig`), or a
            model folder as a shorthand for ``HFConfig(model=folder)``; ``None`` loads the
            embedded SmolLM2 with the run's defaults.
        **settings: :class:`HFConfig` fields that override ``config`` (``dtype="float32"``).

    Raises:
        ModelNotFoundError: the folder does not exist, or the embedded model is not installed.
        BackendError: a bad setting, or a folder transformers cannot load.
    """

    def __init__(self, config: HFConfig | str | Path | None = None, /, **settings: Any) -> None:
        config = HFConfig.build(config, **settings)
        dtype = resolve_dtype(config.dtype, config.device)
        import torch

        if config.model is None:
            self._path, self._model_id = default_model_path(), default_model_id()
        else:
            self._path = Path(config.model).expanduser()
            self._model_id = str(self._path)
            if not self._path.exists():
                raise ModelNotFoundError(
                    f"model '{config.model}': no such folder. Fix: pass a folder written by "
                    "save_pretrained, or leave the model unset for the embedded SmolLM2."
                )
        self.config = config
        self._dtype_name, self._device_name = dtype, config.device
        # mutable on purpose: a caller may tighten the budget of a loaded backend
        self.max_batch_tokens, self.max_batch_size = config.batch_tokens, config.batch_rows
        torch.set_num_threads(config.threads or os.cpu_count() or 1)
        device = torch_device(config.device)
        self._ctx = load_model(self._path, self._model_id, getattr(torch, dtype), device)
        self._ctx.prefix_store = prefix_store(self._ctx, config.prefix_cache_mib)
        from sim.backends.hf.prompts import PromptRenderer

        self._renderer = PromptRenderer(self._ctx.tokenizer, self._model_id)
        # positions the model was trained for: beyond them it runs on, silently wrong
        self.context = int(getattr(self._ctx.model.config, "max_position_embeddings", 0) or 0)
        self._weights_hash: str | None = None
        self.stats: dict[str, int] = dict.fromkeys(
            ("batches", "retries", "failures", "prompt_tokens", "new_tokens", "cached_tokens"), 0
        )

    capabilities = Capabilities(steering=True, prefix_cache=True, stats=True)
    """It steers, keeps prompt KV between batches, and counts into :attr:`stats`."""

    @property
    def info(self) -> ModelInfo:
        """Identity of the model, for the manifest (the weights hash is computed once)."""
        if self._weights_hash is None:
            self._weights_hash = weights_hash(self._path)
        return ModelInfo(
            backend="hf",
            model_id=self._model_id,
            weights_hash=self._weights_hash,
            dtype=self._dtype_name,
            device=str(self._ctx.device),
        )

    @property
    def model(self) -> Any:
        """The underlying transformers model (for steering-direction recipes and tests)."""
        return self._ctx.model

    @property
    def tokenizer(self) -> Any:
        """The underlying tokenizer."""
        return self._ctx.tokenizer

    @property
    def model_context(self) -> ModelContext:
        """The loaded model, tokenizer and device, for raw-id forwards (``traitlab serve``)."""
        return self._ctx

    def render(self, messages: Sequence[Any]) -> list[int]:
        """Return the prompt token ids the backend feeds for ``messages``."""
        return self._renderer.render(messages)

    def option_ids(self, option: str) -> list[int]:
        """Return the token ids an option is scored as (plain text, no control tokens)."""
        return self._renderer.content_ids(option)

    def set_steering(
        self, directions: Mapping[str, torch.Tensor], layers: Sequence[int]
    ) -> None:
        """Set the steering directions that requests' ``steering`` coefficients refer to.

        Args:
            directions: one ``[hidden]`` tensor per trait name.
            layers: decoder layers (``model.model.layers[i]``) whose outputs are steered.

        Raises:
            BackendError: a direction has the wrong shape or a layer is out of range.
        """
        from sim.backends.hf.steering_hook import SteeringSet

        config = self._ctx.model.config
        self._ctx.steering = SteeringSet(
            directions,
            layers,
            hidden_size=int(config.hidden_size),
            num_layers=len(self._ctx.model.model.layers),
        )
        self.forget_prefixes()  # kept KV was computed under the old directions

    def clear_steering(self) -> None:
        """Forget the steering directions (requests with steering are then refused)."""
        self._ctx.steering = None
        self.forget_prefixes()

    def forget_prefixes(self) -> None:
        """Empty the prompt KV kept between batches (the engine calls it at every step)."""
        if self._ctx.prefix_store is not None:
            self._ctx.prefix_store.forget()

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Generate free text for every request; result ``i`` answers request ``i``.

        Raises:
            BackendError: a request names a steering trait with no direction set.
        """
        from sim.backends.hf.decoding import GenerateRow
        from sim.backends.hf.prefix import prefix_order

        self._check_steering(requests)
        results: list[GenerateResult | None] = [None] * len(requests)
        rows: dict[int, GenerateRow] = {}
        for i, req in enumerate(requests):
            try:
                ids = self._renderer.render(req.messages)
            except Exception as exc:  # a template that rejects this chat
                results[i] = _generate_error(0, f"cannot render the chat: {exc}")
                continue
            if (over := self._over_context(len(ids), max(req.sampling.max_new_tokens, 0),
                                           "new tokens")) is not None:
                results[i] = _generate_error(len(ids), over)
                continue
            rows[i] = GenerateRow(ids, req.sampling, tuple(req.steering))
        keys = list(rows)
        prompts = [rows[k].prompt_ids for k in keys]
        plan = plan_batches(
            [len(p) for p in prompts],
            [max(rows[k].sampling.max_new_tokens, 0) for k in keys],
            max_tokens=self.max_batch_tokens,
            max_size=self.max_batch_size,
            order=prefix_order(prompts, [rows[k].steering for k in keys]),
        )
        for batch in plan:
            members = [keys[j] for j in batch]
            outs = run_isolated(
                [rows[k] for k in members],
                self._run_generate,
                lambda row, exc: _generate_error(len(row.prompt_ids), _reason(exc)),
                self.stats,
            )
            for k, out in zip(members, outs, strict=True):
                results[k] = out
        return [r if r is not None else _generate_error(0, "not run") for r in results]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Return the log-likelihood of every option of every request, in request order.

        Requests sharing a prompt (and steering) share one prefill; requests whose prompts
        share a long prefix (and steering) share the prefix's prefill.

        Raises:
            BackendError: a request names a steering trait with no direction set.
        """
        from sim.backends.hf.prefix import prefix_order

        self._check_steering(requests)
        results: list[ScoreResult | None] = [None] * len(requests)
        units, placements = self._score_units(requests, results)
        plan = plan_batches(
            [len(u.prompt_ids) for u in units],
            [u.width for u in units],
            max_tokens=self.max_batch_tokens,
            max_size=self.max_batch_size,
            order=prefix_order([u.prompt_ids for u in units], [u.steering for u in units]),
        )
        unit_out: dict[int, tuple[list[float], int] | str] = {}
        first_of: dict[int, int] = {}
        for batch in plan:
            outs = run_isolated(
                [units[j] for j in batch], self._run_score, lambda _u, e: _reason(e), self.stats
            )
            unit_out.update(zip(batch, outs, strict=True))
        for i, (u, start, cached) in placements.items():
            out = unit_out[u]
            n_prompt = len(units[u].prompt_ids)
            if isinstance(out, str):
                results[i] = ScoreResult(logprobs=(), num_prompt_tokens=n_prompt, error=out,
                                         decided_by="failed")
            else:
                if first_of.setdefault(u, i) == i:  # the unit's prefix saving, counted once
                    cached = max(cached, out[1])
                self.stats["cached_tokens"] += cached
                values = tuple(out[0][start : start + len(requests[i].options)])
                results[i] = ScoreResult(
                    logprobs=values, num_prompt_tokens=n_prompt, num_cached_tokens=cached,
                    decided_by="logprobs",
                )
        return [r if r is not None else ScoreResult(logprobs=(), error="not run",
                                                    decided_by="failed") for r in results]

    def _score_units(
        self, requests: Sequence[ScoreRequest], results: list[ScoreResult | None]
    ) -> tuple[list[ScoreUnit], dict[int, tuple[int, int, int]]]:
        """Group requests by (prompt, steering); map request -> (unit, first option, cached)."""
        from sim.backends.hf.scoring import ScoreUnit

        units: list[ScoreUnit] = []
        by_key: dict[tuple[tuple[int, ...], tuple[tuple[str, float], ...]], int] = {}
        placements: dict[int, tuple[int, int, int]] = {}
        for i, req in enumerate(requests):
            try:
                ids = self._renderer.render(req.messages)
            except Exception as exc:
                results[i] = ScoreResult(logprobs=(), error=f"cannot render the chat: {exc}",
                                         decided_by="failed")
                continue
            options = [self._renderer.content_ids(o) for o in req.options]
            longest = max((len(o) for o in options), default=0)
            if (over := self._over_context(len(ids), longest, "option tokens")) is not None:
                results[i] = ScoreResult(logprobs=(), num_prompt_tokens=len(ids), error=over)
                continue
            key = (tuple(ids), tuple(req.steering))
            cached = len(ids) if key in by_key else 0
            if key not in by_key:
                by_key[key] = len(units)
                units.append(ScoreUnit(ids, tuple(req.steering), []))
            unit = units[by_key[key]]
            placements[i] = (by_key[key], len(unit.options), cached)
            unit.options.extend(options)
        return units, placements

    def _over_context(self, prompt: int, extra: int, what: str) -> str | None:
        """Why a request does not fit the model's context (``None``: it fits)."""
        if not self.context or prompt + extra <= self.context:
            return None
        return (f"the prompt has {prompt} tokens and up to {extra} {what} follow, over the "
                f"model's context of {self.context} positions; shorten the prompt, the memory "
                "or max_new_tokens")

    def _run_generate(self, rows: Sequence[GenerateRow]) -> list[GenerateResult]:
        from sim.backends.hf.decoding import decode_batch

        self.stats["batches"] += 1
        out = decode_batch(self._ctx, rows)
        self.stats["prompt_tokens"] += sum(len(r.prompt_ids) for r in rows)
        self.stats["new_tokens"] += sum(r.num_new_tokens for r in out)
        self.stats["cached_tokens"] += sum(r.num_cached_tokens for r in out)
        return out

    def _run_score(self, units: Sequence[ScoreUnit]) -> list[tuple[list[float], int] | str]:
        from sim.backends.hf.scoring import score_batch

        self.stats["batches"] += 1
        out = score_batch(self._ctx, units)
        self.stats["prompt_tokens"] += sum(len(u.prompt_ids) for u in units)
        return list(out)

    def _check_steering(self, requests: Sequence[GenerateRequest | ScoreRequest]) -> None:
        wanted = [req.steering for req in requests if req.steering]
        if not wanted:
            return
        if self._ctx.steering is None:
            raise BackendError(
                f"steering {wanted[0]}: no steering directions are set on this backend. "
                "Fix: call HFBackend.set_steering(directions, layers) first."
            )
        for steering in wanted:
            self._ctx.steering.check(steering)


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _generate_error(num_prompt_tokens: int, reason: str) -> GenerateResult:
    return GenerateResult(
        text="", num_prompt_tokens=num_prompt_tokens, finish_reason="error", error=reason
    )
