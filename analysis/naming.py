"""Conventions (naming game): consensus, success, convergence time, tipping points, bias.

Definitions are stated in each docstring, with references in docs/measurement.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import optimize
from scipy import stats as sps

from analysis.norms import choice_rows
from analysis.stats import RUN_KEYS, as_frame, ols

__all__ = [
    "collective_bias",
    "committed_outcome",
    "consensus",
    "convergence_time",
    "naming_convergence",
    "naming_success",
    "power_law_fit",
    "tipping_point",
]
_RUN = list(RUN_KEYS)


def consensus(events: pl.DataFrame | pl.LazyFrame, stage: str | None = None) -> pl.DataFrame:
    """Consensus fraction per round: share of the round's choices on the most common option.

    Args:
        events: Event records (every agent choosing once per round gives the consensus φ(t)).
        stage: Stage name filter.

    Returns:
        ``run_id, replica, round, consensus, top_choice, n``.
    """
    cnt = choice_rows(events, stage).group_by([*_RUN, "round", "choice"]).agg(pl.len().alias("m"))
    return cnt.sort([*_RUN, "round", "m", "choice"], descending=[False, False, False, True,
                                                                 False]).group_by(
        [*_RUN, "round"], maintain_order=True).agg(
        (pl.col("m").first() / pl.col("m").sum()).alias("consensus"),
        pl.col("choice").first().alias("top_choice"), pl.col("m").sum().alias("n"),
    ).sort([*_RUN, "round"])


def naming_success(events: pl.DataFrame | pl.LazyFrame, stage: str | None = None
                   ) -> pl.DataFrame:
    """Coordination success per round: share of interactions whose members chose alike.

    An interaction is a ``group`` of a round; it succeeds when it has at least two rows and
    every member's choice is the same non-null name.

    Args:
        events: Event records.
        stage: Stage name filter.

    Returns:
        ``run_id, replica, round, success, n_interactions``.
    """
    g = choice_rows(events, stage).group_by([*_RUN, "round", "group"]).agg(
        ((pl.len() >= 2) & (pl.col("choice").null_count() == 0)
         & (pl.col("choice").n_unique() == 1)).alias("ok"))
    return g.group_by([*_RUN, "round"]).agg(
        pl.col("ok").mean().alias("success"), pl.len().alias("n_interactions")
    ).sort([*_RUN, "round"])


def convergence_time(
    per_round: pl.DataFrame | pl.LazyFrame, value: str, threshold: float,
    window: int | None = None, by: Sequence[str] = RUN_KEYS,
) -> pl.DataFrame:
    """First round from which ``value >= threshold`` holds, with censoring.

    ``window=None``: the value must stay at or above the threshold until the last observed
    round. Otherwise it must hold on ``[t, t + window]``, which must lie within the horizon.
    Runs where no such t exists are censored (``converged = False``, ``round`` null).

    Args:
        per_round: One row per run and round with column ``value``.
        value: Column to threshold (e.g. ``consensus``, ``success``).
        threshold: θ.
        window: W in rounds, or None for "stays until the end".
        by: Columns identifying a run.

    Returns:
        ``*by, converged, round, horizon``.
    """
    rows = []
    for key, g in as_frame(per_round).sort("round").partition_by(list(by), as_dict=True).items():
        r, v = g["round"].to_numpy(), g[value].to_numpy() >= threshold
        tc = None
        if window is None:
            bad = np.flatnonzero(~v)
            start = 0 if bad.size == 0 else bad[-1] + 1
            tc = int(r[start]) if start < r.size else None
        else:
            for i in range(r.size):
                sel = (r >= r[i]) & (r <= r[i] + window)
                if r[i] + window <= r[-1] and v[sel].all():
                    tc = int(r[i])
                    break
        rows.append({**dict(zip(by, key, strict=True)), "converged": tc is not None,
                     "round": tc, "horizon": int(r[-1])})
    return pl.DataFrame(rows, schema_overrides={"round": pl.Int64}).sort(list(by))


def naming_convergence(
    events: pl.DataFrame | pl.LazyFrame, threshold: float = 1.0, window: int | None = None,
    measure: str = "consensus", stage: str | None = None,
) -> pl.DataFrame:
    """Convergence of a naming game per run, in rounds and in pair interactions.

    Args:
        events: Event records of a naming stage.
        threshold: θ on the measure.
        window: See :func:`convergence_time`.
        measure: ``"consensus"`` or ``"success"``.
        stage: Stage name filter.

    Returns:
        ``run_id, replica, converged, round, horizon, interactions`` (pair interactions up to
        and including the convergence round; null when censored), ``n_agents`` and
        ``convention`` (top choice at the last round).
    """
    per = consensus(events, stage).join(naming_success(events, stage), on=[*_RUN, "round"])
    ct = convergence_time(per, measure, threshold, window)
    per = per.sort([*_RUN, "round"]).with_columns(
        pl.col("n_interactions").cum_sum().over(_RUN).alias("cum"))
    inter = ct.join(per.select(*_RUN, "round", "cum"), on=[*_RUN, "round"], how="left")
    n_ag = choice_rows(events, stage).group_by(_RUN).agg(pl.col("agent").n_unique().alias(
        "n_agents"))
    last = per.group_by(_RUN).agg(pl.col("top_choice").last().alias("convention"))
    return inter.rename({"cum": "interactions"}).join(n_ag, on=_RUN).join(last, on=_RUN).sort(
        _RUN)


def power_law_fit(
    frame: pl.DataFrame | pl.LazyFrame, x: str, y: str, level: float = 0.95,
) -> dict[str, float]:
    """Fit ``y = a x^b`` by OLS of ``ln y`` on ``ln x`` over all positive rows.

    Args:
        frame: One row per run (drop or flag censored runs first).
        x: Size column (e.g. ``n_agents``).
        y: Time column (e.g. ``interactions``).
        level: Confidence level of the exponent's t interval.

    Returns:
        ``exponent, ci_low, ci_high, se, prefactor, r2, n``.
    """
    df = as_frame(frame).filter((pl.col(x) > 0) & (pl.col(y) > 0))
    lx, ly = np.log(df[x].to_numpy().astype(float)), np.log(df[y].to_numpy().astype(float))
    r = ols(lx, ly, level)
    r2 = float(np.corrcoef(lx, ly)[0, 1] ** 2) if lx.size > 2 else float("nan")
    return {"exponent": r.slope, "ci_low": r.ci_low, "ci_high": r.ci_high, "se": r.se,
            "prefactor": float(np.exp(r.intercept)), "r2": r2, "n": float(r.n)}


def committed_outcome(
    events: pl.DataFrame | pl.LazyFrame, agents: pl.DataFrame | pl.LazyFrame,
    committed_name: str, threshold: float = 0.9, committed_policy: str = "committed",
    stage: str | None = None,
) -> pl.DataFrame:
    """Per run: committed-minority fraction and whether its name won by the last round.

    Args:
        events: Event records of a naming stage.
        agents: Agents table; committed agents have ``policy == committed_policy``.
        committed_name: The minority's name.
        threshold: Share of the last round's choices on ``committed_name`` that counts as a
            flip.
        committed_policy: Policy label of committed agents.
        stage: Stage name filter.

    Returns:
        ``run_id, replica, minority_fraction, final_share, flipped``.
    """
    frac = as_frame(agents).group_by(_RUN).agg(
        (pl.col("policy") == committed_policy).mean().alias("minority_fraction"))
    ch = choice_rows(events, stage)
    last = ch.filter(pl.col("round") == pl.col("round").max().over(_RUN))
    share = last.group_by(_RUN).agg((pl.col("choice") == committed_name).mean().alias(
        "final_share"))
    return frac.join(share, on=_RUN).with_columns(
        (pl.col("final_share") >= threshold).alias("flipped")).sort(_RUN)


def _logit_fit(f: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    def nll(theta: np.ndarray) -> float:
        z = theta[0] * (f - theta[1])
        return float(np.sum(np.logaddexp(0, z) - y * z))

    best = min((optimize.minimize(nll, np.array([k0, c0]), method="Nelder-Mead")
                for k0 in (10.0, 50.0) for c0 in (float(np.median(f)),)), key=lambda r: r.fun)
    return float(best.x[0]), float(best.x[1])


def tipping_point(
    frame: pl.DataFrame | pl.LazyFrame, rng: np.random.Generator, *,
    fraction: str = "minority_fraction", outcome: str = "flipped", n_boot: int = 500,
    level: float = 0.95,
) -> dict[str, float]:
    """Critical mass: logistic fit ``P(flip | f) = 1 / (1 + exp(-k (f - f_c)))``.

    Fitted by maximum likelihood over runs; the interval resamples runs.

    Args:
        frame: One row per run with ``fraction`` and boolean ``outcome``.
        rng: Seeded generator.
        fraction: Committed-fraction column.
        outcome: Flip indicator column.
        n_boot: Bootstrap resamples.
        level: Confidence level.

    Returns:
        ``f_c`` (fraction at P = 0.5), ``slope`` k, ``ci_low, ci_high`` of f_c, ``n``.
    """
    df = as_frame(frame)
    f = df[fraction].to_numpy().astype(float)
    y = df[outcome].to_numpy().astype(float)
    k, fc = _logit_fit(f, y)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, f.size, f.size)
        if 0 < y[i].sum() < y.size:
            boots.append(_logit_fit(f[i], y[i])[1])
    q = (1 - level) / 2
    lo, hi = (np.quantile(boots, [q, 1 - q]) if boots else (np.nan, np.nan))
    return {"f_c": fc, "slope": k, "ci_low": float(lo), "ci_high": float(hi),
            "n": float(f.size)}


def collective_bias(
    final: pl.DataFrame | pl.LazyFrame, prior: pl.DataFrame | pl.LazyFrame,
    options: Sequence[str], final_col: str = "convention", prior_col: str = "choice",
) -> dict[str, float]:
    """Bias amplification ``B = KL(q || u) - KL(pi || u)``.

    ``q``: distribution of final conventions over runs; ``pi``: first-choice distribution of
    isolated agents; ``u``: uniform over ``options``. A chi-square test compares the final
    counts with ``pi`` (add-one smoothed).

    Args:
        final: One row per run with the winning name.
        prior: One row per isolated first choice.
        options: The K options.
        final_col: Column of ``final`` with the name.
        prior_col: Column of ``prior`` with the choice.

    Returns:
        ``bias, kl_final, kl_prior, chi2, p_value``.
    """
    opts = list(options)

    def dist(df: pl.DataFrame, col: str) -> np.ndarray:
        vc = dict(df[col].value_counts().iter_rows())
        return np.array([vc.get(o, 0) for o in opts], float)

    qc, pc = dist(as_frame(final), final_col), dist(as_frame(prior), prior_col)
    k = len(opts)

    def kl_u(c: np.ndarray) -> float:
        p = c / c.sum()
        nz = p > 0
        return float(np.sum(p[nz] * np.log(p[nz] * k)))

    expected = (pc + 1) / (pc + 1).sum() * qc.sum()
    chi = sps.chisquare(qc, expected)
    return {"bias": kl_u(qc) - kl_u(pc), "kl_final": kl_u(qc), "kl_prior": kl_u(pc),
            "chi2": float(chi.statistic), "p_value": float(chi.pvalue)}
