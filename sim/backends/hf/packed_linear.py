"""Linear layers with weights packed once for oneDNN, for models on a CPU.

A plain ``nn.Linear`` passes its weight to the matrix kernel in PyTorch's layout at every
call. Packing each weight once at load time, into oneDNN's own blocked layout
(``mkldnn._reorder_linear_weight``), made the same products faster on this 2-core CPU.
``bench/packed_linear.py`` measured it (SmolLM2-135M, bf16, alternating, best of three):
a 32-row prefill of ~190-token prompts 1.110x, 32-row decoding 1.057x, one-row prefill
1.089x, one-row decoding 1.118x, with the same tokens generated.

Only bf16 models are packed: there the packed kernel gives the same bits as the plain one, at
any number of rows. In float32 it was faster too (in a microbenchmark), but its sums are
ordered differently from the plain (MKL) kernel's, and a row's result would then depend on
the shape of the pass it ran in (a prompt prefilled whole or after a cached prefix).

The unpacked layers stay inside the packed ones (their weights are still the model's
parameters, so memory holds both layouts: +270 MB for SmolLM2-135M in bf16), and
:func:`unpacked` puts them back for a while, for a baseline that runs stock transformers.

Example:
    >>> pack_linears(model)   # doctest: +SKIP
    211
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["PackedLinear", "can_pack", "pack_linears", "unpacked"]


class PackedLinear(nn.Module):
    """An ``nn.Linear`` whose weight is kept in oneDNN's blocked layout (CPU only).

    Args:
        linear: the layer to pack; it is kept as ``self.linear`` and never changed.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ weight.T + bias``, as the unpacked layer computes it."""
        bias = None if self.linear.bias is None else self.linear.bias.detach()
        return torch.ops.mkldnn._linear_pointwise(x, self._packed, bias, "none", [], "")


def can_pack(model: Any) -> bool:
    """Whether ``model``'s linear layers are packed here: bf16 on a CPU oneDNN runs in bf16."""
    param = next(model.parameters(), None)
    if param is None or param.device.type != "cpu" or param.dtype != torch.bfloat16:
        return False
    native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return bool(native)


def pack_linears(model: nn.Module) -> int:
    """Replace every ``nn.Linear`` of ``model`` by a :class:`PackedLinear`; return how many.

    Nothing is changed when :func:`can_pack` says no (the count is then 0).
    """
    if not can_pack(model):
        return 0
    inside = {id(m.linear) for m in model.modules() if isinstance(m, PackedLinear)}
    found = [
        (name, module)
        for name, module in model.named_modules()
        if type(module) is nn.Linear and id(module) not in inside
    ]
    for name, module in found:
        _set(model, name, PackedLinear(module))
    return len(found)


@contextmanager
def unpacked(model: nn.Module) -> Iterator[None]:
    """Within the block, ``model`` runs its original ``nn.Linear`` layers."""
    packed = [(n, m) for n, m in model.named_modules() if isinstance(m, PackedLinear)]
    for name, module in packed:
        _set(model, name, module.linear)
    try:
        yield
    finally:
        for name, module in packed:
            _set(model, name, module)


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, module)
