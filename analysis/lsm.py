"""Language Style Matching formulas over function-word category counts.

Counts come from :func:`analysis.text.category_counts`; rates are in percent of tokens.
Definitions and references: docs/measurement.md, linguistic alignment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["EPS", "lsm_score", "nanmean", "rlsm_by_category"]

EPS = 0.0001
"""Ireland & Pennebaker's constant in the LSM denominator."""


def lsm_score(counts_a: np.ndarray, tokens_a: float, counts_b: np.ndarray,
              tokens_b: float) -> float:
    """``mean_c 1 - |p_a - p_b| / (p_a + p_b + 0.0001)``; NaN when a side has no function word.

    A speaker without a single function word has nothing to match: the formula would score
    two such speakers 1.0 on joint absence, so the value is undefined instead.
    """
    if counts_a.sum() == 0 or counts_b.sum() == 0:
        return float("nan")
    pa = 100 * counts_a / tokens_a
    pb = 100 * counts_b / tokens_b
    return float(np.mean(1 - np.abs(pa - pb) / (pa + pb + EPS)))


def rlsm_by_category(prime: np.ndarray, prime_tokens: float, target: np.ndarray,
                     target_tokens: float) -> np.ndarray:
    """Per-category reciprocal LSM of a target turn against its prime.

    ``1 - |p_t - p_{t-1}| / (p_t + p_{t-1})``: 0 for a category the target uses and the prime
    lacks, NaN (undefined) for one absent from both.
    """
    pp = 100 * prime / max(prime_tokens, 1.0)
    pt = 100 * target / max(target_tokens, 1.0)
    den = pp + pt
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 1 - np.abs(pp - pt) / den, np.nan)


def nanmean(values: Sequence[float] | np.ndarray) -> float:
    """Mean of the finite values; NaN when there are none."""
    finite = [float(v) for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
