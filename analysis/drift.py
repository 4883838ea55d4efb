"""Personality drift: trait scores at checkpoints, their change, reliability and contagion.

A *checkpoint* is one survey administration ``(run_id, replica, agent, round)``; assigned
profiles in ``[0, 1]`` map to the 1..5 scale as ``1 + 4 p`` (docs/measurement.md, drift).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import stats as sps

from agents.persona import TRAITS
from analysis.psychometrics import domain_scores, with_acquiescence
from analysis.stats import RUN_KEYS, as_frame, holm, ols

__all__ = [
    "TRAITS",
    "detect_drift",
    "noise_floor",
    "partner_contagion",
    "persona_retention",
    "profile_distance",
    "reference_sem",
    "reliable_change",
    "trait_scores",
    "trait_slopes",
    "trajectories",
]

_AGENT = [*RUN_KEYS, "agent"]
_CHECKPOINT = [*_AGENT, "round"]


def trait_scores(
    surveys: pl.DataFrame | pl.LazyFrame, by: Sequence[str] = ()
) -> pl.DataFrame:
    """Trait score per checkpoint: :func:`analysis.psychometrics.domain_scores` per checkpoint.

    Answers are reverse keyed on the scale the item was asked on, averaged per item (over
    repeats, paraphrases and orders, unless those columns are listed in ``by``), then items
    are averaged with equal weight. Refused answers are dropped.

    Args:
        surveys: Survey records (schema of a run's ``surveys/`` shards).
        by: Extra columns to keep separate, e.g. ``("repeat",)`` for per-repeat scores.

    Returns:
        Columns ``run_id, replica, agent, round, *by, trait, score, n_items, acquiescence``
        (the checkpoint's yea-saying index, :func:`analysis.psychometrics.acquiescence_index`).
    """
    keys = [*_CHECKPOINT, *by]
    frame = as_frame(surveys)
    scores = domain_scores(frame, by=keys).filter(pl.col("n_items") > 0)
    return with_acquiescence(scores, frame, keys).select(
        [*keys, "trait", "score", "n_items", "acquiescence"]).sort([*keys, "trait"])


def trajectories(scores: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Add the first-checkpoint score and the change from it to every checkpoint row.

    Args:
        scores: Output of :func:`trait_scores`.

    Returns:
        ``scores`` plus ``score0`` (score at the agent's first round for that trait),
        ``change = score - score0`` and ``t`` (rounds since the first checkpoint).
    """
    g = [*_AGENT, "trait"]
    return (
        as_frame(scores)
        .sort([*g, "round"])
        .with_columns(
            pl.col("score").first().over(g).alias("score0"),
            (pl.col("round") - pl.col("round").min().over(g)).alias("t"),
        )
        .with_columns((pl.col("score") - pl.col("score0")).alias("change"))
    )


def _targets(agents: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return (
        as_frame(agents)
        .unpivot(index=_AGENT, on=list(TRAITS), variable_name="trait", value_name="p")
        .with_columns((1.0 + 4.0 * pl.col("p")).alias("target"))
        .drop("p")
    )


def profile_distance(
    scores: pl.DataFrame | pl.LazyFrame, agents: pl.DataFrame | pl.LazyFrame,
    scale: float = 1.0,
) -> pl.DataFrame:
    """Distance of measured scores from the assigned profile at each checkpoint.

    ``D = sqrt(mean_d ((s_d - target_d) / scale)^2)`` with ``target = 1 + 4 p``; ``r`` is the
    profile correlation across traits (shape agreement); ``drift = D - D_first``.

    Args:
        scores: Output of :func:`trait_scores`.
        agents: Agents table with the assigned Big Five profile in ``[0, 1]``.
        scale: Divisor of score differences (e.g. a human-norm SD for z units).

    Returns:
        One row per checkpoint: ``distance, profile_r, drift, n_traits``.
    """
    df = as_frame(scores).join(_targets(agents), on=[*_AGENT, "trait"], how="inner")
    out = df.group_by(_CHECKPOINT).agg(
        (((pl.col("score") - pl.col("target")) / scale) ** 2).mean().sqrt().alias("distance"),
        pl.corr("score", "target").alias("profile_r"),
        pl.len().alias("n_traits"),
    ).sort(_CHECKPOINT)
    return out.with_columns(
        (pl.col("distance") - pl.col("distance").first().over(_AGENT)).alias("drift")
    )


def persona_retention(
    scores: pl.DataFrame | pl.LazyFrame, baseline: pl.DataFrame | pl.LazyFrame,
    min_offset: float = 0.05,
) -> pl.DataFrame:
    """Share of the persona's initial offset from the persona-free default that is retained.

    ``R_t = (s_t - s0_d) / (s_first - s0_d)`` with ``s0_d`` the mean score on trait d of the
    persona-free baseline (1 = retained, 0 = back to the default, < 0 = overshoot).

    Args:
        scores: Output of :func:`trait_scores` for persona-conditioned agents.
        baseline: :func:`trait_scores` of persona-free agents (any rounds; pooled per trait).
        min_offset: Initial offsets smaller than this (in scale points) give a null R.

    Returns:
        ``scores`` rows plus ``default``, ``offset0``, ``retention``, ``default_pull``.
    """
    base = as_frame(baseline).group_by("trait").agg(pl.col("score").mean().alias("default"))
    df = trajectories(scores).join(base, on="trait", how="left")
    return df.with_columns(
        (pl.col("score0") - pl.col("default")).alias("offset0")
    ).with_columns(
        pl.when(pl.col("offset0").abs() >= min_offset)
        .then((pl.col("score") - pl.col("default")) / pl.col("offset0"))
        .otherwise(None).alias("retention")
    ).with_columns((1.0 - pl.col("retention")).alias("default_pull"))


def trait_slopes(
    scores: pl.DataFrame | pl.LazyFrame,
    by: Sequence[str] = (*_AGENT, "trait"),
    level: float = 0.95,
) -> pl.DataFrame:
    """OLS slope of score on round per group (default: per agent and trait), vectorised.

    Use ``by=("run_id", "replica", "trait")`` for a pooled per-run slope (all agents' points).

    Args:
        scores: Output of :func:`trait_scores`.
        by: Grouping columns.
        level: Confidence level of the t interval.

    Returns:
        One row per group: ``slope, intercept, se, ci_low, ci_high, p_value, n`` (NaN where
        undefined: fewer than 3 points or a single round).
    """
    x, y = pl.col("round").cast(pl.Float64), pl.col("score")
    g = as_frame(scores).group_by(list(by)).agg(
        pl.len().alias("n"), x.mean().alias("mx"), y.mean().alias("my"),
        ((x - x.mean()) ** 2).sum().alias("sxx"),
        ((x - x.mean()) * (y - y.mean())).sum().alias("sxy"),
        ((y - y.mean()) ** 2).sum().alias("syy"),
    ).sort(list(by))
    n, sxx, sxy, syy = (g[c].to_numpy().astype(float) for c in ("n", "sxx", "sxy", "syy"))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(sxx > 0, sxy / sxx, np.nan)
        rss = np.maximum(syy - slope * sxy, 0.0)
        se = np.where(n > 2, np.sqrt(rss / (n - 2) / sxx), np.nan)
        df = np.maximum(n - 2, 1)
        tq = sps.t.ppf(0.5 + level / 2, df)
        p = np.where(se > 0, 2 * sps.t.sf(np.abs(slope / se), df),
                     np.where(slope != 0, 0.0, 1.0))
    p = np.where(np.isfinite(se), p, np.nan)
    return g.select(*by).with_columns(
        pl.Series("slope", slope), pl.Series("intercept", g["my"].to_numpy() - slope
                                             * g["mx"].to_numpy()),
        pl.Series("se", se), pl.Series("ci_low", slope - tq * se),
        pl.Series("ci_high", slope + tq * se), pl.Series("p_value", p),
        pl.Series("n", n.astype(np.int64)),
    )


def noise_floor(
    surveys: pl.DataFrame | pl.LazyFrame, over: Sequence[str] = ("repeat",),
    by: Sequence[str] = ("trait",),
) -> pl.DataFrame:
    """Measurement noise of a checkpoint score, estimated from replicate administrations.

    Per-replicate scores (one per value of the ``over`` columns) are computed at every
    checkpoint; their pooled within-checkpoint variance is the error variance of one
    replicate, and ``sem = sqrt(var_within / k)`` is the standard error of the score averaged
    over the ``k`` replicates. ``r_xx = 1 - sem^2 / var_total`` is the implied reliability
    (Jacobson & Truax's ``SEM = sd * sqrt(1 - r_xx)`` read backwards).

    Args:
        surveys: Survey records.
        over: Columns whose levels are replicate measurements (repeats, paraphrases, ...).
        by: Columns to estimate separate noise floors for.

    Returns:
        One row per ``by`` group: ``var_within, k, sem, sd_total, r_xx``.
    """
    rep = trait_scores(surveys, by=over)
    cp = [*_CHECKPOINT, "trait"]
    within = rep.group_by(cp).agg(
        pl.col("score").var(ddof=1).alias("v"), pl.len().alias("k")
    ).filter(pl.col("k") >= 2)
    total = trait_scores(surveys).group_by(list(by)).agg(
        pl.col("score").std(ddof=1).alias("sd_total")
    )
    out = within.group_by(list(by)).agg(
        ((pl.col("v") * (pl.col("k") - 1)).sum() / (pl.col("k") - 1).sum()).alias("var_within"),
        pl.col("k").mean().alias("k"),
    ).join(total, on=list(by), how="left")
    return out.with_columns((pl.col("var_within") / pl.col("k")).sqrt().alias("sem")).with_columns(
        (1.0 - pl.col("sem") ** 2 / pl.col("sd_total") ** 2).alias("r_xx")
    ).sort(list(by))


def reference_sem(
    reference: pl.DataFrame | pl.LazyFrame, *, reliability: float | None = None,
    by: Sequence[str] = ("trait",),
) -> pl.DataFrame:
    """Jacobson & Truax (1991) standard error of measurement from a reference sample.

    ``SEM = SD_1 * sqrt(1 - r_xx)``, where ``SD_1`` is the standard deviation of the
    reference sample's scores at its first checkpoint and ``r_xx`` the reliability of the
    score. The reference sample is a set of agents whose change is *not* of interest: the
    persona-only (``isolated``) administrations at the same checkpoints, or agents surveyed
    twice without interacting. Without ``reliability``, ``r_xx`` is their test-retest
    correlation (Pearson, first vs last checkpoint of each agent).

    A reliability of 1 (identical retests: score-mode repeats are deterministic) or a zero
    SD gives no usable error, so ``sem`` is null there rather than 0.

    Args:
        reference: :func:`trait_scores` of the reference sample (two or more checkpoints per
            agent unless ``reliability`` is given).
        reliability: A known reliability (e.g. a published test-retest) instead of the
            estimate.
        by: Columns to estimate separate errors for.

    Returns:
        One row per ``by`` group: ``sd_first, r_xx, sem, n_agents``.
    """
    sc = as_frame(reference)
    ends = sc.sort([*_AGENT, *by, "round"]).group_by([*_AGENT, *by], maintain_order=True).agg(
        pl.col("score").first().alias("first"), pl.col("score").last().alias("last"))
    r_xx = (pl.lit(float(reliability)) if reliability is not None
            else pl.corr("first", "last", method="pearson"))
    out = ends.group_by(list(by)).agg(
        pl.col("first").std(ddof=1).alias("sd_first"), r_xx.alias("r_xx"),
        pl.len().alias("n_agents"))
    r_ok = pl.col("r_xx").fill_nan(None) < 1.0
    usable = (r_ok & (pl.col("sd_first").fill_nan(None) > 0)).fill_null(False)
    sem = pl.col("sd_first") * (1.0 - pl.col("r_xx").clip(upper_bound=1.0)).sqrt()
    return out.with_columns(pl.when(usable).then(sem).otherwise(None).alias("sem")).sort(list(by))


def reliable_change(
    scores: pl.DataFrame | pl.LazyFrame, noise: pl.DataFrame | pl.LazyFrame,
    threshold: float = 1.96,
) -> pl.DataFrame:
    """Jacobson–Truax reliable change index of every checkpoint against the first one.

    ``RCI = (s_t - s_first) / (sqrt(2) * SEM)``; ``|RCI| > threshold`` is a reliable change.
    A zero change is never reliable (``rci = 0``). Where the error is unknown or zero (a null,
    NaN or non-positive ``sem``, e.g. from identical score-mode repeats) a non-zero change has
    no RCI: ``rci`` and ``reliable`` are null, never a NaN compared as true.

    Args:
        scores: Output of :func:`trait_scores`.
        noise: Output of :func:`reference_sem` (the defensible error model) or
            :func:`noise_floor` (replicate noise only); needs ``trait`` and ``sem``, joined on
            the columns they share besides ``sem``.
        threshold: Critical |RCI| (1.96 for a two-sided 5% criterion).

    Returns:
        :func:`trajectories` rows plus ``sem``, ``rci`` and boolean ``reliable``.
    """
    nz = as_frame(noise)
    keys = [c for c in nz.columns if c in ("trait", *RUN_KEYS, "agent")]
    df = trajectories(scores).join(nz.select([*keys, "sem"]), on=keys, how="left")
    sem = pl.col("sem").fill_nan(None)
    rci = (pl.when(pl.col("change") == 0).then(pl.lit(0.0))
           .when(sem > 0).then(pl.col("change") / (np.sqrt(2.0) * sem))
           .otherwise(None))
    return df.with_columns(rci.alias("rci")).with_columns(
        (pl.col("rci").abs() > threshold).alias("reliable"))


def partner_contagion(
    scores: pl.DataFrame | pl.LazyFrame, events: pl.DataFrame | pl.LazyFrame,
    level: float = 0.95,
) -> pl.DataFrame:
    """Susceptibility γ from ``Δs_A = γ (s_B - s_A) + δ + ε`` between consecutive checkpoints.

    For agent A and consecutive checkpoints ``t0 < t1``, the partners B are all ids in the
    ``partners`` lists of A's events with ``t0 < round <= t1`` (weighted by how often they
    occur); ``s_B`` is their weighted mean score at ``t0``. One OLS per trait pooled over
    agents and intervals; the interval is the OLS t interval (rows within a run are not
    independent: bootstrap run-level γs with :func:`analysis.stats.bootstrap_ci` for inference
    across runs).

    Args:
        scores: Output of :func:`trait_scores`.
        events: Event records (``partners`` as ``list[str]``).
        level: Confidence level.

    Returns:
        One row per trait: ``gamma, intercept, se, ci_low, ci_high, p_value, n``.
    """
    sc = as_frame(scores)
    traj = sc.sort([*_AGENT, "trait", "round"]).with_columns(
        pl.col("round").shift(-1).over([*_AGENT, "trait"]).alias("t1"),
        pl.col("score").shift(-1).over([*_AGENT, "trait"]).alias("s1"),
    ).drop_nulls(["t1"]).rename({"round": "t0", "score": "s0"})
    ev = as_frame(events).select([*_AGENT, "round", "partners"]).explode("partners").drop_nulls()
    ev = ev.rename({"partners": "partner"})
    cp = traj.select([*_AGENT, "trait", "t0", "t1"]).unique()
    pairs = cp.join(ev, on=_AGENT, how="inner").filter(
        (pl.col("round") > pl.col("t0")) & (pl.col("round") <= pl.col("t1"))
    )
    ps = sc.select([*RUN_KEYS, pl.col("agent").alias("partner"), "trait",
                    pl.col("round").alias("t0"), pl.col("score").alias("sB")])
    pb = pairs.join(ps, on=[*RUN_KEYS, "partner", "trait", "t0"], how="inner").group_by(
        [*_AGENT, "trait", "t0"]).agg(pl.col("sB").mean())
    df = traj.join(pb, on=[*_AGENT, "trait", "t0"], how="inner").with_columns(
        (pl.col("s1") - pl.col("s0")).alias("dy"), (pl.col("sB") - pl.col("s0")).alias("gap")
    )
    rows = []
    for (trait,), g in df.partition_by("trait", as_dict=True).items():
        r = ols(g["gap"].to_numpy(), g["dy"].to_numpy(), level)
        d = r.__dict__.copy()
        d["gamma"] = d.pop("slope")
        rows.append({"trait": trait, **d})
    return pl.DataFrame(rows).sort("trait") if rows else pl.DataFrame()


def detect_drift(
    data: pl.DataFrame | pl.LazyFrame, alpha: float = 0.05,
    by: Sequence[str] = RUN_KEYS,
) -> pl.DataFrame:
    """Flag mean-level drift per run and trait with a family-wise alpha per run.

    Within each run and trait, every agent's OLS slope of score on round is one observation;
    a one-sample t-test asks whether the mean slope is 0 (agents are the replicates, so
    per-agent offsets such as acquiescence or profile cancel). p-values are Holm-adjusted
    across the traits of a run, so a null run raises any flag with probability <= alpha.

    Args:
        data: Survey records or the output of :func:`trait_scores`.
        alpha: Family-wise error rate per run.
        by: Columns identifying a run.

    Returns:
        One row per run and trait: ``mean_slope, ci_low, ci_high, t, p_value, p_holm,
        n_agents, drift`` (bool) and ``direction`` (+1 / -1 / 0).
    """
    df = as_frame(data)
    if "score" not in df.columns:
        df = trait_scores(df)
    slopes = trait_slopes(df, by=(*by, "agent", "trait")).filter(pl.col("slope").is_not_nan())
    g = slopes.group_by([*by, "trait"]).agg(
        pl.col("slope").mean().alias("mean_slope"), pl.col("slope").std(ddof=1).alias("sd"),
        pl.len().alias("n_agents"),
    ).sort([*by, "trait"])
    m, sd = g["mean_slope"].to_numpy(), g["sd"].fill_null(np.nan).to_numpy()
    n = g["n_agents"].to_numpy().astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sd / np.sqrt(n)
        ok = (n > 1) & (sd > 0)
        t = np.where(ok, m / se, np.nan)
        dfree = np.maximum(n - 1, 1)
        p = np.where(ok, 2 * sps.t.sf(np.abs(t), dfree), np.nan)
        tq = sps.t.ppf(1 - alpha / 2, dfree)
    out = g.drop("sd").with_columns(
        pl.Series("ci_low", np.where(ok, m - tq * se, np.nan)),
        pl.Series("ci_high", np.where(ok, m + tq * se, np.nan)),
        pl.Series("t", t), pl.Series("p_value", p),
    )

    adj = np.empty(out.height)
    for idx in out.with_row_index("_i").group_by(list(by)).agg("_i")["_i"].to_list():
        adj[idx] = holm(out["p_value"].to_numpy()[idx])
    return out.with_columns(pl.Series("p_holm", adj)).with_columns(
        (pl.col("p_holm") < alpha).fill_null(False).alias("drift"),
    ).with_columns(
        pl.when(pl.col("drift")).then(pl.col("mean_slope").sign()).otherwise(0.0)
        .cast(pl.Int8).alias("direction")
    )
