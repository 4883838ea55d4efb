"""Option log-likelihoods of one score batch, with each distinct prompt prefilled once.

A *unit* is one distinct (prompt, steering) pair with every option row that follows it. The
batch prefills its units' prompts once (left-padded), expands the KV cache to one row per
option, and runs the option tokens (right-padded) against the cached prompts. The first option
token is scored from the prompt's last logits, the rest from the continuation pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sim.backends.forward import ModelContext, NonFiniteLogitsError, check_logits
from sim.backends.prefix import prefill_shared
from sim.backends.steering_hook import RowSteering, Steering, steering_applied

__all__ = ["ScoreUnit", "score_batch"]


@dataclass(slots=True)
class ScoreUnit:
    """A distinct prompt (with its steering) and the option token lists scored after it."""

    prompt_ids: list[int]
    steering: Steering
    options: list[list[int]]

    @property
    def width(self) -> int:
        """Longest option, in tokens."""
        return max((len(o) for o in self.options), default=0)


def score_batch(
    ctx: ModelContext, units: Sequence[ScoreUnit]
) -> list[tuple[list[float], int]]:
    """Return the log-likelihood of every option of every unit, in order.

    Each unit's entry is ``(option log-likelihoods, prompt tokens served from a prefix
    prefilled for another unit)``.

    Raises:
        NonFiniteLogitsError: an option's log-likelihood is NaN.
        RuntimeError: the forward pass failed (out of memory, ...).
    """
    with torch.inference_mode(), steering_applied(
        ctx.model,
        ctx.steering,
        [u.steering for u in units],
        device=ctx.device,
        dtype=ctx.dtype,
    ) as steer:
        totals, cached = _score(ctx, units, steer)
    flat = totals.tolist()
    if any(value != value for value in flat):
        raise NonFiniteLogitsError("an option log-likelihood is NaN")
    out: list[tuple[list[float], int]] = []
    start = 0
    for unit, saved in zip(units, cached, strict=True):
        out.append((flat[start : start + len(unit.options)], saved))
        start += len(unit.options)
    return out


def _score(
    ctx: ModelContext, units: Sequence[ScoreUnit], steer: RowSteering | None
) -> tuple[torch.Tensor, list[int]]:
    pre = prefill_shared(ctx, [u.prompt_ids for u in units], [u.steering for u in units], steer)
    check_logits(pre.logits)
    first_lp = torch.log_softmax(pre.logits.float(), dim=-1)
    row_unit = [u for u, unit in enumerate(units) for _ in unit.options]
    options = [opt for unit in units for opt in unit.options]
    unit_index = torch.tensor(row_unit, device=ctx.device)
    opt_ids, opt_mask = _right_pad(options, ctx.pad_id, ctx.device)
    lengths = opt_mask.sum(dim=1)
    totals = torch.zeros(len(options), dtype=torch.float32, device=ctx.device)
    has_tokens = lengths > 0
    first_tok = opt_ids[:, 0] if opt_ids.shape[1] else torch.zeros_like(lengths)
    first = first_lp[unit_index].gather(-1, first_tok[:, None]).squeeze(-1)
    totals = totals + torch.where(has_tokens, first, torch.zeros_like(first))
    if opt_ids.shape[1] > 1:
        cache = pre.cache
        cache.batch_select_indices(unit_index)
        if steer is not None:
            steer.select(unit_index)
        totals = totals + _continuation(ctx, cache, pre.mask[unit_index],
                                        pre.last_pos[unit_index], opt_ids, opt_mask)
    return totals, pre.cached


def _continuation(
    ctx: ModelContext,
    cache: object,
    prompt_mask: torch.Tensor,
    last_pos: torch.Tensor,
    opt_ids: torch.Tensor,
    opt_mask: torch.Tensor,
) -> torch.Tensor:
    """Sum of log-probs of option tokens 2..n, each given the prompt and earlier option tokens."""
    inputs = opt_ids[:, :-1]
    steps = inputs.shape[1]
    offsets = torch.arange(1, steps + 1, device=ctx.device)[None, :]
    out = ctx.model(
        input_ids=inputs,
        attention_mask=torch.cat([prompt_mask, opt_mask[:, :-1]], dim=1),
        position_ids=last_pos + offsets,
        past_key_values=cache,
        use_cache=True,
    )
    logp = torch.log_softmax(out.logits.float(), dim=-1)
    targets = opt_ids[:, 1:]
    picked = logp.gather(-1, targets[:, :, None]).squeeze(-1)
    return torch.where(opt_mask[:, 1:].bool(), picked, torch.zeros_like(picked)).sum(dim=1)


def _right_pad(
    sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max((len(s) for s in sequences), default=0)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, : len(seq)] = 1
    return ids.to(device), mask.to(device)
