"""Cluster-robust OLS against the sandwich formula computed by hand, and a planted slope."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from agents.persona import TRAITS
from analysis.regression import cluster_ols, payoff_by_trait


def test_cluster_ols_matches_hand_sandwich() -> None:
    # Three clusters of two rows. By hand: X = [1 x], b = (X'X)^-1 X'y,
    # V = c (X'X)^-1 (sum_g X_g' u_g u_g' X_g) (X'X)^-1, c = G/(G-1) * (N-1)/(N-K),
    # interval b1 +- t_{G-1} sqrt(V11).
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([1.0, 2.0, 2.5, 4.5, 4.0, 6.5])
    g = np.array(["a", "a", "b", "b", "c", "c"])
    X = np.column_stack([np.ones(6), x])
    xtx_inv = np.linalg.inv(X.T @ X)
    b = xtx_inv @ X.T @ y
    u = y - X @ b
    meat = sum(np.outer(X[g == k].T @ u[g == k], X[g == k].T @ u[g == k]) for k in "abc")
    v = (3 / 2) * (5 / 4) * xtx_inv @ meat @ xtx_inv
    se = float(np.sqrt(v[1, 1]))
    t = float(sps.t.ppf(0.975, 2))
    fit = cluster_ols(x, y, g)
    assert fit["slope"] == pytest.approx(b[1]) and fit["intercept"] == pytest.approx(b[0])
    assert fit["se"] == pytest.approx(se)
    assert fit["ci_low"] == pytest.approx(b[1] - t * se)
    assert fit["ci_high"] == pytest.approx(b[1] + t * se)
    assert fit["n_obs"] == 6 and fit["n_clusters"] == 3


def test_cluster_ols_undefined_with_one_cluster() -> None:
    fit = cluster_ols([0, 1, 2], [1, 2, 3], ["a", "a", "a"])
    assert np.isnan(fit["se"]) and fit["n_clusters"] == 1


def test_payoff_by_trait_recovers_planted_slope() -> None:
    # payoff = 1 + 2 * agreeableness + a run shock + noise, 20 runs of 8 agents x 5 rounds.
    rng = np.random.default_rng(7)
    agents, events = [], []
    for r in range(20):
        shock = rng.normal(0, 0.5)
        for a in range(8):
            traits = dict(zip(TRAITS, rng.uniform(0, 1, 5), strict=True))
            agents.append({"run_id": f"r{r}", "replica": 0, "agent": f"a{a}", **traits})
            for t in range(1, 6):
                events.append({"run_id": f"r{r}", "replica": 0, "agent": f"a{a}", "round": t,
                               "stage": "play", "kind": "choice",
                               "payoff": 1 + 2 * traits["agreeableness"] + shock
                               + rng.normal(0, 0.3)})
    table = payoff_by_trait(pl.DataFrame(events), pl.DataFrame(agents), stage="play")
    row = {r["trait"]: r for r in table.iter_rows(named=True)}
    agree = row["agreeableness"]
    assert agree["ci_low"] < 2.0 < agree["ci_high"] and agree["p_value"] < 1e-6
    assert agree["n_obs"] == 800 and agree["n_clusters"] == 20 and agree["cluster"] == "run"
    assert row["openness"]["ci_low"] < 0.0 < row["openness"]["ci_high"]
