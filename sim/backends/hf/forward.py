"""Shared pieces of the transformers backend's forward passes: context, padding, checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sim.backends.hf.prefix_store import PrefixStore
from sim.backends.hf.steering_hook import SteeringSet

__all__ = ["ModelContext", "NonFiniteLogitsError", "check_logits", "left_pad"]


class NonFiniteLogitsError(RuntimeError):
    """A forward pass produced NaN logits (the batch is retried in smaller pieces)."""


@dataclass(slots=True)
class ModelContext:
    """Everything a batch runner needs from the loaded backend.

    Attributes:
        model: the causal LM, in eval mode, on ``device``.
        tokenizer: its tokenizer.
        device: where tensors go.
        dtype: the model's parameter dtype (steering vectors are cast to it).
        pad_id: token id used for padding (never attended to).
        stop_ids: token ids that end a turn (eos, ``<|im_end|>``).
        steering: the configured steering directions, if any.
        prefix_store: prompt KV kept between the batches of a step, if enabled.
    """

    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    pad_id: int
    stop_ids: frozenset[int]
    steering: SteeringSet | None = None
    prefix_store: PrefixStore | None = None


def left_pad(
    sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad token id lists.

    Returns:
        ``input_ids``, ``attention_mask`` (1 on real tokens) and ``position_ids`` (0 at each
        row's first real token; pads get 1, as in transformers), all ``[rows, max_len]``.
    """
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    positions = (mask.cumsum(dim=-1) - 1).masked_fill(mask == 0, 1)
    return ids.to(device), mask.to(device), positions.to(device)


def check_logits(logits: torch.Tensor) -> None:
    """Raise :class:`NonFiniteLogitsError` if ``logits`` holds a NaN."""
    if bool(torch.isnan(logits).any()):
        raise NonFiniteLogitsError("the model produced NaN logits")
