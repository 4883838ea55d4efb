"""Statistics for sweeps: cluster bootstrap over runs, effect sizes, OLS helpers.

The run (``run_id`` + ``replica``) is the unit of analysis: observations inside a run are
dependent, so every interval here resamples whole runs (clusters), never single rows. All
randomness comes from a ``numpy.random.Generator`` passed in by the caller.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats as sps

__all__ = [
    "RUN_KEYS",
    "BootstrapResult",
    "OLSResult",
    "as_frame",
    "bootstrap_ci",
    "cluster_bootstrap",
    "cohens_d",
    "effect_sizes",
    "hedges_g",
    "holm",
    "mean_difference",
    "ols",
]

RUN_KEYS: tuple[str, str] = ("run_id", "replica")
"""Columns that identify a run, the unit of analysis."""

Method = Literal["percentile", "bca"]


def as_frame(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Collect a LazyFrame, pass a DataFrame through.

    Args:
        frame: A polars DataFrame or LazyFrame.

    Returns:
        The materialised DataFrame.
    """
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate with a bootstrap interval."""

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    n: int


@dataclass(frozen=True)
class OLSResult:
    """Simple linear regression ``y = intercept + slope * x`` with a t interval."""

    slope: float
    intercept: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


def _scipy_method(method: Method) -> str:
    if method not in ("percentile", "bca"):
        raise ValueError(f"bootstrap method {method!r} is not one of 'percentile', 'bca'")
    return "BCa" if method == "bca" else "percentile"


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    rng: np.random.Generator,
    *,
    statistic: Callable[..., np.ndarray] = np.mean,
    n_boot: int = 2000,
    level: float = 0.95,
    method: Method = "percentile",
) -> BootstrapResult:
    """Bootstrap interval of a statistic of one sample of independent units (e.g. runs).

    Args:
        values: One value per independent unit (NaNs are dropped).
        rng: Seeded generator; the only source of randomness.
        statistic: Vectorised statistic accepting ``axis`` (``np.mean``, ``np.median``, ...).
        n_boot: Number of bootstrap resamples.
        level: Confidence level of the two-sided interval.
        method: ``"percentile"`` or ``"bca"`` (scipy's bias-corrected accelerated).

    Returns:
        Estimate, interval, bootstrap standard error and the number of units. With fewer
        than two units, or no spread, the interval collapses to the estimate (or NaN).
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return BootstrapResult(np.nan, np.nan, np.nan, np.nan, 0)
    est = float(statistic(x, axis=-1))
    if x.size < 2 or np.ptp(x) == 0:
        return BootstrapResult(est, est if x.size >= 2 else np.nan,
                               est if x.size >= 2 else np.nan, 0.0, int(x.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.bootstrap((x,), statistic, n_resamples=n_boot, confidence_level=level,
                            method=_scipy_method(method), vectorized=True, rng=rng)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return BootstrapResult(est, lo, hi, float(res.standard_error), int(x.size))


def cluster_bootstrap(
    frame: pl.DataFrame | pl.LazyFrame,
    value: str,
    rng: np.random.Generator,
    *,
    cluster: Sequence[str] = RUN_KEYS,
    by: Sequence[str] = (),
    n_boot: int = 2000,
    level: float = 0.95,
    method: Method = "percentile",
) -> pl.DataFrame:
    """Mean of ``value`` over all rows with an interval that resamples whole clusters.

    The statistic is the pooled row mean (ratio of resampled cluster sums to resampled
    cluster counts), so clusters with more rows weigh more, exactly as in the point estimate.
    Pre-aggregate to one row per cluster to weigh clusters equally.

    Args:
        frame: Long frame with the cluster columns, the ``by`` columns and ``value``.
        value: Numeric column to average (nulls and NaNs are dropped).
        rng: Seeded generator.
        cluster: Columns identifying a cluster (default: the run).
        by: Columns to compute separate estimates for (e.g. ``trait``, ``measure``).
        n_boot: Number of resamples.
        level: Confidence level.
        method: ``"percentile"`` or ``"bca"``.

    Returns:
        One row per ``by`` group: ``estimate, ci_low, ci_high, se, n_clusters, n_rows``.
    """
    df = as_frame(frame).filter(pl.col(value).is_not_null() & pl.col(value).is_not_nan())
    # Clusters in a fixed (sorted) order: the resampling indexes them, so an unordered
    # group_by would give a different interval for the same seed on every call.
    per = df.group_by([*by, *cluster]).agg(
        pl.col(value).sum().alias("_s"), pl.len().alias("_n")
    ).sort([*by, *cluster])
    groups = per.partition_by(list(by), as_dict=True, maintain_order=True) if by else {(): per}
    rows: list[dict[str, object]] = []
    for key, g in sorted(groups.items(), key=lambda kv: str(kv[0])):
        s = g["_s"].to_numpy().astype(float)
        n = g["_n"].to_numpy().astype(float)
        est = float(s.sum() / n.sum()) if n.sum() > 0 else np.nan
        lo = hi = est
        se = 0.0
        if len(s) >= 2 and np.ptp(s / n) > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sps.bootstrap(
                    (s, n), lambda a, b, axis=-1: a.sum(axis=axis) / b.sum(axis=axis),
                    paired=True, vectorized=True, n_resamples=n_boot, confidence_level=level,
                    method=_scipy_method(method), rng=rng,
                )
            lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
            se = float(res.standard_error)
        elif len(s) < 2:
            lo = hi = se = np.nan
        row: dict[str, object] = dict(zip(by, key, strict=True))
        row.update(estimate=est, ci_low=lo, ci_high=hi, se=se, n_clusters=len(s),
                   n_rows=int(n.sum()))
        rows.append(row)
    return pl.DataFrame(rows)


def mean_difference(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Difference of means ``mean(x) - mean(y)``.

    Args:
        x: First sample (one value per run).
        y: Second sample.

    Returns:
        The mean difference.
    """
    return float(np.mean(np.asarray(x, float)) - np.mean(np.asarray(y, float)))


def cohens_d(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Cohen's d with the pooled standard deviation (ddof = 1 in each group).

    Args:
        x: First sample.
        y: Second sample.

    Returns:
        ``(mean(x) - mean(y)) / s_pooled``; NaN when the pooled SD is 0 or undefined.
    """
    a, b = np.asarray(x, float), np.asarray(y, float)
    n1, n2 = a.size, b.size
    if n1 + n2 <= 2:
        return float("nan")
    pooled = ((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2)
    if pooled <= 0:
        return float("nan")
    return float((a.mean() - b.mean()) / np.sqrt(pooled))


def hedges_g(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Hedges' g: Cohen's d times ``1 - 3 / (4 (n1 + n2) - 9)``.

    Args:
        x: First sample.
        y: Second sample.

    Returns:
        The small-sample corrected standardised mean difference.
    """
    n = len(x) + len(y)
    return cohens_d(x, y) * (1.0 - 3.0 / (4.0 * n - 9.0))


def effect_sizes(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    rng: np.random.Generator,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    method: Method = "percentile",
) -> pl.DataFrame:
    """Mean difference, Cohen's d and Hedges' g of two independent samples of runs.

    Intervals come from an independent-samples bootstrap (each group resampled separately).

    Args:
        x: One value per run of condition 1.
        y: One value per run of condition 2.
        rng: Seeded generator.
        n_boot: Resamples.
        level: Confidence level.
        method: ``"percentile"`` or ``"bca"``.

    Returns:
        Rows ``measure`` in (mean_difference, cohens_d, hedges_g) with ``estimate, ci_low,
        ci_high, n_x, n_y``.
    """
    a, b = np.asarray(x, float), np.asarray(y, float)

    def _d(u: np.ndarray, v: np.ndarray, axis: int = -1) -> np.ndarray:
        n1, n2 = u.shape[axis], v.shape[axis]
        pooled = ((n1 - 1) * u.var(axis=axis, ddof=1) + (n2 - 1) * v.var(axis=axis, ddof=1))
        pooled = pooled / (n1 + n2 - 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (u.mean(axis=axis) - v.mean(axis=axis)) / np.sqrt(pooled)

    corr = 1.0 - 3.0 / (4.0 * (a.size + b.size) - 9.0)
    stats_: dict[str, tuple[float, Callable[..., np.ndarray]]] = {
        "mean_difference": (mean_difference(a, b),
                            lambda u, v, axis=-1: u.mean(axis=axis) - v.mean(axis=axis)),
        "cohens_d": (cohens_d(a, b), _d),
        "hedges_g": (hedges_g(a, b), lambda u, v, axis=-1: _d(u, v, axis) * corr),
    }
    rows = []
    for name, (est, fn) in stats_.items():
        lo = hi = np.nan
        if a.size >= 2 and b.size >= 2 and np.isfinite(est):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sps.bootstrap((a, b), fn, n_resamples=n_boot, confidence_level=level,
                                    method=_scipy_method(method), vectorized=True, rng=rng)
            lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        rows.append({"measure": name, "estimate": est, "ci_low": lo, "ci_high": hi,
                     "n_x": int(a.size), "n_y": int(b.size)})
    return pl.DataFrame(rows)


def ols(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
        level: float = 0.95) -> OLSResult:
    """Ordinary least squares of y on x with a t-based interval for the slope.

    Args:
        x: Predictor.
        y: Response (same length; pairs with a NaN are dropped).
        level: Confidence level of the slope interval.

    Returns:
        Slope, intercept, standard error, interval and two-sided p-value (NaN when fewer than
        three points or no spread in x).
    """
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    n = xa.size
    if n < 2 or np.ptp(xa) == 0:
        return OLSResult(np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, int(n))
    xc = xa - xa.mean()
    sxx = float(xc @ xc)
    slope = float(xc @ (ya - ya.mean()) / sxx)
    intercept = float(ya.mean() - slope * xa.mean())
    if n < 3:
        return OLSResult(slope, intercept, np.nan, np.nan, np.nan, np.nan, int(n))
    resid = ya - intercept - slope * xa
    se = float(np.sqrt(resid @ resid / (n - 2) / sxx))
    tq = float(sps.t.ppf(0.5 + level / 2, n - 2))
    p = (0.0 if slope != 0 else 1.0) if se == 0 else float(2 * sps.t.sf(abs(slope / se), n - 2))
    return OLSResult(slope, intercept, se, slope - tq * se, slope + tq * se, p, int(n))


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control).

    Args:
        p_values: Raw p-values of one family (NaNs stay NaN and are not counted).

    Returns:
        Adjusted p-values in the input order, capped at 1.
    """
    p = np.asarray(p_values, float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok])]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out
