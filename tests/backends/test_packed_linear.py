"""Linear layers packed for oneDNN: same bits as the plain layers, and only where they apply."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from sim.backends.hf.forward import left_pad
from sim.backends.hf.packed_linear import PackedLinear, can_pack, pack_linears, unpacked

pytestmark = pytest.mark.skipif(
    not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
    reason="this CPU has no native bf16 oneDNN kernels",
)


def load(path: Path, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()


def logits(model, prompts: list[list[int]]) -> torch.Tensor:
    ids, mask, positions = left_pad(prompts, 0, torch.device("cpu"))
    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=mask, position_ids=positions).logits


PROMPTS = [[5, 9, 14, 3, 22, 7], [8, 2], [30, 31, 4, 11]]


def test_packed_model_gives_the_plain_bits_batched_and_alone(tiny_model_path: Path) -> None:
    model = load(tiny_model_path, torch.bfloat16)
    linears = sum(type(m) is nn.Linear for m in model.modules())
    plain, plain_alone = logits(model, PROMPTS), logits(model, PROMPTS[1:2])

    assert pack_linears(model) == linears > 0
    inner = {id(m.linear) for m in model.modules() if isinstance(m, PackedLinear)}
    assert all(id(m) in inner for m in model.modules() if type(m) is nn.Linear)
    assert torch.equal(logits(model, PROMPTS), plain)
    assert torch.equal(logits(model, PROMPTS[1:2]), plain_alone)


def test_a_packed_layer_computes_its_linear_with_bias() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(24, 40, bias=True).to(torch.bfloat16)
    x = torch.randn(3, 5, 24, dtype=torch.bfloat16)
    assert torch.equal(PackedLinear(linear)(x), linear(x))


def test_unpacked_restores_the_plain_layers_for_a_while(tiny_model_path: Path) -> None:
    model = load(tiny_model_path, torch.bfloat16)
    pack_linears(model)
    packed = [m for m in model.modules() if isinstance(m, PackedLinear)]
    with unpacked(model):
        assert not any(isinstance(m, PackedLinear) for m in model.modules())
        assert sum(type(m) is nn.Linear for m in model.modules()) == len(packed)
    assert [m for m in model.modules() if isinstance(m, PackedLinear)] == packed
    assert pack_linears(model) == 0  # already packed: nothing is packed twice


def test_float32_models_are_left_as_they_are(tiny_model_path: Path) -> None:
    model = load(tiny_model_path, torch.float32)
    assert not can_pack(model)
    assert pack_linears(model) == 0
    assert not any(isinstance(m, PackedLinear) for m in model.modules())


def test_a_bf16_backend_runs_packed_layers(tiny_model_path: Path) -> None:
    from sim.backends.hf.backend import HFBackend

    backend = HFBackend(tiny_model_path, dtype="bfloat16", threads=1)
    assert any(isinstance(m, PackedLinear) for m in backend.model.modules())
