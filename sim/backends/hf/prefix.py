"""Shared-prefix prefill: a prompt prefix common to several rows is run through the model once.

Rows of a batch (same steering, token ids sharing at least :data:`MIN_SHARED` leading tokens)
form a *group*. The batch runs in two passes:

1. the groups' prefixes, left-padded, one row per group;
2. every row's suffix (the rest of its prompt), left-padded, against the prefix KV cache
   expanded to one row per batch row.

A row's attention mask is ``[prefix pads | prefix | suffix pads | suffix]``: the holes are
masked keys, and position ids count real tokens only, so each row sees exactly what a plain
prefill of its whole prompt would see. Rows in no group take a zero-length prefix (their
prefix part of the mask is all holes). Each row's steering vector applies to its prefix (the
group's rows share one steering) and to its suffix. When sharing would not save padded tokens,
the batch is prefilled plainly.

A row may instead take its prefix from the step's :class:`~sim.backends.hf.prefix_store.PrefixStore`
(a prompt prefilled in an earlier batch of the step that this one extends): its stored keys and
values go into the row's prefix part directly. Every prefilled prompt is then added to the
store.

Example:
    >>> group_rows([[1, 2, 3, 4, 5], [1, 2, 3, 4, 6], [9, 9]], [(), (), ()], min_shared=3)
    [(4, [0, 1]), (0, [2])]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sim.backends.hf.forward import ModelContext, left_pad
from sim.backends.hf.prefix_store import BLOCK, PrefixStore, StoredPrompt
from sim.backends.hf.steering_hook import RowSteering, Steering

__all__ = [
    "BUCKET_SPREAD", "MIN_SHARED", "Prefilled", "group_rows", "prefill_shared", "prefix_order",
]

MIN_SHARED = 16
"""Fewest shared leading tokens that make rows a group."""

BUCKET_SPREAD = 1.5
"""Longest-to-shortest prompt ratio beyond which a prefix group is split for batching."""


@dataclass(slots=True)
class Prefilled:
    """The state after prefilling a batch.

    Attributes:
        logits: ``[rows, vocab]`` logits at each row's last prompt token.
        cache: the KV cache, one row per batch row.
        mask: ``[rows, width]`` attention mask over the cache (0 on pads and holes).
        last_pos: ``[rows, 1]`` position id of each row's last prompt token.
        cached: per row, prompt tokens served from another row's prefix (not recomputed).
    """

    logits: torch.Tensor
    cache: Any
    mask: torch.Tensor
    last_pos: torch.Tensor
    cached: list[int]


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def group_rows(
    prompts: Sequence[Sequence[int]],
    steerings: Sequence[Steering],
    *,
    min_shared: int | None = None,
) -> list[tuple[int, list[int]]]:
    """Group rows that share a prompt prefix (and steering).

    Rows are sorted by (steering, token ids), so rows with common prefixes are adjacent; a row
    joins the current group when it shares at least ``min_shared`` tokens with it and the
    group's saving ``(members - 1) * prefix`` does not drop. A prefix always leaves each row
    at least one token of its own (its last logits come from the suffix pass).

    Returns:
        ``(prefix length, row indices)`` per group, singletons with prefix length 0, in
        sorted order.
    """
    min_shared = MIN_SHARED if min_shared is None else min_shared
    order = sorted(range(len(prompts)), key=lambda i: (tuple(steerings[i]), list(prompts[i])))
    groups: list[tuple[int, list[int]]] = []
    members: list[int] = []
    plen = 0
    for i in order:
        if members:
            head = prompts[members[0]]
            shared = min(_common(head, prompts[i]), plen, len(prompts[i]) - 1)
            same = tuple(steerings[i]) == tuple(steerings[members[0]])
            if same and shared >= min_shared and len(members) * shared >= (len(members) - 1) * plen:
                members.append(i)
                plen = shared
                continue
            groups.append((plen if len(members) > 1 else 0, members))
        members, plen = [i], len(prompts[i]) - 1
    if members:
        groups.append((plen if len(members) > 1 else 0, members))
    return groups


def prefix_order(
    prompts: Sequence[Sequence[int]],
    steerings: Sequence[Steering],
    *,
    min_shared: int | None = None,
) -> list[int]:
    """Return a row order for micro-batching: by length, rows sharing a prefix kept adjacent.

    Groups (see :func:`group_rows`) are split into length buckets (a row more than
    :data:`BUCKET_SPREAD` times as long as its bucket's shortest row starts a new one), so a
    short prompt sharing a prefix with a long one is never padded to the long one's length.
    Buckets are ordered by their longest prompt, rows within a bucket by length. Cutting this
    order into batches keeps both length buckets and prefix groups.
    """
    keyed = []
    for _, rows in group_rows(prompts, steerings, min_shared=min_shared):
        bucket: list[int] = []
        for i in sorted(rows, key=lambda i: len(prompts[i])):
            if bucket and len(prompts[i]) > BUCKET_SPREAD * len(prompts[bucket[0]]):
                keyed.append((len(prompts[bucket[-1]]), bucket))
                bucket = []
            bucket.append(i)
        keyed.append((len(prompts[bucket[-1]]), bucket))
    keyed.sort(key=lambda item: item[0])
    return [i for _, rows in keyed for i in rows]


@dataclass(slots=True)
class _Prefixes:
    """Where each row's prefix comes from.

    Attributes:
        groups: ``(prefix length, rows)`` of rows sharing a prefix computed once here.
        hits: per row reusing a stored prompt, ``(prefix length, that prompt)``.
        plen: every row's prefix length (0: the whole prompt is its suffix).
    """

    groups: list[tuple[int, list[int]]]
    hits: dict[int, tuple[int, StoredPrompt]]
    plen: list[int]

    @property
    def cached(self) -> list[int]:
        """Per row, prefix tokens not computed for it (a group's first row computes them)."""
        out = [0] * len(self.plen)
        for p, rows in self.groups:
            for r in rows[1:]:
                out[r] = p
        for r, (length, _) in self.hits.items():
            out[r] = length
        return out


def prefill_shared(
    ctx: ModelContext,
    prompts: Sequence[Sequence[int]],
    steerings: Sequence[Steering],
    steer: RowSteering | None,
    *,
    min_shared: int | None = None,
) -> Prefilled:
    """Prefill ``prompts`` (one row each, in order), sharing common and stored prefixes.

    Args:
        ctx: the loaded model (its ``prefix_store``, if any, is read and filled).
        prompts: token ids per row; each non-empty.
        steerings: each row's steering (rows only share a prefix with equal steering).
        steer: the batch's live steering vectors (one per row), or ``None``.
        min_shared: fewest shared tokens that make a group (:data:`MIN_SHARED` by default).
    """
    plan = _plan(ctx, prompts, steerings, MIN_SHARED if min_shared is None else min_shared)
    if plan is not None:
        out = _two_pass(ctx, prompts, plan, steer)
    else:
        ids, mask, positions = left_pad(prompts, ctx.pad_id, ctx.device)
        res = ctx.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                        use_cache=True, logits_to_keep=1)
        out = Prefilled(res.logits[:, -1, :], res.past_key_values, mask, positions[:, -1:],
                        [0] * len(prompts))
    if ctx.prefix_store is not None:
        _keep(ctx.prefix_store, prompts, steerings, out)
    return out


def _plan(
    ctx: ModelContext,
    prompts: Sequence[Sequence[int]],
    steerings: Sequence[Steering],
    min_shared: int,
) -> _Prefixes | None:
    """Stored prefixes first, then groups among the other rows; ``None``: prefill plainly.

    Groups alone are used only when they save padded tokens.
    """
    n, store = len(prompts), ctx.prefix_store
    hits: dict[int, tuple[int, StoredPrompt]] = {}
    for r, (prompt, steering) in enumerate(zip(prompts, steerings, strict=True)):
        length, stored = store.match(prompt, steering) if store is not None else (0, None)
        if stored is not None and length >= min_shared:
            hits[r] = (length, stored)
    rest = [r for r in range(n) if r not in hits]
    groups = [(p, [rest[i] for i in rows])
              for p, rows in group_rows([prompts[r] for r in rest], [steerings[r] for r in rest],
                                        min_shared=min_shared) if p > 0]
    plen = [0] * n
    for p, rows in groups:
        for r in rows:
            plen[r] = p
    for r, (length, _) in hits.items():
        plen[r] = length
    if hits:
        return _Prefixes(groups, hits, plen)
    if not groups:
        return None
    s_width = max(len(prompts[r]) - plen[r] for r in range(n))
    shared_cost = len(groups) * max(p for p, _ in groups) + n * s_width
    return _Prefixes(groups, hits, plen) if shared_cost < n * max(map(len, prompts)) else None


def _two_pass(
    ctx: ModelContext, prompts: Sequence[Sequence[int]], plan: _Prefixes,
    steer: RowSteering | None,
) -> Prefilled:
    """Prefixes (groups' computed once, stored ones copied in), then every row's suffix."""
    from transformers import DynamicCache

    layers, prefix_mask = _prefix_cache(ctx, prompts, plan, steer)
    cache = DynamicCache(config=ctx.model.config)
    for i, (keys, values) in enumerate(layers):
        cache.update(keys, values, i)
    plen = plan.plen
    s_ids, s_mask, s_pos = left_pad([prompts[r][plen[r]:] for r in range(len(prompts))],
                                    ctx.pad_id, ctx.device)
    offset = torch.tensor(plen, device=ctx.device)[:, None]
    s_pos = torch.where(s_mask.bool(), s_pos + offset, torch.ones_like(s_pos))
    mask = torch.cat([prefix_mask, s_mask], dim=1)
    out = ctx.model(input_ids=s_ids, attention_mask=mask, position_ids=s_pos,
                    past_key_values=cache, use_cache=True, logits_to_keep=1)
    return Prefilled(out.logits[:, -1, :], out.past_key_values, mask, s_pos[:, -1:],
                     plan.cached)


def _prefix_cache(
    ctx: ModelContext, prompts: Sequence[Sequence[int]], plan: _Prefixes,
    steer: RowSteering | None,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """Per-layer ``[rows, kv_heads, width, dim]`` prefix KV, right-aligned, and its mask."""
    groups, hits = plan.groups, plan.hits
    n = len(prompts)
    computed: list[tuple[torch.Tensor, torch.Tensor]] = []
    g_mask = torch.zeros((0, 0), dtype=torch.long, device=ctx.device)
    if groups:
        heads = [rows[0] for _, rows in groups]
        p_ids, g_mask, p_pos = left_pad([prompts[h][: plan.plen[h]] for h in heads],
                                        ctx.pad_id, ctx.device)
        full = steer.vectors if steer is not None else None
        if steer is not None and full is not None:
            steer.vectors = full.index_select(0, torch.tensor(heads, device=full.device))
        try:
            out = ctx.model(input_ids=p_ids, attention_mask=g_mask, position_ids=p_pos,
                            use_cache=True, logits_to_keep=1)
        finally:
            if steer is not None and full is not None:
                steer.vectors = full
        computed = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
    stored_width = max((length for length, _ in hits.values()), default=0)
    width = max(g_mask.shape[1], stored_width)
    mask = torch.zeros((n, width), dtype=torch.long, device=ctx.device)
    members = [(g, r) for g, (_, rows) in enumerate(groups) for r in rows]
    if members:
        at = torch.tensor([r for _, r in members], device=ctx.device)
        of = torch.tensor([g for g, _ in members], device=ctx.device)
        mask[at, width - g_mask.shape[1]:] = g_mask[of]
    for r, (length, _) in hits.items():
        mask[r, width - length:] = 1
    # one [kv_heads, tokens, dim] pair per layer, to shape the zeroed prefix KV after
    like = ([(k[0], v[0]) for k, v in computed] if computed
            else next(iter(hits.values()))[1].kv)
    layers = []
    for i, (k, v) in enumerate(like):
        keys = k.new_zeros((n, k.shape[0], width, k.shape[2]))
        values = v.new_zeros((n, v.shape[0], width, v.shape[2]))
        if members:
            keys[at, :, width - g_mask.shape[1]:] = computed[i][0][of]
            values[at, :, width - g_mask.shape[1]:] = computed[i][1][of]
        for r, (length, entry) in hits.items():
            keys[r, :, width - length:] = entry.kv[i][0][:, :length]
            values[r, :, width - length:] = entry.kv[i][1][:, :length]
        layers.append((keys, values))
    return layers, mask


def _keep(store: PrefixStore, prompts: Sequence[Sequence[int]], steerings: Sequence[Steering],
          pre: Prefilled) -> None:
    """Add the rows' prompt KV (the cache's unmasked positions) to the store.

    Rows whose last logits hold a NaN are not kept (their KV may be broken too), nor rows the
    batch's later rows would evict at once (a batch larger than the store).

    The kept rows are views of one tensor per layer (one gather for the batch, not one per
    row): the store counts each row's own tokens, while the memory held is the batch's padded
    width (at most 1.5x its real tokens with length bucketing) until its last row is evicted.
    """
    layers = pre.cache.layers
    broken = torch.isnan(pre.logits).any(dim=-1).tolist()
    kept, room = [], store.max_tokens
    for r in reversed(range(len(prompts))):
        if len(prompts[r]) < BLOCK or broken[r]:
            continue
        room -= len(prompts[r])
        if room < 0:
            break
        kept.append(r)
    if not kept:
        return
    kept.reverse()
    # one index_select per tensor for all kept rows: each row's real positions, in order, as
    # rows of the [batch * heads * width, dim] view of the cache
    rows = torch.tensor(kept, device=pre.mask.device)
    holes = (pre.mask.index_select(0, rows) == 0).to(torch.uint8)
    longest = max(len(prompts[r]) for r in kept)
    where = torch.sort(holes, dim=1, stable=True).indices[:, :longest]
    _, heads, width, dim = layers[0].keys.shape
    starts = (rows[:, None] * heads + torch.arange(heads, device=rows.device)) * width
    flat = (starts[:, :, None] + where[:, None, :]).reshape(-1)
    shape = (len(kept), heads, longest, dim)
    gathered = [(layer.keys.reshape(-1, dim).index_select(0, flat).view(shape),
                 layer.values.reshape(-1, dim).index_select(0, flat).view(shape))
                for layer in layers]
    for j, r in enumerate(kept):
        n = len(prompts[r])
        store.add(prompts[r], steerings[r], [(k[j, :, :n], v[j, :, :n]) for k, v in gathered])
