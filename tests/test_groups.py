"""Grouping invariants (hypothesis)."""

from itertools import combinations
from typing import Any

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.engine.groups import Grouping, cache_key, form_groups, stream_key
from sim.errors import ScenarioError
from sim.scenario.loader import parse_scenario
from sim.scenario.spec import GroupingSpec, ScenarioSpec
from sim.scenario.validate import check_scenario


@given(size=st.integers(1, 301), seed=st.integers(0, 2**32 - 1))
def test_random_pairs_cover_every_agent_once(size, seed):
    grouping = form_groups(GroupingSpec(by="random_pairs"), size, None,
                           np.random.default_rng(seed))
    members = [a for g in grouping.groups for a in g]
    assert all(len(g) == 2 for g in grouping.groups)
    assert sorted(members + list(grouping.sitting_out)) == list(range(size))
    assert len(grouping.sitting_out) == size % 2


@given(seed=st.integers(0, 1000))
def test_random_pairs_are_redrawn_with_the_stream(seed):
    a = form_groups(GroupingSpec(by="random_pairs"), 20, None, np.random.default_rng(seed))
    b = form_groups(GroupingSpec(by="random_pairs"), 20, None, np.random.default_rng(seed))
    c = form_groups(GroupingSpec(by="random_pairs"), 20, None, np.random.default_rng(seed + 1))
    assert a == b and a != c


@given(n=st.integers(2, 40), p=st.floats(0, 1), seed=st.integers(0, 100))
def test_neighbours_are_the_network_edges(n, p, seed):
    graph = nx.gnp_random_graph(n, p, seed=seed)
    grouping = form_groups(GroupingSpec(by="neighbours"), n, graph, np.random.default_rng(0))
    assert {frozenset(g) for g in grouping.groups} == {frozenset(e) for e in graph.edges()}
    assert set(grouping.sitting_out) == {v for v in graph if graph.degree(v) == 0}


def _draw(spec: GroupingSpec, size: int, round_: int, seed: int = 0) -> Grouping:
    """Group as the simulation does: a stream keyed by :func:`stream_key`, the round passed."""
    seq = np.random.SeedSequence(seed, spawn_key=(0, 7, *stream_key(spec, round_)))
    return form_groups(spec, size, None, np.random.default_rng(seq), round_=round_)


def _scenario(groups: dict[str, Any], size: int = 8) -> ScenarioSpec:
    return ScenarioSpec.model_validate({
        "name": "grouping", "population": {"size": size},
        "stages": [{"id": "play", "kind": "choice", "groups": groups,
                    "prompt": "Meet {partner.name}.", "options": ["a", "b"],
                    "payoff": {"matrix": [[1, 0], [0, 1]]}}],
    })


@given(size=st.integers(1, 200), k=st.integers(2, 12), merge=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_groups_of_k_cover_every_agent_at_most_once(size, k, merge, seed):
    spec = GroupingSpec(by="groups_of", size=k, remainder="merge" if merge else "sit_out")
    grouping = form_groups(spec, size, None, np.random.default_rng(seed))
    members = [a for g in grouping.groups for a in g]
    assert len(members) == len(set(members))
    assert sorted(members + list(grouping.sitting_out)) == list(range(size))
    if merge and size >= k:
        assert len(members) == size and not grouping.sitting_out
        assert len(grouping.groups) == size // k and all(len(g) >= k for g in grouping.groups)
    else:
        assert len(members) == size - size % k
        assert all(len(g) == k for g in grouping.groups)


@given(size=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_round_robin_every_pair_meets_exactly_once_per_cycle(size, seed):
    spec = GroupingSpec(by="round_robin")
    cycle = max(1, size - 1 if size % 2 == 0 else size)
    met: set[frozenset[int]] = set()
    sat_out: list[int] = []
    for round_ in range(1, cycle + 1):
        grouping = _draw(spec, size, round_, seed)
        members = [a for g in grouping.groups for a in g]
        assert all(len(g) == 2 for g in grouping.groups)
        assert sorted(members + list(grouping.sitting_out)) == list(range(size))
        assert len(grouping.sitting_out) == size % 2
        pairs = {frozenset(g) for g in grouping.groups}
        assert not pairs & met, "a pair met again before all pairs had met"
        met |= pairs
        sat_out += grouping.sitting_out
    assert met == {frozenset(p) for p in combinations(range(size), 2)}
    assert len(sat_out) == len(set(sat_out)), "an agent sat out twice in one cycle"
    if size % 2:
        assert sorted(sat_out) == list(range(size))
    assert _draw(spec, size, cycle + 1, seed) == _draw(spec, size, 1, seed)


@given(seed=st.integers(0, 1000))
def test_round_robin_order_is_seeded(seed):
    spec = GroupingSpec(by="round_robin")
    assert _draw(spec, 12, 3, seed) == _draw(spec, 12, 3, seed)
    assert any(_draw(spec, 12, 1, seed) != _draw(spec, 12, 1, s) for s in (seed + 1, seed + 2))


@given(by=st.sampled_from(["random_pairs", "groups_of"]), size=st.integers(2, 60),
       seed=st.integers(0, 2**32 - 1))
def test_redraw_never_keeps_the_first_draw(by, size, seed):
    k = {"size": 2 + seed % min(size - 1, 5)} if by == "groups_of" else {}
    kept = GroupingSpec(by=by, redraw="never", **k)
    first = _draw(kept, size, 1, seed)
    assert all(_draw(kept, size, r, seed) == first for r in range(2, 8))


def test_redraw_round_redraws():
    spec = GroupingSpec(by="groups_of", size=3)
    assert len({_draw(spec, 30, r) for r in range(1, 6)}) > 1


def test_old_rules_keep_their_cache_and_stream_keys():
    for index, by in enumerate(("all", "random_pairs", "neighbours")):
        assert cache_key(GroupingSpec(by=by), 4) == (4, by)
        assert stream_key(GroupingSpec(by=by), 4) == (4, index)
    assert cache_key(GroupingSpec(by="random_pairs", redraw="round"), 2) == (2, "random_pairs")
    assert cache_key(GroupingSpec(by="groups_of", size=3), 1) != \
        cache_key(GroupingSpec(by="groups_of", size=4), 1)


@given(size=st.integers(2, 30), data=st.data())
def test_fixed_groups_are_kept_and_the_rest_sit_out(size, data):
    agents = data.draw(st.permutations(range(size)))
    cuts = sorted(data.draw(st.sets(st.integers(1, size - 1), max_size=size // 2)))
    groups = [list(agents[a:b]) for a, b in zip([0, *cuts], [*cuts, size], strict=True)]
    groups = [g for g in groups if len(g) >= 2][:-1] or [list(agents[:2])]
    spec = GroupingSpec(by="fixed", groups=groups)
    check_scenario(_scenario(spec.model_dump(exclude_defaults=True), size))
    grouping = _draw(spec, size, data.draw(st.integers(1, 50)))
    assert [list(g) for g in grouping.groups] == groups
    assert set(grouping.sitting_out) == set(range(size)) - {a for g in groups for a in g}


@given(size=st.integers(2, 30), data=st.data())
def test_fixed_groups_out_of_range_or_repeated_are_refused(size, data):
    group = data.draw(st.lists(st.integers(0, size - 1), min_size=2, max_size=size, unique=True))
    bad = data.draw(st.one_of(st.integers(size, 10 * size), st.integers(-5, -1),
                              st.sampled_from(group)))
    groups = [group, [bad, group[0]]] if data.draw(st.booleans()) else [[*group, bad]]
    with pytest.raises(ScenarioError) as err:
        check_scenario(_scenario({"by": "fixed", "groups": groups}, size))
    j = len(groups) - 1
    m = 0 if len(groups) == 2 else len(group)
    assert err.value.field == f"stages.0.groups.groups.{j}.{m}"
    assert err.value.value == bad
    with pytest.raises(ValueError, match=r"out of range|repeated"):
        form_groups(GroupingSpec(by="fixed", groups=groups), size, None,
                    np.random.default_rng(0))


@pytest.mark.parametrize(("groups", "field", "message"), [
    ({"by": "groups_of"}, "stages.0.groups", "needs a 'size'"),
    ({"by": "groups_of", "size": 1}, "stages.0.groups.size", "meet nobody"),
    ({"by": "groups_of", "size": 9}, "stages.0.groups.size", "nobody would be grouped"),
    ({"by": "random_pairs", "size": 3}, "stages.0.groups.size", "only used with by: groups_of"),
    ({"by": "round_robin", "remainder": "merge"}, "stages.0.groups.remainder", "groups_of"),
    ({"by": "round_robin", "redraw": "never"}, "stages.0.groups.redraw", "random_pairs"),
    ({"by": "groups_of", "size": 2, "groups": [[0, 1]]}, "stages.0.groups.groups", "fixed"),
    ({"by": "fixed"}, "stages.0.groups", "needs a non-empty list"),
    ({"by": "fixed", "groups": []}, "stages.0.groups.groups", "needs a non-empty list"),
    ({"by": "fixed", "groups": [[0, 1], [2]]}, "stages.0.groups.groups.1", "at least 2"),
])
def test_grouping_checks_name_the_field(groups, field, message):
    with pytest.raises(ScenarioError, match=message) as err:
        check_scenario(_scenario(groups))
    assert err.value.field == field


def test_grouping_error_points_at_the_line():
    text = """name: fixed
population: {size: 4}
stages:
  - id: play
    kind: choice
    prompt: Meet {partner.name}.
    options: [a, b]
    groups:
      by: fixed
      groups:
        - [0, 1]
        - [2, 1]
"""
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text)
    assert err.value.line == 12 and err.value.field == "stages.0.groups.groups.1.1"
