"""OEJTS 1.2 axis scores and types from survey records, the continuous scores kept.

A type is four cut-offs of four continuous axes; an agent at 24.2 and one at 39 on IE are
both "E". The axis scores are therefore reported beside the type, with the margin from the
cut-off. Formulas: :mod:`agents.instruments.oejts` (docs/measurement.md, questionnaires).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from agents.instruments import OEJTS_AXES
from agents.instruments.oejts import OEJTS_CUTOFF
from analysis.psychometrics import RESPONDENT, answered_rows, require_columns

__all__ = ["oejts_types"]


def oejts_types(surveys: pl.DataFrame, *, by: Sequence[str] = (*RESPONDENT, "round"),
                value: str = "expected") -> pl.DataFrame:
    """Each respondent's four OEJTS axis scores (continuous), type and ties.

    Each item's answer is averaged over orders, paraphrases and repeats first; an axis is
    ``constant + sum(sign * answer)`` over its eight items (null unless all eight were
    answered). ``value="expected"`` gives continuous axes from the answer distributions;
    ``"argmax"`` the integer scoring of the published key.

    Returns:
        Columns ``by + [IE, SN, FT, JP, margin_IE, ..., type, n_ties]``; ``margin_X`` is the
        axis score minus the cut-off 24 (positive: the second letter).
    """
    df = surveys.filter(pl.col("instrument") == "oejts") if "instrument" in surveys.columns \
        else surveys
    require_columns(df, [*by, "item_id", "trait", value], "oejts_types")
    items = (answered_rows(df, value)
             .group_by([*by, "item_id"], maintain_order=True)
             .agg(pl.col(value).cast(pl.Float64).mean().alias("x"))
             .with_columns(pl.col("item_id").str.strip_prefix("Q").cast(pl.Int64).alias("q")))
    axes = []
    for axis, spec in OEJTS_AXES.items():
        signs = pl.DataFrame({"q": list(spec["signs"]), "sign": list(spec["signs"].values())})
        part = items.join(signs, on="q").group_by(list(by), maintain_order=True).agg(
            pl.when(pl.len() == len(spec["signs"]))
            .then(spec["constant"] + (pl.col("sign") * pl.col("x")).sum())
            .otherwise(None).first().alias(axis))
        axes.append(part)
    out = axes[0]
    for part in axes[1:]:
        out = out.join(part, on=list(by), how="full", coalesce=True, nulls_equal=True)
    letters = [pl.when(pl.col(a) > OEJTS_CUTOFF).then(pl.lit(s["high"])).otherwise(
        pl.lit(s["low"])) for a, s in OEJTS_AXES.items()]
    return out.with_columns(
        *[(pl.col(a) - OEJTS_CUTOFF).alias(f"margin_{a}") for a in OEJTS_AXES],
        pl.when(pl.all_horizontal(pl.col(a).is_not_null() for a in OEJTS_AXES))
        .then(pl.concat_str(letters)).otherwise(None).alias("type"),
        pl.sum_horizontal((pl.col(a) == OEJTS_CUTOFF).cast(pl.Int32) for a in OEJTS_AXES)
        .alias("n_ties"),
    ).sort(list(by))
