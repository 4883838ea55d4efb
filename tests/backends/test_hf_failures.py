from __future__ import annotations

import torch

from sim.requests import GenerateRequest, Message, SamplingParams, ScoreRequest
from tests.backends.backend_requests import gen, mixed_generate, score

MARK = "~~~"


def _marked_generate() -> GenerateRequest:
    return GenerateRequest(messages=(Message("user", f"Alice {MARK} Bob"),),
                           sampling=SamplingParams(max_new_tokens=5, temperature=1.0, seed=4))


def _patch_forward(backend, monkeypatch, *, nan: bool = False):
    mark_ids = set(backend.option_ids(MARK))
    original = backend.model.forward

    def forward(*args, **kwargs):
        ids = kwargs["input_ids"]
        prefill = ids.shape[1] > 1
        marked = [i for i in range(ids.shape[0]) if prefill and mark_ids & set(ids[i].tolist())]
        out = original(*args, **kwargs)
        if marked and not nan:
            raise RuntimeError("simulated out of memory")
        if marked:  # one NaN logit is enough to fail a row
            out.logits[marked, :, 7] = float("nan")
        return out

    monkeypatch.setattr(backend.model, "forward", forward)


def test_generate_failure_is_isolated(fresh_backend, monkeypatch):
    others = mixed_generate(7, temperature=1.0)
    expected = fresh_backend.generate(others)
    _patch_forward(fresh_backend, monkeypatch)
    batch = [*others[:3], _marked_generate(), *others[3:]]
    got = fresh_backend.generate(batch)
    assert got[3].finish_reason == "error" and "simulated out of memory" in got[3].error
    assert got[3].text == ""
    assert got[:3] + got[4:] == expected
    assert fresh_backend.stats["failures"] == 1 and fresh_backend.stats["retries"] >= 1


def test_nan_logits_are_isolated(fresh_backend, monkeypatch):
    others = mixed_generate(5, temperature=0.0)
    expected = fresh_backend.generate(others)
    _patch_forward(fresh_backend, monkeypatch, nan=True)
    got = fresh_backend.generate([_marked_generate(), *others])
    assert got[0].finish_reason == "error" and "NaN" in got[0].error
    assert got[1:] == expected


def test_score_failure_is_isolated(fresh_backend, monkeypatch):
    others = [score(2 + 3 * k, offset=k) for k in range(5)]
    expected = fresh_backend.score(others)
    _patch_forward(fresh_backend, monkeypatch)
    marked = ScoreRequest(messages=(Message("user", f"Bob {MARK}"),), options=("yes", "no"))
    got = fresh_backend.score([*others[:2], marked, *others[2:]])
    assert got[2].logprobs == () and "simulated" in got[2].error
    for g, e in zip(got[:2] + got[3:], expected, strict=True):
        assert g.error is None
        assert torch.allclose(torch.tensor(g.logprobs), torch.tensor(e.logprobs), atol=1e-5)


def test_template_failure_is_a_per_request_error(fresh_backend, monkeypatch):
    def broken(messages):
        if any("boom" in m.content for m in messages):
            raise ValueError("roles must alternate")
        return original(messages)

    original = fresh_backend._renderer.render
    monkeypatch.setattr(fresh_backend._renderer, "render", broken)
    bad = GenerateRequest(messages=(Message("user", "boom"),))
    res = fresh_backend.generate([gen(3, max_new=2), bad])
    assert res[0].finish_reason != "error" and res[1].finish_reason == "error"
    assert "roles must alternate" in res[1].error
