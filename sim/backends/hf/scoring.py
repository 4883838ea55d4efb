"""Option log-likelihoods of one score batch, with each distinct prompt prefilled once.

A *unit* is one distinct (prompt, steering) pair with every option scored after it. The batch
prefills its units' prompts once (left-padded, shared prefixes once), scores every option's
first token from the prompt's last logits, and the rest in one continuation pass in which all
of a unit's options share the unit's row (a tree-shaped 4D attention mask keeps them apart),
so the prompt's KV cache is never copied per option.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sim.backends.hf.attention import attention_backends
from sim.backends.hf.forward import ModelContext, NonFiniteLogitsError, check_logits
from sim.backends.hf.prefix import prefill_shared
from sim.backends.hf.steering_hook import RowSteering, Steering, steering_applied

__all__ = ["ScoreUnit", "score_batch"]


@dataclass(slots=True)
class ScoreUnit:
    """A distinct prompt (with its steering) and the option token lists scored after it."""

    prompt_ids: list[int]
    steering: Steering
    options: list[list[int]]

    @property
    def width(self) -> int:
        """Tokens the unit's row carries after its prompt (every option but its last token)."""
        return sum(max(len(o) - 1, 0) for o in self.options)


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
    with torch.inference_mode(), attention_backends(ctx.device), steering_applied(
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
    unit_index = torch.tensor(row_unit, device=ctx.device, dtype=torch.long)
    first_tok = torch.tensor([opt[0] if opt else 0 for opt in options], device=ctx.device,
                             dtype=torch.long)
    has_tokens = torch.tensor([bool(opt) for opt in options], device=ctx.device)
    first = first_lp[unit_index].gather(-1, first_tok[:, None]).squeeze(-1) if options \
        else torch.zeros(0, device=ctx.device)
    totals = torch.where(has_tokens, first, torch.zeros_like(first))
    if any(len(opt) > 1 for opt in options):
        totals = totals + _continuation(ctx, units, pre.cache, pre.mask, pre.last_pos)
    return totals, pre.cached


def _continuation(
    ctx: ModelContext,
    units: Sequence[ScoreUnit],
    cache: object,
    prompt_mask: torch.Tensor,
    last_pos: torch.Tensor,
) -> torch.Tensor:
    """Sum of log-probs of option tokens 2..n, each given the prompt and earlier option tokens.

    All options of a unit ride in the unit's own row, one after another ("tree" layout): a
    4D attention mask lets each option token see the prompt and the earlier tokens of its own
    option only, and position ids restart after the prompt for every option. So the prompt's
    KV cache is never copied per option, and a unit costs one row however many options it has.
    """
    tokens: list[list[int]] = []
    targets: list[list[int]] = []
    offsets: list[list[int]] = []
    segments: list[list[int]] = []
    owner: list[list[int]] = []  # flat option index of each target
    flat = 0
    for unit in units:
        row_t, row_y, row_o, row_s, row_w = [], [], [], [], []
        for j, opt in enumerate(unit.options):
            for k in range(len(opt) - 1):
                row_t.append(opt[k])
                row_y.append(opt[k + 1])
                row_o.append(k + 1)
                row_s.append(j)
                row_w.append(flat + j)
        flat += len(unit.options)
        tokens.append(row_t)
        targets.append(row_y)
        offsets.append(row_o)
        segments.append(row_s)
        owner.append(row_w)
    n_rows, width = len(units), max(len(t) for t in tokens)
    ids = torch.full((n_rows, width), ctx.pad_id, dtype=torch.long)
    pos = torch.ones((n_rows, width), dtype=torch.long)
    seg = torch.full((n_rows, width), -1, dtype=torch.long)
    tgt = torch.zeros((n_rows, width), dtype=torch.long)
    own = torch.full((n_rows, width), flat, dtype=torch.long)  # padding lands in a spare slot
    for r in range(n_rows):
        n = len(tokens[r])
        if n:
            ids[r, :n] = torch.tensor(tokens[r])
            pos[r, :n] = torch.tensor(offsets[r])
            seg[r, :n] = torch.tensor(segments[r])
            tgt[r, :n] = torch.tensor(targets[r])
            own[r, :n] = torch.tensor(owner[r])
    ids, pos, seg, tgt, own = (t.to(ctx.device) for t in (ids, pos, seg, tgt, own))
    real = seg >= 0
    causal = torch.ones((width, width), dtype=torch.bool, device=ctx.device).tril()
    same = (seg[:, :, None] == seg[:, None, :]) & real[:, :, None] & real[:, None, :] & causal
    cached = prompt_mask.bool()[:, None, :].expand(n_rows, width, prompt_mask.shape[1])
    mask = torch.cat([cached, same], dim=2)[:, None, :, :]
    out = ctx.model(
        input_ids=ids,
        attention_mask=_as_model_mask(ctx, mask),
        position_ids=torch.where(real, last_pos + pos, last_pos + 1),
        past_key_values=cache,
        use_cache=True,
    )
    logp = torch.log_softmax(out.logits.float(), dim=-1)
    picked = logp.gather(-1, tgt[:, :, None]).squeeze(-1)
    picked = torch.where(real, picked, torch.zeros_like(picked))
    sums = torch.zeros(flat + 1, dtype=torch.float32, device=ctx.device)
    sums.index_add_(0, own.flatten(), picked.flatten())
    return sums[:flat]


def _as_model_mask(ctx: ModelContext, allowed: torch.Tensor) -> torch.Tensor:
    """A boolean 4D mask (True = attend) in the form the model's attention expects."""
    if getattr(ctx.model.config, "_attn_implementation", "sdpa") == "eager":
        zero = torch.zeros((), dtype=ctx.dtype, device=allowed.device)
        floor = torch.tensor(torch.finfo(ctx.dtype).min, dtype=ctx.dtype, device=allowed.device)
        return torch.where(allowed, zero, floor)
    return allowed
