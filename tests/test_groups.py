"""Grouping invariants (hypothesis)."""

import networkx as nx
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sim.groups import form_groups
from sim.spec import GroupingSpec


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
