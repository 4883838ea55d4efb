"""Per-row sampling: exact zeros never picked, rows independent of batch mates, right odds."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.backends.hf.sampling import BLOCK, RowSampler, _inverse_cdf

LARGEST_BELOW_ONE = 1.0 - 2.0**-53
VOCAB = 3 * BLOCK + 17
"""A vocabulary of several blocks, not a multiple of the block size."""


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(st.sampled_from([0.0, 0.0, 1e-30, 1e-7, 0.3, 1.0]), min_size=2, max_size=12)
    .filter(lambda w: sum(w) > 0),
    uniform=st.one_of(st.sampled_from([0.0, LARGEST_BELOW_ONE, 1.0]), st.floats(0.0, 1.0)),
)
def test_a_zero_probability_token_is_never_picked(weights, uniform):
    """Whatever the uniform, even 1.0 (beyond ``torch.rand``'s range), and however rounded."""
    probs = torch.tensor([weights], dtype=torch.float32)
    probs = probs / probs.sum()
    pick = int(_inverse_cdf(probs, torch.tensor([uniform], dtype=torch.float64))[0])
    assert probs[0, pick] > 0


@settings(max_examples=200, deadline=None)
@given(
    weights=st.dictionaries(st.integers(0, VOCAB - 1),
                            st.sampled_from([1e-30, 1e-7, 0.3, 1.0]), min_size=1, max_size=12),
    uniform=st.one_of(st.sampled_from([0.0, LARGEST_BELOW_ONE, 1.0]), st.floats(0.0, 1.0)),
)
def test_no_zero_probability_token_is_picked_across_blocks(weights, uniform):
    """Positive tokens scattered over several blocks, with empty blocks between them."""
    probs = torch.zeros(1, VOCAB)
    for token, weight in weights.items():
        probs[0, token] = weight
    probs = probs / probs.sum()
    pick = int(_inverse_cdf(probs, torch.tensor([uniform], dtype=torch.float64))[0])
    assert probs[0, pick] > 0


def test_picks_match_one_cumulative_sum_over_the_whole_vocabulary():
    """The two-level search finds the token a single full-length inverse CDF finds."""
    torch.manual_seed(2)
    probs = torch.softmax(torch.randn(8, VOCAB) * 4, dim=-1)
    uniforms = torch.rand(250, 8, dtype=torch.float64)
    cdf = probs.double().cumsum(dim=-1)
    for u in uniforms:
        expected = torch.searchsorted(cdf, (u[:, None] * cdf[:, -1:]), right=True).squeeze(-1)
        assert torch.equal(_inverse_cdf(probs, u), expected)


def test_extremes_pick_the_first_and_last_positive_tokens_across_blocks():
    probs = torch.zeros(1, VOCAB)
    probs[0, BLOCK + 3], probs[0, 2 * BLOCK + 40] = 0.4, 0.6
    ends = [int(_inverse_cdf(probs, torch.tensor([u], dtype=torch.float64))[0])
            for u in (0.0, LARGEST_BELOW_ONE, 1.0)]
    assert ends == [BLOCK + 3, 2 * BLOCK + 40, 2 * BLOCK + 40]


def test_extremes_pick_the_first_and_last_positive_tokens():
    probs = torch.tensor([[0.0, 0.25, 0.0, 0.75, 0.0]])
    low = _inverse_cdf(probs, torch.tensor([0.0], dtype=torch.float64))
    high = _inverse_cdf(probs, torch.tensor([LARGEST_BELOW_ONE], dtype=torch.float64))
    top = _inverse_cdf(probs, torch.tensor([1.0], dtype=torch.float64))
    assert int(low[0]) == 1 and int(high[0]) == 3 and int(top[0]) == 3


def test_a_row_draws_the_same_tokens_alone_or_with_any_batch_mates():
    torch.manual_seed(0)
    logits = torch.randn(4, 50, dtype=torch.bfloat16) * 3
    seeds, temps, top_ps = [11, 12, 13, 14], [0.8, 0.0, 1.3, 0.5], [1.0, 1.0, 0.9, 1.0]
    batch = RowSampler(seeds, temps, top_ps)
    alone = [RowSampler([seeds[i]], [temps[i]], [top_ps[i]]) for i in range(4)]
    for _ in range(5):
        together = batch.sample(logits).tolist()
        single = [int(alone[i].sample(logits[i : i + 1])[0]) for i in range(4)]
        assert together == single
    # greedy rows take the argmax; the sampled rows did not all repeat it
    assert together[1] == int(logits[1].float().argmax())


def test_every_row_sampled_matches_the_same_rows_among_greedy_ones():
    """The all-sampled fast path and the mixed path give a sampled row the same token."""
    torch.manual_seed(1)
    logits = torch.randn(2, 30) * 2
    mixed = RowSampler([5, 6], [0.0, 0.9], [1.0, 1.0])
    only = RowSampler([6], [0.9], [1.0])
    for _ in range(6):
        assert int(mixed.sample(logits)[1]) == int(only.sample(logits[1:])[0])


def test_sampled_frequencies_follow_the_distribution():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0]]).clamp_min(1e-30))
    draws = 4000
    sampler = RowSampler([3], [1.0], [1.0])
    counts = torch.bincount(torch.cat([sampler.sample(logits) for _ in range(draws)]),
                            minlength=4).float() / draws
    assert torch.allclose(counts[:3], torch.tensor([0.5, 0.3, 0.2]), atol=0.03)
    assert counts[3] == 0


def test_sampled_frequencies_follow_a_distribution_spread_over_blocks():
    tokens = [5, BLOCK + 1, 3 * BLOCK + 16]  # the last one in the padded block
    probs = torch.zeros(1, VOCAB)
    probs[0, tokens] = torch.tensor([0.5, 0.3, 0.2])
    sampler = RowSampler([4], [1.0], [1.0])
    draws = torch.cat([sampler.sample(torch.log(probs.clamp_min(1e-30))) for _ in range(4000)])
    counts = torch.bincount(draws, minlength=VOCAB).float() / len(draws)
    assert torch.allclose(counts[tokens], torch.tensor([0.5, 0.3, 0.2]), atol=0.03)
    assert counts.sum() == counts[tokens].sum()
