"""Polars schemas of every table a run writes: the single source of truth.

Tables on disk carry no run id (so that two runs of the same seed are byte-comparable);
:func:`analysis.io.load_run` adds ``run_id`` from the run directory's name. Rows hold only
what is reproducible from scenario + seed + model: prompt-cache hits depend on how a wave was
batched (a resumed run starts cold), so they are reported in the manifest's token stats instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

__all__ = ["AGENT_SCHEMA", "EVENT_SCHEMA", "NETWORK_SCHEMA", "SURVEY_SCHEMA", "frame"]

EVENT_SCHEMA: dict[str, Any] = {
    "replica": pl.Int32,
    "step": pl.Int32,
    "round": pl.Int32,
    "stage": pl.String,
    "kind": pl.String,  # choice | message | sit_out | outcome | broadcast | sanction
    "group": pl.String,
    "turn": pl.Int32,
    "agent": pl.String,
    "partners": pl.List(pl.String),
    "text": pl.String,
    "choice": pl.String,
    "choice_index": pl.Int32,
    "options": pl.List(pl.String),
    "option_probs": pl.List(pl.Float64),
    "shown_order": pl.List(pl.Int32),  # canonical option indices as shown (shuffle_options)
    "payoff": pl.Float64,
    "score": pl.Float64,
    "prompt_hash": pl.String,
    "prompt_tokens": pl.Int32,
    "new_tokens": pl.Int32,
    "backend": pl.String,  # model | scripted
    "policy": pl.String,
    "status": pl.String,  # ok | failed
    "error": pl.String,
    "role": pl.String,  # the agent's role in this round (roles may alternate)
    "value": pl.Float64,  # the choice as a number (numeric option, else its index)
    "offer": pl.Float64,  # offer read from a message; an outcome row's deal price
    "outcomes": pl.String,  # JSON object: named outcomes (formulas, deal / price / turns)
    "correct": pl.Boolean,  # choice == the stage's answer (quiz questions)
}

AGENT_SCHEMA: dict[str, Any] = {
    "replica": pl.Int32,
    "agent": pl.String,
    "index": pl.Int32,
    "name": pl.String,
    "cohort": pl.String,
    "policy": pl.String,
    "backend": pl.String,
    "persona_model": pl.String,  # big_five | mbti
    "openness": pl.Float64,
    "conscientiousness": pl.Float64,
    "extraversion": pl.Float64,
    "agreeableness": pl.Float64,
    "neuroticism": pl.Float64,
    "mbti": pl.String,
    "background": pl.String,
    "role": pl.String,  # the role assigned at the start (before any alternation)
    "private": pl.String,  # JSON object of private values (reserve, budget, ...)
}

NETWORK_SCHEMA: dict[str, Any] = {
    "replica": pl.Int32,
    "source": pl.String,
    "target": pl.String,
}

SURVEY_SCHEMA: dict[str, Any] = {
    "replica": pl.Int32,
    "step": pl.Int32,
    "round": pl.Int32,
    "stage": pl.String,  # the survey stage's id
    "agent": pl.String,
    "cohort": pl.String,
    "mode": pl.String,  # isolated | in_situ
    "instrument": pl.String,
    "item_id": pl.String,
    "trait": pl.String,
    "keyed": pl.Int32,  # +1, or -1 for reverse-keyed items
    "order": pl.String,  # option order shown: asc | desc
    "paraphrase": pl.Int32,  # instruction paraphrase index
    "repeat": pl.Int32,
    "expected": pl.Float64,  # expected scale value under the option distribution
    "argmax": pl.Int32,  # most likely scale value
    "entropy": pl.Float64,  # of the renormalised option distribution (nats)
    "mass": pl.Float64,  # probability the model gave to the valid labels at all
    "probs": pl.List(pl.Float64),  # per scale value, ascending
    "refused": pl.Boolean,
    "error": pl.String,
    "reasks": pl.Int32,
    "context": pl.String,  # text shown before the instruction (in_situ: the memory)
}
"""One row per administered item: ``surveys/step-*.parquet`` (written only by survey stages)."""


def frame(rows: Iterable[Mapping[str, Any]], schema: Mapping[str, Any]) -> pl.DataFrame:
    """Rows -> a frame with exactly ``schema``'s columns (missing values become null).

    Raises:
        ValueError: if a row has a column the schema does not define.
    """
    rows = list(rows)
    extra = {k for r in rows for k in r} - set(schema)
    if extra:
        raise ValueError(f"columns not in the schema: {sorted(extra)}")
    columns = {name: [r.get(name) for r in rows] for name in schema}
    return pl.DataFrame(columns, schema=dict(schema))
