"""KV cache layers with room to grow, so a decode step writes its token in place.

transformers' ``DynamicLayer`` concatenates each new token onto the whole cache, copying all
of it at every decode step; for 32 rows over 300 cached tokens on this CPU that copy took
about a third of the step once attention was fast. :class:`ReservedLayer` keeps keys and
values in buffers with spare room along the sequence axis and exposes views of the filled
part, so appending is a write of the new token only. :func:`reserve` swaps a prefilled
cache's plain layers for reserved ones sized for the tokens still to come.

:func:`compact` first squeezes out the holes a shared-prefix prefill leaves (``[prefix pads |
prefix | suffix pads | suffix]`` can be much wider than the longest prompt when rows take
prefixes of different lengths): every decode step reads the whole width, so each row's real
positions are moved to the right, in order, as a plain left-padded prefill would lay them out.
Positions are already encoded in the keys (rotary), so moving columns changes nothing else.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

__all__ = ["ReservedLayer", "compact", "reserve"]


class ReservedLayer(DynamicLayer):  # type: ignore[misc]
    """A dynamic cache layer whose keys and values have spare capacity.

    Args:
        keys: ``[batch, kv_heads, seq, head_dim]`` keys already cached.
        values: the matching values.
        room: extra positions to allocate beyond ``seq`` (it grows by doubling if exceeded).
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int) -> None:
        super().__init__()
        self._length = 0
        self._fill(keys, values, keys.shape[-2] + max(room, 0))

    def _fill(self, keys: torch.Tensor, values: torch.Tensor, capacity: int) -> None:
        batch, heads, length, dim = keys.shape
        self._keys = keys.new_empty((batch, heads, capacity, dim))
        self._values = values.new_empty((batch, values.shape[1], capacity, values.shape[-1]))
        self._keys[:, :, :length].copy_(keys)
        self._values[:, :, :length].copy_(values)
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self._length = length
        self._expose()

    def _expose(self) -> None:
        self.keys = self._keys[:, :, : self._length]
        self.values = self._values[:, :, : self._length]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``key_states``/``value_states`` in place; return the filled keys and values."""
        new = key_states.shape[-2]
        if self._length + new > self._keys.shape[-2]:
            self._fill(self.keys, self.values, max(2 * self._keys.shape[-2], self._length + new))
        self._keys[:, :, self._length : self._length + new].copy_(key_states)
        self._values[:, :, self._length : self._length + new].copy_(value_states)
        self._length += new
        self._expose()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the rows ``indices`` (their reserved room too)."""
        self._keys = self._keys.index_select(0, indices)
        self._values = self._values.index_select(0, indices)
        self._expose()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Reorder rows (beam search)."""
        self.batch_select_indices(beam_idx.to(self._keys.device))

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Repeat every row ``repeats`` times."""
        self._keys = self._keys.repeat_interleave(repeats, dim=0)
        self._values = self._values.repeat_interleave(repeats, dim=0)
        self._expose()

    def crop(self, tokens_to_remove: int) -> None:
        """Drop the last ``-tokens_to_remove`` positions (transformers' convention)."""
        if tokens_to_remove > 0:
            raise ValueError("crop takes a negative count of positions to remove")
        self._length = max(self._length + tokens_to_remove, 0)
        self._expose()

    def reset(self) -> None:
        """Empty the layer, keeping its buffers."""
        self._length = 0
        self._expose()


def compact(cache: Any, mask: torch.Tensor) -> torch.Tensor:
    """Right-align each row's unmasked positions in ``cache``; return the matching mask.

    Args:
        cache: a prefilled cache whose plain dynamic layers hold ``mask.shape[1]`` positions.
        mask: ``[rows, width]``, 1 on real tokens.

    Returns:
        The new ``[rows, max real tokens]`` mask (left padding only). The cache is changed in
        place; when there are no holes beyond left padding nothing is copied.
    """
    width = int(mask.sum(dim=1).max())
    if width == mask.shape[1] or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return mask
    order = torch.argsort(mask, dim=1, stable=True)[:, -width:]  # holes first, then real
    for layer in cache.layers:
        index = order[:, None, :, None]
        layer.keys = layer.keys.gather(2, index.expand(-1, layer.keys.shape[1], -1,
                                                       layer.keys.shape[3]))
        layer.values = layer.values.gather(2, index.expand(-1, layer.values.shape[1], -1,
                                                           layer.values.shape[3]))
    return mask.gather(1, order)


def reserve(cache: Any, room: int) -> None:
    """Give every plain dynamic layer of ``cache`` room for ``room`` more positions.

    Layers of other kinds (sliding windows, static, ...) are left as they are.
    """
    for i, layer in enumerate(cache.layers):
        if type(layer) is DynamicLayer and layer.is_initialized and layer.keys.numel():
            cache.layers[i] = ReservedLayer(layer.keys, layer.values, room)
