"""Test-retest stability of trait scores: ICCs over checkpoints (Shrout & Fleiss 1979)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from analysis.stats import RUN_KEYS, as_frame

__all__ = [
    "icc",
    "icc_table",
    "retest_stability",
]
_AGENT = [*RUN_KEYS, "agent"]


def icc(matrix: np.ndarray) -> dict[str, float]:
    """Intraclass correlations of an n targets x k occasions matrix (McGraw & Wong 1996).

    Args:
        matrix: Complete ``(n, k)`` array, rows = agents, columns = checkpoints/raters.

    Returns:
        ``icc2_1`` (absolute agreement, ICC(A,1)), ``icc3_1`` (consistency, ICC(C,1)),
        ``icc2_k``, ``icc3_k`` and the mean squares ``ms_r, ms_c, ms_e``.
    """
    x = np.asarray(matrix, float)
    n, k = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"icc needs at least 2 targets and 2 occasions, got shape {x.shape}")
    grand = x.mean()
    ss_r = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_c = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_e = ((x - grand) ** 2).sum() - ss_r - ss_c
    ms_r, ms_c = ss_r / (n - 1), ss_c / (k - 1)
    ms_e = ss_e / ((n - 1) * (k - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "icc2_1": float((ms_r - ms_e) / (ms_r + (k - 1) * ms_e + k / n * (ms_c - ms_e))),
            "icc3_1": float((ms_r - ms_e) / (ms_r + (k - 1) * ms_e)),
            "icc2_k": float((ms_r - ms_e) / (ms_r + (ms_c - ms_e) / n)),
            "icc3_k": float((ms_r - ms_e) / ms_r),
            "ms_r": float(ms_r), "ms_c": float(ms_c), "ms_e": float(ms_e),
        }


def _wide(scores: pl.DataFrame, rounds: Sequence[int] | None) -> np.ndarray:
    df = scores if rounds is None else scores.filter(pl.col("round").is_in(list(rounds)))
    wide = df.with_columns(pl.col("round").cast(pl.String)).pivot(
        on="round", index=_AGENT, values="score", sort_columns=True
    ).drop_nulls()
    cols = sorted((c for c in wide.columns if c not in _AGENT), key=int)
    return wide.select(cols).to_numpy()


def icc_table(
    scores: pl.DataFrame | pl.LazyFrame, rounds: Sequence[int] | None = None
) -> pl.DataFrame:
    """ICC(2,1) and ICC(3,1) of checkpoint scores per trait (agents x rounds).

    Agents missing any of the selected rounds are dropped.

    Args:
        scores: Output of :func:`trait_scores`.
        rounds: Checkpoint rounds to use (default: all).

    Returns:
        One row per trait with ``icc2_1, icc3_1, icc2_k, icc3_k, n_agents, k``.
    """
    rows = []
    for (trait,), g in as_frame(scores).partition_by("trait", as_dict=True).items():
        m = _wide(g, rounds)
        if m.shape[0] < 2 or m.shape[1] < 2:
            continue
        res = icc(m)
        rows.append({"trait": trait, **{k: res[k] for k in ("icc2_1", "icc3_1", "icc2_k",
                                                             "icc3_k")},
                     "n_agents": m.shape[0], "k": m.shape[1]})
    return pl.DataFrame(rows).sort("trait")


def retest_stability(
    scores: pl.DataFrame | pl.LazyFrame, first: int, second: int
) -> pl.DataFrame:
    """Rank-order stability and mean-level change between two checkpoint rounds, per trait.

    Args:
        scores: Output of :func:`trait_scores`.
        first: Round of the first administration.
        second: Round of the second administration.

    Returns:
        One row per trait: ``r`` (Pearson across agents), ``mean_change``, ``d_z`` and ``n``.
    """
    rows = []
    for (trait,), g in as_frame(scores).partition_by("trait", as_dict=True).items():
        m = _wide(g, [first, second])
        if m.shape[1] != 2 or m.shape[0] < 3:
            continue
        diff = m[:, 1] - m[:, 0]
        sd = diff.std(ddof=1)
        rows.append({"trait": trait, "r": float(np.corrcoef(m[:, 0], m[:, 1])[0, 1]),
                     "mean_change": float(diff.mean()),
                     "d_z": float(diff.mean() / sd) if sd > 0 else float("nan"),
                     "n": int(m.shape[0])})
    return pl.DataFrame(rows).sort("trait")
