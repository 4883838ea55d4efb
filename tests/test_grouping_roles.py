"""Property tests of grouping with roles: bipartite rotations, ``among`` pools, sit-outs."""

from __future__ import annotations

from collections import Counter
from itertools import chain

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.io import load_run
from sim.engine.groups import form_groups
from sim.run.runner import run_scenario
from sim.scenario.spec import GroupingSpec, RunConfig, ScenarioSpec

roles_lists = st.lists(st.sampled_from(["a", "b", None]), min_size=1, max_size=40)


def _covered(grouping, size: int) -> Counter:
    seen = Counter(chain.from_iterable(grouping.groups))
    seen.update(grouping.sitting_out)
    assert set(seen) == set(range(size))
    return seen


@given(roles=roles_lists, seed=st.integers(0, 2**32 - 1), round_=st.integers(1, 50))
def test_bipartite_pairs_only_cross_roles_and_cover_everyone_once(roles, seed, round_):
    spec = GroupingSpec(by="bipartite", roles=["a", "b"])
    g = form_groups(spec, len(roles), None, np.random.default_rng(seed), round_=round_,
                    roles=roles)
    assert all(v == 1 for v in _covered(g, len(roles)).values())
    assert all(roles[x] == "a" and roles[y] == "b" for x, y in g.groups)
    assert len(g.groups) == min(roles.count("a"), roles.count("b"))


@given(roles=roles_lists, seed=st.integers(0, 2**32 - 1))
def test_bipartite_rotation_never_repeats_a_pair_before_all_have_met(roles, seed):
    spec = GroupingSpec(by="bipartite", roles=["a", "b"])
    n_a, n_b = roles.count("a"), roles.count("b")
    met: list[tuple[int, int]] = []
    for round_ in range(1, max(n_a, n_b, 1) + 1):
        g = form_groups(spec, len(roles), None, np.random.default_rng(seed), round_=round_,
                        roles=roles)
        met.extend(g.groups)
    assert len(met) == len(set(met)) == n_a * n_b
    again = form_groups(spec, len(roles), None, np.random.default_rng(seed),
                        round_=max(n_a, n_b, 1) + 1, roles=roles)
    first = form_groups(spec, len(roles), None, np.random.default_rng(seed), round_=1,
                        roles=roles)
    assert again == first  # then the rotation starts over


@given(roles=roles_lists, seed=st.integers(0, 2**32 - 1),
       rule=st.sampled_from(["random_pairs", "groups_of", "round_robin", "all"]),
       k=st.integers(2, 6))
def test_among_groups_only_the_listed_roles(roles, seed, rule, k):
    spec = GroupingSpec(by=rule, among=["a"], **({"size": k} if rule == "groups_of" else {}))
    g = form_groups(spec, len(roles), None, np.random.default_rng(seed), roles=roles)
    assert all(v == 1 for v in _covered(g, len(roles)).values())
    members = set(chain.from_iterable(g.groups))
    assert all(roles[m] == "a" for m in members)
    assert {i for i, r in enumerate(roles) if r != "a"} <= set(g.sitting_out)
    if rule in ("random_pairs", "round_robin"):
        assert len(g.sitting_out) - (len(roles) - roles.count("a")) == roles.count("a") % 2
    if rule == "groups_of":
        assert all(len(x) == k for x in g.groups)


@given(size=st.integers(2, 30), seed=st.integers(0, 2**32 - 1))
def test_among_round_robin_meets_every_pair_once(size, seed):
    roles = ["a" if i % 3 else "b" for i in range(size)]
    pool = [i for i, r in enumerate(roles) if r == "a"]
    spec = GroupingSpec(by="round_robin", among=["a"])
    rounds = len(pool) - 1 if len(pool) % 2 == 0 else len(pool)
    met = []
    for round_ in range(1, rounds + 1):
        g = form_groups(spec, size, None, np.random.default_rng(seed), round_=round_,
                        roles=roles)
        met.extend(frozenset(p) for p in g.groups)
    assert len(met) == len(set(met)) == len(pool) * (len(pool) - 1) // 2


def _scenario(size: int, groups: dict, rounds: int = 3) -> ScenarioSpec:
    return ScenarioSpec.model_validate({
        "name": "grouping", "rounds": rounds, "population": {"size": size},
        "stages": [{"id": "play", "kind": "choice", "groups": groups, "prompt": "Pick.",
                    "options": ["x", "y"]}]})


@settings(max_examples=10, deadline=None)
@given(size=st.integers(2, 15), k=st.integers(2, 4))
def test_the_odd_ones_out_are_recorded_as_sit_out_rows(tmp_path_factory, size, k):
    tmp = tmp_path_factory.mktemp("run")
    path = tmp / "s.yaml"
    spec = _scenario(size, {"by": "groups_of", "size": min(k, size)})
    path.write_text(spec.model_dump_json(by_alias=True, exclude_defaults=True))
    run = load_run(run_scenario(path, RunConfig(backend="scripted", out=tmp)).path)
    for _, rows in run.events.group_by("round"):
        assert sorted(rows["agent"]) == [f"a{i:03d}" for i in range(size)]
        assert rows.filter(pl.col("kind") == "sit_out").height == size % min(k, size)
