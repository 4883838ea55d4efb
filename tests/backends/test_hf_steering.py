from __future__ import annotations

import pytest
import torch

from sim.errors import BackendError
from tests.backends.backend_requests import gen, mixed_generate, score


@pytest.fixture
def steered(fresh_backend):
    g = torch.Generator().manual_seed(0)
    hidden = fresh_backend.model.config.hidden_size
    fresh_backend.set_steering(
        {"joy": torch.randn(hidden, generator=g) * 4,
         "anger": torch.randn(hidden, generator=g) * 4},
        layers=[0, 1],
    )
    return fresh_backend


def test_zero_coefficients_equal_no_steering(steered):
    plain = [gen(6, seed=3, temperature=1.0, max_new=10), score(7)]
    zero = [gen(6, seed=3, temperature=1.0, max_new=10, steering=(("joy", 0.0),)),
            score(7, steering=(("joy", 0.0), ("anger", 0.0)))]
    assert steered.generate([plain[0]]) == steered.generate([zero[0]])
    assert steered.score([plain[1]])[0].logprobs == steered.score([zero[1]])[0].logprobs


def test_steered_row_in_batch_equals_alone(steered):
    target = gen(8, seed=11, temperature=1.0, max_new=12, steering=(("joy", 1.5), ("anger", -0.5)))
    alone = steered.generate([target])[0]
    others = mixed_generate(8, temperature=1.0)
    others[2] = gen(3, seed=1, temperature=1.0, max_new=2, steering=(("anger", 2.0),))
    batch = steered.generate([*others[:4], target, *others[4:]])
    assert batch[4] == alone
    plain = steered.generate([gen(8, seed=11, temperature=1.0, max_new=12)])[0]
    for req, res in zip(others, batch[:4] + batch[5:], strict=True):
        assert res == steered.generate([req])[0]
    assert plain.text != alone.text
    assert steered.stats["retries"] == steered.stats["failures"] == 0


def test_steered_score_in_batch_equals_alone(steered):
    target = score(5, steering=(("joy", 2.0),))
    alone = steered.score([target])[0].logprobs
    batch = steered.score([score(9), target, score(2, steering=(("anger", 1.0),))])
    assert max(abs(a - b) for a, b in zip(batch[1].logprobs, alone, strict=True)) < 1e-4
    assert steered.stats["retries"] == steered.stats["failures"] == 0


def test_nonzero_steering_changes_logits(steered):
    base = steered.score([score(5)])[0].logprobs
    pushed = steered.score([score(5, steering=(("joy", 1.0),))])[0].logprobs
    assert max(abs(a - b) for a, b in zip(base, pushed, strict=True)) > 1e-3


def test_no_hook_without_steering(steered, monkeypatch):
    layer = steered.model.model.layers[0]
    calls = []
    original = layer.register_forward_hook
    monkeypatch.setattr(layer, "register_forward_hook",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    steered.generate([gen(3, max_new=2)])
    assert calls == []
    steered.generate([gen(3, max_new=2, steering=(("joy", 1.0),))])
    assert calls == [1]
    assert not layer._forward_hooks


def test_unknown_trait_and_unset_steering_are_errors(steered, tiny_backend):
    with pytest.raises(BackendError, match="calm"):
        steered.generate([gen(3, steering=(("calm", 1.0),))])
    with pytest.raises(BackendError, match="set_steering"):
        tiny_backend.score([score(3, steering=(("joy", 1.0),))])


def test_bad_direction_shape_and_layers(fresh_backend):
    with pytest.raises(BackendError, match="shape"):
        fresh_backend.set_steering({"joy": torch.zeros(3)}, [0])
    with pytest.raises(BackendError, match="layers"):
        fresh_backend.set_steering({"joy": torch.zeros(64)}, [5])


def test_hf_backend_declares_what_it_can_do(tiny_backend):
    from sim.backends.protocol import (
        Backend,
        Capabilities,
        Counting,
        PrefixReuse,
        Steerable,
        capabilities_of,
    )

    assert capabilities_of(tiny_backend) == Capabilities(steering=True, prefix_cache=True,
                                                         stats=True)
    assert isinstance(tiny_backend, Backend)
    for ability in (Steerable, PrefixReuse, Counting):  # each declared ability is there
        assert isinstance(tiny_backend, ability)
    assert set(tiny_backend.stats) >= {"retries", "failures"}
