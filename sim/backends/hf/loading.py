"""Loading a transformers model for the backend: dtype, device, weights, stop and pad ids.

:func:`load_model` returns the :class:`~sim.backends.hf.forward.ModelContext` that every batch
runner reads; :func:`prefix_store` sizes the prompt-KV store from the model's shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import BackendError

if TYPE_CHECKING:
    import torch

    from sim.backends.hf.forward import ModelContext
    from sim.backends.hf.prefix_store import PrefixStore

__all__ = ["load_model", "prefix_store", "resolve_dtype", "torch_device"]

_END_OF_TURN = "<|im_end|>"


def resolve_dtype(dtype: str, device: str) -> str:
    """Resolve ``auto`` to a concrete dtype name.

    bfloat16 on CUDA and on CPUs with native bf16 (AMX, AVX512-BF16); float32 elsewhere,
    because emulated bf16 is several times slower than fp32 on AVX2 CPUs.
    """
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        return "bfloat16"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else "float32"


def torch_device(name: str) -> torch.device:
    """The torch device called ``name`` (cpu, cuda or cuda:N), checked to exist here.

    Raises:
        BackendError: an unknown device, or CUDA where there is none.
    """
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise BackendError(f"device '{name}': {exc}. Fix: use 'cpu' or 'cuda'.") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device '{name}': CUDA is not available here. Fix: use 'cpu'.")
    if device.type not in ("cpu", "cuda"):
        raise BackendError(f"device '{name}': allowed are cpu, cuda, cuda:N. Fix: use 'cpu'.")
    return device


def load_model(path: Path, model_id: str, dtype: torch.dtype,
               device: torch.device) -> ModelContext:
    """Load the tokenizer and model at ``path``, fit the fast kernels, return the context.

    Raises:
        BackendError: transformers cannot load the folder.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sim.backends.hf.attention import use_decode_attention
    from sim.backends.hf.forward import ModelContext
    from sim.backends.hf.packed_linear import pack_linears

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise BackendError(
            f"model '{model_id}': transformers cannot load '{path}' ({exc}). Fix: pass a "
            "folder written by save_pretrained (config.json, weights, tokenizer files)."
        ) from exc
    model = model.to(device).eval()
    use_decode_attention(model)
    pack_linears(model)
    return ModelContext(
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        pad_id=_pad_id(tokenizer),
        stop_ids=_stop_ids(tokenizer, model),
    )


def prefix_store(ctx: ModelContext, mib: int) -> PrefixStore | None:
    """A prefix store of ``mib`` MiB for full-attention models (none for sliding windows)."""
    from sim.backends.hf.prefix_store import PrefixStore

    config = ctx.model.config
    if mib <= 0 or getattr(config, "sliding_window", None) is not None:
        return None
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    per_token = 2 * int(config.num_hidden_layers) * kv_heads * head_dim * ctx.dtype.itemsize
    return PrefixStore(max_tokens=mib * 2**20 // per_token)


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _stop_ids(tokenizer: Any, model: Any) -> frozenset[int]:
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    if _END_OF_TURN in tokenizer.get_vocab():
        ids.add(int(tokenizer.convert_tokens_to_ids(_END_OF_TURN)))
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(config_eos, int):
        ids.add(config_eos)
    elif isinstance(config_eos, (list, tuple)):
        ids.update(int(t) for t in config_eos)
    return frozenset(ids)
