"""Statistics layer on hand-computed numbers."""

import numpy as np
import polars as pl
import pytest

from analysis.stats import (
    bootstrap_ci,
    cluster_bootstrap,
    cohens_d,
    effect_sizes,
    hedges_g,
    holm,
    mean_difference,
    ols,
)


def test_effect_sizes_by_hand():
    x, y = [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]
    assert mean_difference(x, y) == -1.0
    assert cohens_d(x, y) == pytest.approx(-1.0)
    assert hedges_g(x, y) == pytest.approx(-1.0 * (1 - 3 / (4 * 6 - 9)))
    out = effect_sizes(np.arange(10.0), np.arange(10.0) + 3, np.random.default_rng(0),
                       n_boot=500)
    d = out.filter(pl.col("measure") == "mean_difference").row(0, named=True)
    assert d["estimate"] == pytest.approx(-3.0)
    assert d["ci_low"] < -3.0 < d["ci_high"] < 0


def test_cluster_bootstrap_resamples_runs_not_rows():
    rng = np.random.default_rng(0)
    # 20 runs, 50 rows each, a run-level random effect of SD 1 and tiny row noise
    runs = np.repeat(np.arange(20), 50)
    eff = rng.normal(0, 1, 20)[runs] + rng.normal(0, 0.01, runs.size)
    df = pl.DataFrame({"run_id": [f"r{i}" for i in runs], "replica": 0, "v": eff})
    out = cluster_bootstrap(df, "v", np.random.default_rng(1), n_boot=2000).row(0, named=True)
    assert out["estimate"] == pytest.approx(eff.mean())
    assert out["n_clusters"] == 20 and out["n_rows"] == 1000
    # the SE is the between-run SE (~1/sqrt(20) = 0.22), not the naive row SE (~0.03)
    assert 0.12 < out["se"] < 0.35
    bca = cluster_bootstrap(df, "v", np.random.default_rng(1), method="bca").row(0, named=True)
    assert bca["ci_low"] < out["estimate"] < bca["ci_high"]


def test_bootstrap_ci_coverage_of_a_known_mean():
    rng = np.random.default_rng(2)
    hits = sum(
        (r := bootstrap_ci(rng.normal(1.0, 1.0, 30), rng, n_boot=400)).ci_low < 1.0 < r.ci_high
        for _ in range(100))
    assert 86 <= hits <= 99
    const = bootstrap_ci([2.0, 2.0, 2.0], rng)
    assert (const.estimate, const.ci_low, const.ci_high) == (2.0, 2.0, 2.0)


def test_ols_and_holm():
    r = ols([0, 1, 2, 3, 4], [1, 3, 5, 7, 9])
    assert (r.slope, r.intercept, r.se) == (pytest.approx(2.0), pytest.approx(1.0), 0.0)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert np.isnan(holm([np.nan, 0.02])[0])


def test_cluster_bootstrap_same_seed_same_interval_whatever_the_row_order():
    # 40 runs of unequal means: the interval depends on which cluster each resample index
    # names, so clusters must be taken in one fixed order.
    rng = np.random.default_rng(7)
    runs = [f"run-{i:02d}" for i in range(40)]
    df = pl.DataFrame({"run_id": [r for r in runs for _ in range(5)],
                       "replica": [0] * 200,
                       "v": rng.normal(size=200) + np.repeat(np.arange(40) / 10, 5)})
    first = cluster_bootstrap(df, "v", np.random.default_rng(0), n_boot=500)
    for _ in range(5):
        assert cluster_bootstrap(df, "v", np.random.default_rng(0),
                                 n_boot=500).to_dicts() == first.to_dicts()
    for seed in range(3):
        shuffled = df.sample(fraction=1.0, shuffle=True, seed=seed)
        again = cluster_bootstrap(shuffled, "v", np.random.default_rng(0), n_boot=500)
        for key in ("estimate", "ci_low", "ci_high", "se"):  # sums in another row order
            assert again[key][0] == pytest.approx(first[key][0], rel=1e-12)
