"""Emergent norms: cooperation, conventions (naming game), tipping points, sanctions.

Definitions are stated in each docstring, with references in docs/measurement.md. "Partner" in
a pairwise stage is the first id of the row's ``partners`` list in that round; histories are
per agent, so "partner C last round" means "whoever I played last round cooperated with me",
which for fixed pairs is the usual conditional-cooperation definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analysis.stats import RUN_KEYS, as_frame

__all__ = [
    "choice_entropy",
    "choice_rows",
    "conditional_cooperation",
    "cooperation_rate",
    "norm_violations",
]
_RUN = list(RUN_KEYS)


def choice_rows(events: pl.DataFrame | pl.LazyFrame, stage: str | None) -> pl.DataFrame:
    """The answered choice rows of ``events`` (of one stage, or all when ``stage`` is None)."""
    df = as_frame(events).filter((pl.col("kind") == "choice") & (pl.col("status") == "ok"))
    return df if stage is None else df.filter(pl.col("stage") == stage)


def cooperation_rate(
    events: pl.DataFrame | pl.LazyFrame, stage: str | None = None,
    cooperate: str = "cooperate",
) -> pl.DataFrame:
    """Share of cooperative choices per run and round.

    Args:
        events: Event records.
        stage: Only rows of this stage (default: all choice rows).
        cooperate: The option that counts as cooperation.

    Returns:
        ``run_id, replica, round, cooperation, n``.
    """
    return choice_rows(events, stage).group_by([*_RUN, "round"]).agg(
        (pl.col("choice") == cooperate).mean().alias("cooperation"), pl.len().alias("n")
    ).sort([*_RUN, "round"])


def _moves(events: pl.DataFrame | pl.LazyFrame, stage: str | None, cooperate: str
           ) -> pl.DataFrame:
    """My move ``c`` and my partners' move towards me ``pc`` per round, with lags.

    ``pc`` is true when every partner of the round (one in a pairwise stage, the rest of the
    group in a group stage) chose ``cooperate``: in a group one defector is a defection
    against me, as in n-player tit-for-tat and grim trigger. Null when a partner's row is
    missing.
    """
    df = choice_rows(events, stage).select(
        *_RUN, "round", "agent", "partners", (pl.col("choice") == cooperate).alias("c"))
    mine = df.select(*_RUN, "round", pl.col("agent").alias("partner"), pl.col("c").alias("cp"))
    pc = (df.select(*_RUN, "round", "agent", pl.col("partners").alias("partner"))
          .explode("partner").drop_nulls("partner")
          .join(mine, on=[*_RUN, "round", "partner"], how="left")
          .group_by([*_RUN, "round", "agent"])
          .agg(pl.when(pl.col("cp").null_count() > 0).then(None)
               .otherwise(pl.col("cp").all()).first().alias("pc")))
    g = [*_RUN, "agent"]
    return df.drop("partners").join(pc, on=[*_RUN, "round", "agent"], how="left").sort(
        [*g, "round"]).with_columns(
        pl.col("pc").shift(1).over(g).alias("pc1"), pl.col("pc").shift(2).over(g).alias("pc2"),
        (pl.col("round") - pl.col("round").shift(1).over(g)).alias("gap1"),
        (pl.col("round") - pl.col("round").shift(2).over(g)).alias("gap2"),
    )


def _grim(m: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """Grim-trigger share among agents who were offered a way back.

    After my first partner defection (round ``t_d``), an agent is *eligible* when some later
    round followed a cooperative partner move (``P_{t-1} = C`` with ``t - 1 > t_d``): only then
    does never cooperating again tell grim trigger from tit-for-tat (which against an
    always-defector also never cooperates again). Grim = no cooperation in those rounds.
    """
    first_d = m.filter(~pl.col("pc")).group_by([*_RUN, "agent"]).agg(
        pl.col("round").min().alias("t_d"))
    offered = m.join(first_d, on=[*_RUN, "agent"]).filter(
        (pl.col("round") > pl.col("t_d") + 1) & (pl.col("gap1") == 1) & pl.col("pc1"))
    grim = offered.group_by([*_RUN, "agent"]).agg((~pl.col("c").any()).alias("grim"))
    keys = [c for c in by if c in grim.columns]
    return grim.group_by(keys).agg(
        pl.col("grim").mean().alias("grim_share"), pl.len().alias("n_grim_eligible"))


def conditional_cooperation(
    events: pl.DataFrame | pl.LazyFrame, stage: str | None = None,
    cooperate: str = "cooperate", by: Sequence[str] = RUN_KEYS,
) -> pl.DataFrame:
    """Conditional cooperation, forgiveness and grim-trigger share.

    With ``C_t`` = my cooperation at round t and ``P_t`` = my round-t partners' cooperation
    towards me (all of them cooperated; one partner in a pairwise stage, the rest of my group
    in a group stage), rounds consecutive:

    - ``p_c_given_c = P(C_t | P_{t-1} = C)``, ``p_c_given_d = P(C_t | P_{t-1} = D)``,
      ``cc = p_c_given_c - p_c_given_d``;
    - ``forgiveness = P(C_{t+1} | P_{t-1} = D, P_t = C)``: I cooperate again after partners
      who defected have returned to cooperation;
    - ``grim_share``: among agents whose partners cooperated again after their first
      defection, the share who never cooperated after that first defection.

    Undefined conditionals (no eligible rows) are null.

    Args:
        events: Event records of a pairwise or group choice stage.
        stage: Stage name filter.
        cooperate: The cooperative option.
        by: Grouping (default: per run; add ``"agent"`` for per-agent values).

    Returns:
        One row per group with the measures and their counts ``n_after_c, n_after_d,
        n_forgive, n_grim_eligible``.
    """
    m = _moves(events, stage, cooperate)
    prev1 = pl.col("gap1") == 1
    both = prev1 & (pl.col("gap2") == 2)
    grim = _grim(m, by)
    out = m.group_by(list(by)).agg(
        pl.col("c").filter(prev1 & pl.col("pc1")).mean().alias("p_c_given_c"),
        pl.col("c").filter(prev1 & ~pl.col("pc1")).mean().alias("p_c_given_d"),
        pl.col("c").filter(both & pl.col("pc1") & ~pl.col("pc2")).mean().alias("forgiveness"),
        (prev1 & pl.col("pc1")).sum().alias("n_after_c"),
        (prev1 & ~pl.col("pc1")).sum().alias("n_after_d"),
        (both & pl.col("pc1") & ~pl.col("pc2")).sum().alias("n_forgive"),
    ).with_columns((pl.col("p_c_given_c") - pl.col("p_c_given_d")).alias("cc"))
    return out.join(grim, on=[c for c in by if c in grim.columns], how="left").sort(list(by))


def choice_entropy(
    events: pl.DataFrame | pl.LazyFrame, stage: str | None = None, n_options: int | None = None,
) -> pl.DataFrame:
    """Shannon entropy (nats) of the choices made in each round, and its normalised form.

    ``H = -sum_w p_w ln p_w``; ``H_norm = H / ln K`` with K = ``n_options``, else the longest
    ``options`` list in the run, else the number of distinct choices in the run.

    Args:
        events: Event records.
        stage: Stage name filter.
        n_options: Number of options K.

    Returns:
        ``run_id, replica, round, entropy, entropy_norm, n``.
    """
    df = choice_rows(events, stage).filter(pl.col("choice").is_not_null())
    k = df.group_by(_RUN).agg(pl.max_horizontal(pl.col("options").list.len().max(),
                                                pl.col("choice").n_unique()).alias("k"))
    if n_options is not None:
        k = k.with_columns(pl.lit(n_options).alias("k"))
    cnt = df.group_by([*_RUN, "round", "choice"]).agg(pl.len().alias("m"))
    h = cnt.with_columns((pl.col("m") / pl.col("m").sum().over([*_RUN, "round"])).alias("p"))
    h = h.group_by([*_RUN, "round"]).agg(
        (-(pl.col("p") * pl.col("p").log()).sum()).alias("entropy"), pl.col("m").sum().alias("n"))
    return h.join(k, on=_RUN).with_columns(
        pl.when(pl.col("k") > 1).then(pl.col("entropy") / pl.col("k").cast(pl.Float64).log())
        .otherwise(0.0).alias("entropy_norm")
    ).drop("k").sort([*_RUN, "round"])


def norm_violations(
    events: pl.DataFrame | pl.LazyFrame, contribution_stage: str, punishment_stage: str,
    tau: float = 1.0,
) -> pl.DataFrame:
    """Norm violation and sanction rates in public goods with punishment.

    Contribution x = ``choice`` parsed as a number (else ``choice_index``). Norm ν = median
    contribution of the agent's group in that round; violation ``x < tau * ν``. A punishment
    row (``punishment_stage``) by punisher ``agent`` sanctions every id in ``partners`` when
    its amount (``choice`` as a number, else ``choice_index``) is > 0; an agent is sanctioned
    in round t if any such row of round t targets it.

    Args:
        events: Event records.
        contribution_stage: Stage with contributions.
        punishment_stage: Stage with punishment choices.
        tau: Violation threshold as a share of the norm.

    Returns:
        Per run: ``violation_rate, sanction_rate`` (P(sanctioned | violated)),
        ``antisocial_rate`` (P(sanctioned | not violated)), ``n``.
    """
    amount = pl.coalesce(pl.col("choice").cast(pl.Float64, strict=False),
                         pl.col("choice_index").cast(pl.Float64))
    con = choice_rows(events, contribution_stage).with_columns(amount.alias("x")).with_columns(
        pl.col("x").median().over([*_RUN, "round", "group"]).alias("norm")
    ).with_columns((pl.col("x") < tau * pl.col("norm")).alias("violated"))
    pun = choice_rows(events, punishment_stage).with_columns(amount.alias("amt")).filter(
        pl.col("amt") > 0).explode("partners").select(
        *_RUN, "round", pl.col("partners").alias("agent")).unique().with_columns(
        pl.lit(True).alias("sanctioned"))
    df = con.join(pun, on=[*_RUN, "round", "agent"], how="left").with_columns(
        pl.col("sanctioned").fill_null(False))
    return df.group_by(_RUN).agg(
        pl.col("violated").mean().alias("violation_rate"),
        pl.col("sanctioned").filter(pl.col("violated")).mean().alias("sanction_rate"),
        pl.col("sanctioned").filter(~pl.col("violated")).mean().alias("antisocial_rate"),
        pl.len().alias("n"),
    ).sort(_RUN)
