"""What the server can do with the backend it serves: tokenize, generate, score, prompt log-probs.

Any :class:`~sim.backends.protocol.Backend` can be served (chat generation and the traitlab
scoring extension need nothing more). Tokenize endpoints need a backend with ``render`` and
``tokenizer`` (the hf backend); log-probabilities of arbitrary token ids and generation from
raw token ids need the hf backend's loaded model, reached through its model context.

Example:
    >>> served = ServedModel(HFBackend("path/to/model"))          # doctest: +SKIP
    >>> served.prompt_logprobs([LogprobRow([1, 2, 3])])           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.backends.protocol import Backend
from sim.errors import BackendError
from sim.requests import (
    GenerateRequest,
    GenerateResult,
    Message,
    SamplingParams,
    ScoreRequest,
    ScoreResult,
)

if TYPE_CHECKING:
    from sim.backends.hf.forward import ModelContext

__all__ = ["DecodeRow", "LogprobRow", "ServedModel", "TokenLogprob"]

Steering = tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class LogprobRow:
    """Token ids whose every position's log-probability is wanted (teacher forcing)."""

    ids: Sequence[int]
    steering: Steering = ()
    top: int = 0


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """Log-probability of one token given the ones before it (``None`` for the first)."""

    token_id: int
    logprob: float | None
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True, slots=True)
class DecodeRow:
    """Generation continuing raw token ids."""

    ids: Sequence[int]
    sampling: SamplingParams
    steering: Steering = ()


class ServedModel:
    """The backend a server answers with, and the optional abilities it has.

    Args:
        backend: any backend; the hf backend enables tokenize and log-prob endpoints.
        name: the model name the server lists (default: the backend's model id).
    """

    def __init__(self, backend: Backend, name: str | None = None) -> None:
        self.backend = backend
        self.name = name or backend.info.model_id
        # Tokenizing and raw-id forwards need the transformers model itself; any other
        # backend is served through its generate and score methods only.
        from sim.backends.hf.backend import HFBackend

        self._hf = backend if isinstance(backend, HFBackend) else None
        self._tokenizer = self._hf.tokenizer if self._hf is not None else None
        self._ctx: ModelContext | None = self._hf.model_context if self._hf is not None else None

    @property
    def can_tokenize(self) -> bool:
        """Whether chat rendering and tokenization are available."""
        return self._hf is not None

    @property
    def can_forward(self) -> bool:
        """Whether log-probs of raw token ids and raw-id generation are available."""
        return self._ctx is not None

    def render(self, messages: Sequence[Message]) -> list[int]:
        """Prompt ids of a chat plus the assistant generation prompt, as the backend feeds it."""
        if self._hf is None:
            raise BackendError(f"{self.backend.info.backend} backend has no chat template to "
                               "render. Fix: serve the hf backend.")
        return list(self._hf.render(messages))

    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text`` (special-token strings parsed, as vLLM does)."""
        encoded = self._need_tokenizer()(text, add_special_tokens=add_special_tokens)
        return list(encoded["input_ids"])

    def detokenize(self, ids: Sequence[int]) -> str:
        """Text of token ids (special tokens kept)."""
        return str(self._need_tokenizer().decode(list(ids)))

    def token_text(self, token_id: int) -> str:
        """Text of one token."""
        return self.detokenize([token_id])

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """The backend's generation, one call for the whole wave."""
        return self.backend.generate(requests)

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """The backend's option scoring, one call for the whole wave."""
        return self.backend.score(requests)

    def prompt_logprobs(self, rows: Sequence[LogprobRow]) -> list[list[TokenLogprob]]:
        """Log-probability of every token of every row given the tokens before it.

        Rows are run in left-padded batches under the backend's padded-token budget; the
        values equal the hf backend's option scores up to float rounding.

        Raises:
            BackendError: the backend has no loaded model, or a row's steering is unknown.
        """
        ctx = self._need_ctx()
        self._check_steering([r.steering for r in rows])
        assert self._hf is not None  # _need_ctx: only the hf backend has a model context
        budget = self._hf.max_batch_tokens
        out: list[list[TokenLogprob]] = []
        batch: list[LogprobRow] = []
        for row in rows:
            width = max([len(r.ids) for r in batch] + [len(row.ids)])
            if batch and width * (len(batch) + 1) > budget:
                out.extend(_forward_logprobs(ctx, batch))
                batch = []
            batch.append(row)
        if batch:
            out.extend(_forward_logprobs(ctx, batch))
        return out

    def decode(self, rows: Sequence[DecodeRow]) -> list[GenerateResult]:
        """Generate continuing raw token ids, with the hf backend's decode loop.

        Raises:
            BackendError: the backend has no loaded model, or a row's steering is unknown.
        """
        from sim.backends.hf.decoding import GenerateRow, decode_batch

        ctx = self._need_ctx()
        self._check_steering([r.steering for r in rows])
        return decode_batch(
            ctx, [GenerateRow(list(r.ids), r.sampling, tuple(r.steering)) for r in rows]
        )

    def _check_steering(self, steerings: Sequence[Steering]) -> None:
        wanted = [s for s in steerings if s]
        if not wanted:
            return
        ctx = self._need_ctx()
        if ctx.steering is None:
            raise BackendError(
                f"steering {wanted[0]}: this server has no steering directions. Fix: start "
                "the server with steering directions, or send no steering."
            )
        for steering in wanted:
            ctx.steering.check(steering)

    def _need_tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise BackendError("this server's backend has no tokenizer. Fix: serve a model.")
        return self._tokenizer

    def _need_ctx(self) -> ModelContext:
        if self._ctx is None:
            raise BackendError(
                "this server's backend exposes no model for token log-probabilities. "
                "Fix: serve an hf model."
            )
        return self._ctx


def _forward_logprobs(ctx: ModelContext, rows: Sequence[LogprobRow]) -> list[list[TokenLogprob]]:
    """One padded forward pass; per-position log-probs of each row's next token."""
    import torch

    from sim.backends.hf.attention import attention_backends
    from sim.backends.hf.forward import check_logits, left_pad
    from sim.backends.hf.steering_hook import steering_applied

    ids, mask, positions = left_pad([list(r.ids) for r in rows], ctx.pad_id, ctx.device)
    with torch.inference_mode(), attention_backends(ctx.device), steering_applied(
        ctx.model, ctx.steering, [r.steering for r in rows], device=ctx.device, dtype=ctx.dtype
    ):
        logits = ctx.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False
        ).logits
    check_logits(logits)
    logp = torch.log_softmax(logits.float(), dim=-1)
    width = ids.shape[1]
    out: list[list[TokenLogprob]] = []
    for r, row in enumerate(rows):
        seq = list(row.ids)
        start = width - len(seq)
        tokens: list[TokenLogprob] = [TokenLogprob(seq[0], None)] if seq else []
        if len(seq) > 1:
            dist = logp[r, start : width - 1]
            picked = dist.gather(-1, ids[r, start + 1 :, None]).squeeze(-1).tolist()
            tops: list[tuple[tuple[int, float], ...]] = [()] * len(picked)
            if row.top > 0:
                values, index = dist.topk(min(row.top, dist.shape[-1]), dim=-1)
                tops = [
                    tuple(zip(i, v, strict=True))
                    for i, v in zip(index.tolist(), values.tolist(), strict=True)
                ]
            tokens += [
                TokenLogprob(tok, lp, top)
                for tok, lp, top in zip(seq[1:], picked, tops, strict=True)
            ]
        out.append(tokens)
    return out
