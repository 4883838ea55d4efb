from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.backends.hf.batching import MAX_PADDING, plan_batches, run_isolated
from sim.errors import BackendError


@given(st.lists(st.tuples(st.integers(1, 200), st.integers(0, 64), st.integers(1, 5)), max_size=60),
       st.integers(1, 4000), st.integers(1, 16))
def test_plan_covers_everything_within_budget(items, budget, size):
    lengths, extras, rows = (list(x) for x in zip(*items, strict=True)) if items else ([], [], [])
    plan = plan_batches(lengths, extras, max_tokens=budget, max_size=size, rows=rows)
    assert sorted(i for b in plan for i in b) == list(range(len(items)))
    for batch in plan:
        n = sum(rows[i] for i in batch)
        cost = n * (max(lengths[i] for i in batch) + max(extras[i] for i in batch))
        real = sum(rows[i] * (lengths[i] + extras[i]) for i in batch)
        assert len(batch) == 1 or (cost <= budget and n <= size and cost <= MAX_PADDING * real)
        assert [lengths[i] for i in batch] == sorted(lengths[i] for i in batch)


def test_a_long_prompt_never_drags_short_ones_to_its_length():
    """However large the budget, ten 100-token rows and one 1,000-token row are two batches."""
    plan = plan_batches([100] * 10 + [1000], [8] * 11, max_tokens=10**6, max_size=64)
    assert plan == [list(range(10)), [10]]


def test_run_isolated_bisects_to_the_failing_item():
    stats: dict[str, int] = {}

    def run(items):
        if 3 in items:
            raise RuntimeError("oom")
        return [x * 10 for x in items]

    out = run_isolated(list(range(8)), run, lambda x, e: f"error {x}: {e}", stats)
    assert out == [0, 10, 20, "error 3: oom", 40, 50, 60, 70]
    assert stats["failures"] == 1 and stats["retries"] == 3


def test_run_isolated_lets_user_errors_through():
    def run(items):
        raise BackendError("bad request")

    with pytest.raises(BackendError):
        run_isolated([1, 2], run, lambda x, e: None, {})
