"""Regressions with cluster-robust standard errors (statsmodels), e.g. payoff on a trait.

Rows of one run share partners, history and seed, so they are not independent: the standard
error of a slope clusters on the run (Liang & Zeger, 1986; Cameron & Miller, 2015). The
covariance is statsmodels' ``cov_type="cluster"`` with its small-sample correction
``G / (G - 1) * (N - 1) / (N - K)`` and t intervals with ``G - 1`` degrees of freedom. With
fewer than two runs the agents of the run are the clusters instead (named in the result):
an agent's decisions over rounds are the dependent unit left.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import polars as pl

from agents.persona import TRAITS
from analysis.stats import RUN_KEYS

__all__ = ["ClusteredSlope", "cluster_ols", "payoff_by_trait"]


class ClusteredSlope(dict[str, float | int]):
    """``slope, intercept, se, ci_low, ci_high, p_value, n_obs, n_clusters`` of one fit."""


_NAN_FIT = ("slope", "intercept", "se", "ci_low", "ci_high", "p_value")


def cluster_ols(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
                groups: Sequence[object] | np.ndarray, level: float = 0.95) -> ClusteredSlope:
    """OLS of ``y`` on ``x`` (with an intercept) and a cluster-robust slope interval.

    Args:
        x: Predictor.
        y: Response (rows where either is not finite are dropped).
        groups: Cluster label of each row (e.g. the run).
        level: Confidence level.

    Returns:
        The fit; NaN estimates when fewer than two clusters or no spread in ``x``.
    """
    import statsmodels.api as sm

    xa, ya = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(xa) & np.isfinite(ya)
    labels = np.asarray([str(g) for g in groups], dtype=object)[ok]
    xa, ya = xa[ok], ya[ok]
    _, codes = np.unique(labels, return_inverse=True)
    n_clusters = int(codes.max() + 1) if codes.size else 0
    out = ClusteredSlope(dict.fromkeys(_NAN_FIT, float("nan")))
    out.update(n_obs=int(xa.size), n_clusters=n_clusters)
    if n_clusters < 2 or xa.size < 3 or np.ptp(xa) == 0:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.OLS(ya, sm.add_constant(xa, has_constant="add")).fit(
            cov_type="cluster", cov_kwds={"groups": codes, "use_correction": True,
                                          "df_correction": True}, use_t=True)
        low, high = fit.conf_int(alpha=1 - level)[1]
    out.update(slope=float(fit.params[1]), intercept=float(fit.params[0]),
               se=float(fit.bse[1]), ci_low=float(low), ci_high=float(high),
               p_value=float(fit.pvalues[1]))
    return out


def payoff_by_trait(events: pl.DataFrame, agents: pl.DataFrame, *, stage: str | None = None,
                    level: float = 0.95) -> pl.DataFrame:
    """Payoff per decision regressed on each assigned trait, one regression per trait.

    The slope is the change in mean payoff per decision from trait 0 to trait 1 (traits are
    in [0, 1]). Clusters are runs (``run_id``, ``replica``) when there are at least two,
    otherwise the agents of the one run.

    Args:
        events: Event rows with ``run_id``, ``replica``, ``agent``, ``stage``, ``payoff``.
        agents: Agent rows with ``run_id``, ``replica``, ``agent`` and the five traits.
        stage: Only rows of this stage.
        level: Confidence level.

    Returns:
        ``trait, slope, se, ci_low, ci_high, p_value, intercept, n_obs, n_clusters, cluster``;
        empty without payoffs.
    """
    paid = events.filter(pl.col("payoff").is_not_null() & (pl.col("kind") == "choice"))
    if stage is not None:
        paid = paid.filter(pl.col("stage") == stage)
    cols = ["trait", *_NAN_FIT, "n_obs", "n_clusters", "cluster"]
    if paid.is_empty():
        return pl.DataFrame(schema=dict.fromkeys(cols, pl.Float64) | {
            "trait": pl.String, "n_obs": pl.Int64, "n_clusters": pl.Int64, "cluster": pl.String})
    keys = [*RUN_KEYS, "agent"]
    joined = paid.join(agents.select(*keys, *TRAITS), on=keys, how="inner").sort(
        [*keys, "round"])
    several = joined.select(RUN_KEYS).n_unique() > 1
    unit = "run" if several else "agent"
    cluster = joined.select(pl.concat_str(RUN_KEYS if several else keys, separator="/")
                            ).to_series().to_numpy()
    rows = []
    for trait in TRAITS:
        fit = cluster_ols(joined[trait].to_numpy(), joined["payoff"].to_numpy(), cluster, level)
        rows.append({"trait": trait, **fit, "cluster": unit})
    return pl.DataFrame(rows).select(cols)
