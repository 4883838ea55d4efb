"""Behaviour measures per agent and run, taken from each stage kind of the events table.

Every measure is one number per agent in one run (``run_id, replica, agent``), so it can be
correlated with the agent's assigned or self-reported traits (:mod:`analysis.validity`).
Definitions and references: ``docs/measurement.md`` (*Behaviour measures*).

Measures (``kind``; ``measure`` is ``"<stage>: <what>"``):
    cooperation: binary choice stage with a 2x2 payoff matrix: share of rounds the agent
        chose the stage's first option (cooperate, stag, ...).
    choice_rate: other binary choice stages: share choosing the first option.
    contribution: numeric ``levels`` stage whose payoff formula pools the group's values
        (``sum_values``: a public good): mean value chosen.
    amount: other numeric ``levels`` stages (an ultimatum offer): mean value chosen.
    threshold: a binary stage answering the numeric choice, in the same round, of a partner
        who does not act in the binary stage (an ultimatum responder): the acceptance
        threshold, the step of a step-function fit.
    words: dialogue and broadcast messages: mean words per message.
    questions: mean question marks per message.
    sanctions: sanction stages: share of opportunities in which the agent fined someone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from analysis.stats import RUN_KEYS, as_frame

__all__ = ["AGENT_KEYS", "acceptance_threshold", "behaviour_measures"]

AGENT_KEYS: tuple[str, ...] = (*RUN_KEYS, "agent")
"""Columns that identify one agent in one run."""

_OUT = {"run_id": pl.String, "replica": pl.Int32, "agent": pl.String, "measure": pl.String,
        "kind": pl.String, "value": pl.Float64, "n": pl.UInt32}


def _numeric(options: list[str]) -> bool:
    try:
        [float(o) for o in options]
    except ValueError:
        return False
    return True


def _is_2x2(spec: Mapping[str, Any]) -> bool:
    matrix = (spec.get("payoff") or {}).get("matrix")
    return isinstance(matrix, list) and len(matrix) == 2 and all(len(r) == 2 for r in matrix)


def _pools_values(spec: Mapping[str, Any]) -> bool:
    formula = (spec.get("payoff") or {}).get("formula")
    text = " ".join(formula.values()) if isinstance(formula, dict) else str(formula or "")
    return "sum_values" in text


def acceptance_threshold(offers: np.ndarray, accepted: np.ndarray) -> float:
    """The offer from which a responder accepts: the best step-function fit of its answers.

    The step ``t`` predicts "accept" for offers ``>= t``. Candidates are the distinct offers
    and one step above the largest; the threshold is the candidate with the fewest
    misclassified answers (the mean of tied candidates). Accepting everything gives the
    lowest offer seen, rejecting everything one unit above the highest offer seen.

    Args:
        offers: offers the responder answered.
        accepted: 1 (accepted) or 0 (rejected) per offer.

    Returns:
        The threshold (NaN without answers).
    """
    x, y = np.asarray(offers, float), np.asarray(accepted, float)
    if x.size == 0:
        return float("nan")
    cands = np.append(np.unique(x), x.max() + 1.0)
    errors = np.array([np.sum((x >= t) & (y == 0)) + np.sum((x < t) & (y == 1)) for t in cands])
    return float(cands[errors == errors.min()].mean())


def _choice_measures(ev: pl.DataFrame, stages: Mapping[str, Mapping[str, Any]]
                     ) -> list[pl.DataFrame]:
    out = []
    choices = ev.filter((pl.col("kind") == "choice") & pl.col("choice").is_not_null())
    # Every choice has a ``value`` (its index when the options are words): only the stages
    # whose options are numbers make offers.
    levels = [s for (s,), r in choices.group_by(["stage"])
              if _numeric(r["options"].drop_nulls().first() or ["x"])]
    numeric_rows = choices.filter(pl.col("stage").is_in(levels)).select(
        *RUN_KEYS, "round", pl.col("agent").alias("_partner"), pl.col("value").alias("_offer"))
    for (stage,), rows in choices.group_by(["stage"], maintain_order=True):
        options = rows["options"].drop_nulls().first() or []
        spec = stages.get(str(stage), {})
        if _numeric(options):
            kind = "contribution" if _pools_values(spec) else "amount"
            out.append(_mean(rows, pl.col("value"), f"{stage}: mean value", kind))
            continue
        if len(options) != 2:
            continue
        first = (pl.col("choice_index") == 0).cast(pl.Float64)
        # A responder answers a partner who does not act in this stage (an ultimatum's
        # proposer), not a partner who also chose here (a game played next to a public good).
        actors = rows.select(*RUN_KEYS, "round", pl.col("agent").alias("_partner"))
        answered = rows.with_columns(pl.col("partners").list.first().alias("_partner")).join(
            numeric_rows.filter(pl.col("_partner").is_not_null()),
            on=[*RUN_KEYS, "round", "_partner"], how="inner").join(
            actors, on=[*RUN_KEYS, "round", "_partner"], how="anti")
        if answered.height * 2 >= rows.height:
            accept = options.index("accept") if "accept" in options else 1
            out.append(_thresholds(answered, accept, f"{stage}: acceptance threshold"))
        kind = "cooperation" if _is_2x2(spec) else "choice_rate"
        out.append(_mean(rows, first, f"{stage}: P({options[0]})", kind))
    return out


def _mean(rows: pl.DataFrame, expr: pl.Expr, measure: str, kind: str) -> pl.DataFrame:
    return (rows.group_by(AGENT_KEYS).agg(expr.mean().alias("value"), pl.len().alias("n"))
            .with_columns(pl.lit(measure).alias("measure"), pl.lit(kind).alias("kind")))


def _thresholds(answered: pl.DataFrame, accept: int, measure: str) -> pl.DataFrame:
    rows = []
    for key, part in answered.group_by(AGENT_KEYS, maintain_order=True):
        accepted = (part["choice_index"].to_numpy() == accept).astype(float)
        rows.append({**dict(zip(AGENT_KEYS, key, strict=True)), "n": part.height,
                     "value": acceptance_threshold(part["_offer"].to_numpy(), accepted)})
    frame = pl.DataFrame(rows, schema={k: _OUT[k] for k in (*AGENT_KEYS, "n", "value")})
    return frame.with_columns(pl.lit(measure).alias("measure"), pl.lit("threshold").alias("kind"))


def _text_measures(ev: pl.DataFrame) -> list[pl.DataFrame]:
    msgs = ev.filter(pl.col("kind").is_in(["message", "broadcast"]) & pl.col("text").is_not_null())
    out = []
    for (stage,), rows in msgs.group_by(["stage"], maintain_order=True):
        words = pl.col("text").str.split(" ").list.eval(pl.element().filter(
            pl.element().str.len_chars() > 0)).list.len().cast(pl.Float64)
        questions = pl.col("text").str.count_matches(r"\?", literal=False).cast(pl.Float64)
        out.append(_mean(rows.with_columns(pl.col("text").str.replace_all(r"\s+", " ")), words,
                         f"{stage}: words per message", "words"))
        out.append(_mean(rows, questions, f"{stage}: questions per message", "questions"))
    return out


def _sanction_measures(ev: pl.DataFrame) -> list[pl.DataFrame]:
    rows = ev.filter((pl.col("kind") == "sanction") & pl.col("choice").is_not_null())
    out = []
    for (stage,), part in rows.group_by(["stage"], maintain_order=True):
        # The first option of a sanction stage is "fine nobody".
        fined = (pl.col("choice") != pl.col("options").list.first()).cast(pl.Float64)
        out.append(_mean(part, fined, f"{stage}: sanctions given", "sanctions"))
    return out


def behaviour_measures(events: pl.DataFrame | pl.LazyFrame,
                       stages: Mapping[str, Mapping[str, Any]] | None = None) -> pl.DataFrame:
    """Every behaviour measure of every agent in every run.

    Failed rows (``status == "failed"``) are left out.

    Args:
        events: the events table of one or several runs (with ``run_id``).
        stages: the scenario's stages by id (``run.scenario["stages"]``); they tell a 2x2
            game (cooperation) and a public good (contribution) from other choices. Without
            them every binary stage is a ``choice_rate`` and every levels stage an ``amount``.

    Returns:
        ``run_id, replica, agent, measure, kind, value, n`` (``n``: rows behind the value),
        sorted.
    """
    ev = as_frame(events)
    if "status" in ev.columns:
        ev = ev.filter(pl.col("status").fill_null("ok") != "failed")
    parts = [*_choice_measures(ev, stages or {}), *_text_measures(ev), *_sanction_measures(ev)]
    parts = [p.select(list(_OUT)).cast(_OUT) for p in parts if not p.is_empty()]  # type: ignore[arg-type]
    if not parts:
        return pl.DataFrame(schema=_OUT)
    return pl.concat(parts).sort("measure", *AGENT_KEYS)
