"""A decode-step attention kernel for CPUs, registered with transformers as ``traitlab``.

On CPU, ``scaled_dot_product_attention`` with one query token and a padding mask goes to
the flash kernel, which is built for long query blocks: on this 2-core CPU it took 6.9 ms per
layer for 32 rows over 300 cached tokens, 60% of a decode step. A decode step is two small
batched products per layer, so this kernel does exactly that (also for the few query tokens,
under an explicit mask, of a scoring pass over option tokens): the query heads of each
key/value group are stacked (grouped-query attention without copying keys), scores are
taken in the model's dtype, softmaxed in float32, and applied to the values. It is about
3x faster per 32-row decode step on this CPU (``bench/throughput.py`` shows the effect end
to end). Prefill (many query tokens, or a causal pass without a mask) and every non-CPU device
use transformers' own SDPA path unchanged.

On CUDA, :func:`attention_backends` keeps SDPA off its cuDNN kernel while a batch runs: cuDNN
builds an execution plan for every new shape, and a decode step's key length is new at every
step (on an H100 that cost 2.5 ms of CPU per layer call, 75 ms of a 107 ms step).

Example:
    >>> use_decode_attention(model)   # doctest: +SKIP
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

__all__ = ["ATTENTION_NAME", "attention_backends", "decode_attention", "use_decode_attention"]

ATTENTION_NAME = "traitlab"
"""The name the kernel is registered under (``model.config._attn_implementation``)."""

MAX_QUERY = 16
"""Most query tokens (with an explicit mask) the kernel takes; longer passes go to SDPA."""


def decode_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention for a decode step (or a few masked query tokens) on CPU; else SDPA.

    Args:
        module: the attention module (unused beyond the SDPA fallback).
        query: ``[batch, heads, q_len, head_dim]``.
        key: ``[batch, kv_heads, kv_len, head_dim]``.
        value: ``[batch, kv_heads, kv_len, head_dim]``.
        attention_mask: boolean (True attends) or additive float mask broadcastable to
            ``[batch, heads, q_len, kv_len]``, or ``None``.
        dropout: must be 0 on the fast path (inference only).
        scaling: the score scale; ``head_dim ** -0.5`` when ``None``.
        **kwargs: what transformers passes its attention functions (``softcap``, ``s_aux``
            or ``position_bias`` send the call to SDPA).

    Returns:
        ``([batch, q_len, heads, head_dim], None)``, as transformers' attention functions do.
    """
    q_len = query.shape[2]
    special = any(kwargs.get(k) is not None for k in ("softcap", "s_aux", "position_bias"))
    few = q_len == 1 or (q_len <= MAX_QUERY and attention_mask is not None)
    if not few or query.device.type != "cpu" or dropout or special:
        return sdpa_attention_forward(  # type: ignore[no-any-return]
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    batch, heads, _, dim = query.shape
    kv_heads, kv_len = key.shape[1], key.shape[2]
    group = heads // kv_heads
    grouped = query.reshape(batch * kv_heads, group * q_len, dim)
    # bf16 bmm on CPU is slow on keys whose batch stride is not rows x width (a cache view
    # with room to grow); one contiguous copy of the keys is cheaper than that.
    keys = key.reshape(batch * kv_heads, kv_len, dim).contiguous()
    scores = torch.bmm(grouped, keys.transpose(1, 2)).float()
    scores.mul_(dim**-0.5 if scaling is None else scaling)
    scores = scores.view(batch, kv_heads, group, q_len, kv_len)
    if attention_mask is not None:
        mask = _grouped_mask(attention_mask, kv_heads)
        # a finite floor: a query that sees no key (a pad) gets finite garbage, as in SDPA,
        # never NaN that would reach real tokens through the next layer's values
        floor = torch.finfo(scores.dtype).min
        if mask.dtype == torch.bool:
            scores.masked_fill_(~mask, floor)
        else:
            scores.add_(mask).clamp_(min=floor)
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    out = torch.bmm(probs.view(batch * kv_heads, group * q_len, kv_len),
                    value.reshape(batch * kv_heads, kv_len, value.shape[-1]))
    return out.view(batch, heads, q_len, -1).transpose(1, 2), None


def _grouped_mask(mask: torch.Tensor, kv_heads: int) -> torch.Tensor:
    """A ``[batch, 1 | heads, q_len, kv_len]`` mask as ``[batch, kv_heads | 1, group | 1, ...]``."""
    if mask.dim() != 4:
        return mask
    if mask.shape[1] > 1:
        return mask.reshape(mask.shape[0], kv_heads, -1, mask.shape[2], mask.shape[3])
    return mask[:, :, None]


def use_decode_attention(model: Any) -> bool:
    """Switch ``model`` from SDPA to :func:`decode_attention`; return whether it switched.

    Only models on SDPA whose parameters are on the CPU switch; others are left as they are.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    if next(model.parameters()).device.type != "cpu":
        return False
    AttentionInterface.register(ATTENTION_NAME, decode_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
    model.set_attn_implementation(ATTENTION_NAME)
    return True


def attention_backends(device: torch.device) -> AbstractContextManager[Any]:
    """The SDPA kernels a batch on ``device`` may use: on CUDA all but cuDNN's, else as is."""
    if device.type != "cuda":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(
        [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    )
