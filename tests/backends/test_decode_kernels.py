"""The CPU decode-attention kernel and the KV cache with room: same numbers as the plain paths."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from sim.backends.hf.attention import ATTENTION_NAME, decode_attention, use_decode_attention
from sim.backends.hf.forward import left_pad
from sim.backends.hf.kv_cache import ReservedLayer, compact, reserve


class _Attn(torch.nn.Module):
    """Stands in for a decoder attention module (what the SDPA fallback reads)."""

    num_key_value_groups = 2
    is_causal = True


def reference(q, k, v, keep):
    """Textbook attention: repeat the key/value heads, mask, softmax, weight the values."""
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(2, 3) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~keep, float("-inf"))
    return (torch.softmax(scores, dim=-1) @ v).transpose(1, 2)


def tensors(rows=3, heads=4, kv_heads=2, q_len=1, kv_len=7, dim=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(rows, heads, q_len, dim, generator=gen)
    k = torch.randn(rows, kv_heads, kv_len, dim, generator=gen)
    v = torch.randn(rows, kv_heads, kv_len, dim, generator=gen)
    keep = torch.ones(rows, 1, q_len, kv_len, dtype=torch.bool)
    keep[1, ..., :3] = False  # left padding of row 1
    keep[2, ..., :1] = False
    return q, k, v, keep


@pytest.mark.parametrize(("q_len", "mask_kind"), [
    (1, "bool"), (1, "float"), (1, "per_head"), (1, "none"),
    (3, "bool"), (3, "float"), (3, "per_head"),
])
def test_decode_step_matches_reference(q_len, mask_kind):
    """One decode token, or a few option tokens under a tree-shaped mask (a scoring pass)."""
    q, k, v, keep = tensors(q_len=q_len)
    if q_len > 1:
        keep[:, :, 1, -3] = False  # option token 1 does not see token 0 (another option)
        keep[:, :, 0, -2:] = False
    if mask_kind == "none":
        keep = torch.ones_like(keep)
    mask = {
        "bool": keep,
        "float": torch.zeros(keep.shape).masked_fill(~keep, float("-inf")),
        "per_head": keep.expand(-1, q.shape[1], -1, -1).contiguous(),
        "none": None,
    }[mask_kind]
    out, weights = decode_attention(_Attn(), q, k, v, mask)
    assert weights is None and out.shape == (3, q_len, 4, 8)
    torch.testing.assert_close(out, reference(q, k, v, keep), rtol=1e-5, atol=1e-6)


def test_decode_step_on_cache_views_with_room():
    """Keys and values read as views of larger buffers (a cache with room) give the same."""
    q, k, v, keep = tensors(kv_len=5)
    big_k, big_v = torch.zeros(3, 2, 9, 8), torch.zeros(3, 2, 9, 8)
    big_k[:, :, :5], big_v[:, :, :5] = k, v
    out, _ = decode_attention(_Attn(), q, big_k[:, :, :5], big_v[:, :, :5], keep)
    torch.testing.assert_close(out, reference(q, k, v, keep), rtol=1e-5, atol=1e-6)


def test_several_query_tokens_go_to_sdpa_and_stay_exact():
    q, k, v, keep = tensors(q_len=4, kv_len=6)
    keep[1, ..., 1:3] = True  # row 1: one pad, so its first query still sees a key
    keep = keep & torch.ones(4, 6, dtype=torch.bool).tril(2)  # causal over the last 4 keys
    out, _ = decode_attention(_Attn(), q, k, v, keep)
    torch.testing.assert_close(out, reference(q, k, v, keep), rtol=1e-5, atol=1e-6)


def test_layer_with_room_behaves_like_a_dynamic_layer():
    gen = torch.Generator().manual_seed(1)
    chunks = [torch.randn(2, 2, n, 4, generator=gen) for n in (3, 1, 1, 2, 1)]
    plain, roomy = DynamicLayer(), None
    for step, chunk in enumerate(chunks):
        chunk = chunk if step <= 2 else chunk[1:]  # one row is left after step 2
        want = plain.update(chunk, chunk + 1)
        if roomy is None:
            roomy = ReservedLayer(chunk, chunk + 1, room=1)  # too little room: it must grow
            got = (roomy.keys, roomy.values)
        else:
            got = roomy.update(chunk, chunk + 1)
        torch.testing.assert_close(got[0], want[0])
        torch.testing.assert_close(got[1], want[1])
        assert roomy.get_seq_length() == plain.get_seq_length()
        if step == 2:
            index = torch.tensor([1])
            plain.batch_select_indices(index)
            roomy.batch_select_indices(index)
    roomy.crop(-2)
    plain.crop(-2)
    torch.testing.assert_close(roomy.keys, plain.keys)
    roomy.reset()
    assert roomy.get_seq_length() == 0


def _decode_logits(model, prompts, steps, *, fast: bool):
    """Greedy logits of a left-padded batch; row 0 leaves after the first step."""
    model.set_attn_implementation(ATTENTION_NAME if fast else "sdpa")
    ids, mask, pos = left_pad(prompts, 0, torch.device("cpu"))
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos,
                    past_key_values=DynamicCache(config=model.config), use_cache=True)
        cache, logits, pos = out.past_key_values, [out.logits[:, -1]], pos[:, -1:]
        if fast:
            reserve(cache, 1)
        for step in range(steps):
            if step == 1:
                keep = torch.tensor([1, 2])
                cache.batch_select_indices(keep)
                mask, pos, logits = mask[keep], pos[keep], [*logits, logits[-1][keep]]
            token = logits[-1].argmax(-1, keepdim=True)
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            pos = pos + 1
            out = model(input_ids=token, attention_mask=mask, position_ids=pos,
                        past_key_values=cache, use_cache=True)
            logits.append(out.logits[:, -1])
    return logits


def test_model_decode_matches_sdpa_and_plain_cache(fresh_backend):
    """The whole tiny model: fast kernel + cache with room == SDPA + transformers' cache."""
    model = fresh_backend.model
    assert model.config._attn_implementation == ATTENTION_NAME  # the backend switched it
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12, 13], [14, 15, 16, 17]]
    fast = _decode_logits(model, prompts, 4, fast=True)
    slow = _decode_logits(model, prompts, 4, fast=False)
    assert len(fast) == len(slow) == 6
    for got, want in zip(fast, slow, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_only_sdpa_models_on_cpu_switch(fresh_backend):
    model = fresh_backend.model
    model.set_attn_implementation("eager")
    assert use_decode_attention(model) is False
    assert model.config._attn_implementation == "eager"
    model.set_attn_implementation("sdpa")
    assert use_decode_attention(model) is True
    assert model.config._attn_implementation == ATTENTION_NAME


def test_compact_right_aligns_real_positions_in_order():
    """[prefix pads | prefix | suffix pads | suffix] becomes a plain left-padded layout."""
    mask = torch.tensor([[0, 1, 1, 0, 0, 1],    # 3 real: a 2-token prefix, a 1-token suffix
                         [1, 1, 1, 1, 1, 0],    # 5 real (a hole at the end of its prefix part)
                         [0, 0, 0, 1, 1, 1]])   # 3 real: no prefix
    cache = DynamicCache()
    keys = torch.arange(3 * 6, dtype=torch.float32).reshape(3, 1, 6, 1).expand(3, 2, 6, 3)
    cache.update(keys.clone(), -keys.clone(), 0)
    new_mask = compact(cache, mask)
    assert new_mask.tolist() == [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]
    for row in range(3):
        real = keys[row, 0, mask[row].bool(), 0]
        got = cache.layers[0].keys[row, 0, :, 0]
        assert got[-len(real):].tolist() == real.tolist()
        torch.testing.assert_close(cache.layers[0].values[row], -cache.layers[0].keys[row])
    plain = DynamicCache()
    plain.update(keys.clone(), keys.clone(), 0)
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert compact(plain, left) is left  # no holes beyond left padding: nothing moves
