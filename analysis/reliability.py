"""Reliability of questionnaire scores: Cronbach's alpha and McDonald's omega (one-factor)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from analysis.psychometrics import RESPONDENT, answered_rows, require_columns, reverse_key

__all__ = [
    "OneFactorFit",
    "alpha_from_matrix",
    "cronbach_alpha",
    "item_matrix",
    "mcdonald_omega",
    "omega_from_matrix",
    "one_factor_fit",
    "one_factor_loadings",
]


def item_matrix(
    df: pl.DataFrame, *, respondent: Sequence[str] = RESPONDENT, value: str = "expected",
    scale_min: int = 1, scale_max: int = 5,
) -> tuple[np.ndarray, list[str]]:
    """Respondents x items matrix of keyed answers for one trait of one instrument.

    Repeated administrations of an item to a respondent are averaged; respondents missing
    any item are dropped (listwise deletion).

    Returns:
        ``(matrix, item_ids)`` with items in sorted id order.
    """
    require_columns(df, [*respondent, "item_id", "keyed", value], "item_matrix")
    keyed = reverse_key(answered_rows(df, value), value=value, scale_min=scale_min,
                        scale_max=scale_max)
    wide = keyed.pivot(on="item_id", index=list(respondent), values="scored",
                       aggregate_function="mean").drop_nulls()
    items = sorted(c for c in wide.columns if c not in respondent)
    return wide.select(items).to_numpy().astype(float), items


def alpha_from_matrix(x: np.ndarray) -> float:
    """Cronbach's alpha of a respondents x items matrix (NaN if undefined)."""
    x = np.asarray(x, dtype=float)
    n, k = x.shape
    if k < 2 or n < 2:
        return float("nan")
    total_var = x.sum(axis=1).var(ddof=1)
    if total_var <= 0:
        return float("nan")
    return float(k / (k - 1) * (1.0 - x.var(axis=0, ddof=1).sum() / total_var))


@dataclass(frozen=True, slots=True)
class OneFactorFit:
    """A one-factor model of an item correlation matrix.

    Attributes:
        loadings: standardised loadings, each capped at ``sqrt(0.995)`` in absolute value.
        heywood: True when the unconstrained solution had a loading at or above 1 (an
            improper solution: a negative unique variance), which was then capped.
        converged: True when the communalities settled within the iteration cap.
    """

    loadings: np.ndarray
    heywood: bool
    converged: bool


_MAX_COMMUNALITY = 0.995


def one_factor_fit(corr: np.ndarray, *, max_iter: int = 500, tol: float = 1e-6) -> OneFactorFit:
    """Standardised one-factor loadings by iterated principal-axis factoring.

    Starts from squared multiple correlations; iterates until no communality changes by more
    than ``tol``. Communalities are kept at or below 0.995 during the iterations; a loading
    the eigen-solution puts at or above 1 (a Heywood case) is capped and flagged.

    Args:
        corr: item correlation matrix.
        max_iter: iteration cap.
        tol: stop when no communality changes by more than this.

    Returns:
        The fit, loadings signed so that their sum is positive.
    """
    r = np.asarray(corr, dtype=float)
    try:
        h2 = 1.0 - 1.0 / np.diag(np.linalg.inv(r))
    except np.linalg.LinAlgError:
        h2 = np.max(np.abs(r - np.eye(len(r))), axis=0)
    h2 = np.clip(h2, 0.005, _MAX_COMMUNALITY)
    loadings, converged = np.sqrt(h2), False
    for _ in range(max_iter):
        reduced = r.copy()
        np.fill_diagonal(reduced, h2)
        vals, vecs = np.linalg.eigh(reduced)
        loadings = vecs[:, -1] * np.sqrt(max(vals[-1], 0.0))
        new_h2 = np.clip(loadings**2, 0.0, _MAX_COMMUNALITY)
        converged = bool(np.max(np.abs(new_h2 - h2)) < tol)
        h2 = new_h2
        if converged:
            break
    loadings = loadings if loadings.sum() >= 0 else -loadings
    cap = float(np.sqrt(_MAX_COMMUNALITY))
    heywood = bool(np.any(np.abs(loadings) >= 1.0))
    return OneFactorFit(np.clip(loadings, -cap, cap), heywood, converged)


def one_factor_loadings(corr: np.ndarray, *, max_iter: int = 500,
                        tol: float = 1e-6) -> np.ndarray:
    """The loadings of :func:`one_factor_fit` (capped below 1)."""
    return one_factor_fit(corr, max_iter=max_iter, tol=tol).loadings


def _omega_fit(x: np.ndarray) -> tuple[float, OneFactorFit | None]:
    x = np.asarray(x, dtype=float)
    n, k = x.shape
    if k < 2 or n < 3:
        return float("nan"), None
    sd = x.std(axis=0, ddof=1)
    if np.any(sd <= 0):
        return float("nan"), None
    fit = one_factor_fit(np.corrcoef(x, rowvar=False))
    lam = fit.loadings * sd
    psi = np.clip(sd**2 - lam**2, 0.0, None)
    common = lam.sum() ** 2
    return float(common / (common + psi.sum())), fit


def omega_from_matrix(x: np.ndarray) -> float:
    """McDonald's omega_total of the unit-weighted sum score (one-factor PAF model)."""
    return _omega_fit(x)[0]


def _reliability(df: pl.DataFrame, fn_name: str, fn: Callable[[np.ndarray], float],
                 respondent: Sequence[str],
                 value: str, scale_min: int, scale_max: int) -> pl.DataFrame:
    require_columns(df, ["instrument", "trait", "item_id", "keyed", *respondent, value], fn_name)
    rows = []
    for (inst, trait), part in df.group_by(["instrument", "trait"], maintain_order=True):
        x, items = item_matrix(part, respondent=respondent, value=value,
                               scale_min=scale_min, scale_max=scale_max)
        rows.append({"instrument": inst, "trait": trait, fn_name: fn(x),
                     "n_items": len(items), "n_respondents": x.shape[0]})
    schema = {"instrument": pl.String, "trait": pl.String, fn_name: pl.Float64,
              "n_items": pl.Int64, "n_respondents": pl.Int64}
    return pl.DataFrame(rows, schema=schema).sort(["instrument", "trait"])


def cronbach_alpha(
    df: pl.DataFrame, *, respondent: Sequence[str] = RESPONDENT, value: str = "expected",
    scale_min: int = 1, scale_max: int = 5,
) -> pl.DataFrame:
    """Cronbach's alpha per instrument and trait across respondents.

    Returns:
        Columns ``instrument, trait, alpha, n_items, n_respondents``.
    """
    return _reliability(df, "alpha", alpha_from_matrix, respondent, value, scale_min,
                        scale_max)


def mcdonald_omega(
    df: pl.DataFrame, *, respondent: Sequence[str] = RESPONDENT, value: str = "expected",
    scale_min: int = 1, scale_max: int = 5,
) -> pl.DataFrame:
    """McDonald's omega_total per instrument and trait (one-factor model, see module doc).

    The model's standardised loadings are reported beside omega (in item id order), with
    ``heywood`` true where a loading reached 1 and was capped: omega is then an upper bound
    of a misfitting model, not a reliability to report alone.

    Returns:
        Columns ``instrument, trait, omega, n_items, n_respondents, items, loadings, heywood``.
    """
    require_columns(df, ["instrument", "trait", "item_id", "keyed", *respondent, value],
                    "mcdonald_omega")
    rows = []
    for (inst, trait), part in df.group_by(["instrument", "trait"], maintain_order=True):
        x, items = item_matrix(part, respondent=respondent, value=value,
                               scale_min=scale_min, scale_max=scale_max)
        omega, fit = _omega_fit(x)
        rows.append({"instrument": inst, "trait": trait, "omega": omega,
                     "n_items": len(items), "n_respondents": x.shape[0], "items": items,
                     "loadings": None if fit is None else fit.loadings.tolist(),
                     "heywood": None if fit is None else fit.heywood})
    schema = {"instrument": pl.String, "trait": pl.String, "omega": pl.Float64,
              "n_items": pl.Int64, "n_respondents": pl.Int64, "items": pl.List(pl.String),
              "loadings": pl.List(pl.Float64), "heywood": pl.Boolean}
    return pl.DataFrame(rows, schema=schema).sort(["instrument", "trait"])
