"""Synthetic questionnaire responders with known traits, loadings and acquiescence.

Test support for tests/psychometrics. Model per respondent r, item i of trait t::

    z_ri  = keyed_i * lambda_i * theta_rt + sqrt(1 - lambda_i^2) * e_ri,  e ~ N(0, 1)
    x_ri  = midpoint + scale * z_ri + acquiescence_r          (optionally clipped to 1..5)

theta ~ N(0, 1) independently per trait, so lambda_i^2 is the item reliability and the
population alpha of k parallel items is k r / (1 + (k - 1) r) (Spearman-Brown).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import stats as sps

from agents.instruments import Instrument

SURVEY_SCHEMA = {
    "run_id": pl.String, "replica": pl.Int64, "agent": pl.String, "instrument": pl.String,
    "item_id": pl.String, "trait": pl.String, "keyed": pl.Int64, "order": pl.String,
    "paraphrase": pl.Int64, "repeat": pl.Int64, "expected": pl.Float64, "argmax": pl.Int32,
    "entropy": pl.Float64, "refused": pl.Boolean,
}


def agent_names(n: int) -> list[str]:
    return [f"agent{r:04d}" for r in range(n)]


def draw_traits(n: int, traits: Sequence[str], seed: int) -> pl.DataFrame:
    """Long table agent, trait, theta (N(0,1)), assigned = Phi(theta) in [0, 1]."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((n, len(traits)))
    names = agent_names(n)
    return pl.DataFrame({
        "agent": [a for a in names for _ in traits],
        "trait": [t for _ in names for t in traits],
        "theta": theta.ravel(),
        "assigned": sps.norm.cdf(theta.ravel()),
    })


def simulate_survey(
    instrument: Instrument,
    truth: pl.DataFrame,
    *,
    seed: int,
    item_reliability: float | Sequence[float] = 0.6,
    acquiescence: float | np.ndarray = 0.0,
    scale: float = 1.0,
    clip: bool = True,
    order: str = "asc",
    refuse_prob: float = 0.0,
    run_id: str = "run0",
) -> pl.DataFrame:
    """Answer every item of ``instrument`` for every agent in ``truth``.

    Args:
        instrument: the questionnaire.
        truth: output of :func:`draw_traits` (agent, trait, theta).
        seed: noise seed.
        item_reliability: lambda^2 for all items, or one value per item.
        acquiescence: additive bias on raw answers (scalar or one per agent).
        scale: scale points per latent SD.
        clip: clip answers to the scale range.
        order: value of the option-order column.
        refuse_prob: probability that an answer is refused (expected/argmax null).
        run_id: run id column value.
    """
    rng = np.random.default_rng(seed)
    agents = truth["agent"].unique(maintain_order=True).to_list()
    wide = truth.pivot(on="trait", index="agent", values="theta")
    wide = wide.join(pl.DataFrame({"agent": agents}), on="agent", how="right")
    n, k = len(agents), len(instrument.items)
    rel = np.broadcast_to(np.asarray(item_reliability, dtype=float), (k,))
    lam = np.sqrt(rel)
    theta = np.column_stack([wide[it.trait].to_numpy() for it in instrument.items])
    keyed = np.array([it.keyed for it in instrument.items], dtype=float)
    z = keyed * lam * theta + np.sqrt(1 - lam**2) * rng.standard_normal((n, k))
    acq = np.asarray(acquiescence, dtype=float).reshape(-1, 1)
    acq = np.broadcast_to(acq, (n, 1))
    x = instrument.midpoint + scale * z + acq
    if clip:
        x = np.clip(x, instrument.scale_min, instrument.scale_max)
    argmax = np.clip(np.rint(x), instrument.scale_min, instrument.scale_max)
    refused = rng.random((n, k)) < refuse_prob
    expected = np.where(refused, np.nan, x).ravel()
    frame = pl.DataFrame({
        "run_id": [run_id] * (n * k),
        "replica": [0] * (n * k),
        "agent": [a for a in agents for _ in range(k)],
        "instrument": [instrument.name] * (n * k),
        "item_id": [it.id for _ in agents for it in instrument.items],
        "trait": [it.trait for _ in agents for it in instrument.items],
        "keyed": [it.keyed for _ in agents for it in instrument.items],
        "order": [order] * (n * k),
        "paraphrase": [0] * (n * k),
        "repeat": [0] * (n * k),
        "expected": expected,
        "argmax": argmax.ravel(),
        "entropy": [0.0] * (n * k),
        "refused": refused.ravel(),
    })
    frame = frame.with_columns(
        pl.col("expected").fill_nan(None),
        pl.when(pl.col("refused")).then(None).otherwise(pl.col("argmax")).alias("argmax"),
    )
    return frame.cast(SURVEY_SCHEMA)  # type: ignore[arg-type]


def matrix_to_survey(x: np.ndarray, *, trait: str = "extraversion",
                     instrument: str = "synthetic") -> pl.DataFrame:
    """Wrap a respondents x items matrix (all + keyed) as survey rows."""
    n, k = x.shape
    names = agent_names(n)
    return pl.DataFrame({
        "run_id": ["run0"] * (n * k), "replica": [0] * (n * k),
        "agent": [a for a in names for _ in range(k)],
        "instrument": [instrument] * (n * k),
        "item_id": [f"I{j:02d}" for _ in names for j in range(k)],
        "trait": [trait] * (n * k), "keyed": [1] * (n * k), "order": ["asc"] * (n * k),
        "paraphrase": [0] * (n * k), "repeat": [0] * (n * k),
        "expected": x.ravel(), "argmax": np.rint(x).ravel(),
        "entropy": [0.0] * (n * k), "refused": [False] * (n * k),
    }).cast(SURVEY_SCHEMA)  # type: ignore[arg-type]


def congeneric_matrix(n: int, loadings: Sequence[float], seed: int,
                      error_sd: Sequence[float] | float = 1.0) -> np.ndarray:
    """x_ij = 3 + lambda_j * f_i + e_ij with f, e ~ N(0, 1) (e scaled by error_sd)."""
    rng = np.random.default_rng(seed)
    lam = np.asarray(loadings, dtype=float)
    f = rng.standard_normal((n, 1))
    e = rng.standard_normal((n, len(lam))) * np.asarray(error_sd, dtype=float)
    return 3.0 + f * lam + e


def theoretical_omega(loadings: Sequence[float], error_var: Sequence[float] | float) -> float:
    lam = np.asarray(loadings, dtype=float)
    psi = np.broadcast_to(np.asarray(error_var, dtype=float), lam.shape)
    return float(lam.sum() ** 2 / (lam.sum() ** 2 + psi.sum()))
