"""The writer of a run directory's ``interviews/`` folder (``traitlab interview``).

An interview only adds files, each written atomically under a fresh id; it never touches
the run's other records, so they stay byte-identical (and resume, which verifies them, is
unaffected). Layout::

    interviews/<id>.json             what was asked: step, agents, questions, backend, seed
    interviews/<id>.parquet          one row per (agent, question): the ``interviews`` table
    interviews/<id>-prompts.parquet  each distinct request once: the ``prompts`` table
    interviews/<id>-survey.parquet   with an instrument: the ``surveys`` table's columns
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sim.records.files import atomic_write
from sim.records.provenance import prompt_rows
from sim.records.schemas import INTERVIEW_SCHEMA, PROMPT_SCHEMA, SURVEY_SCHEMA, frame
from sim.requests import GenerateRequest, ScoreRequest

__all__ = ["INTERVIEWS_DIR", "new_interview_id", "write_interview"]

INTERVIEWS_DIR = "interviews"


def new_interview_id(step: int) -> str:
    """A fresh interview id: ``<utc-time>-step<k>-<hex>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-step{step}-{secrets.token_hex(3)}"


def write_interview(run_dir: Path, interview_id: str, *, meta: Mapping[str, Any],
                    rows: list[dict[str, Any]], survey_rows: list[dict[str, Any]],
                    prompts: Mapping[str, GenerateRequest | ScoreRequest]) -> Path:
    """Write one interview's files; returns the path of its answers table.

    ``rows``: :data:`~sim.records.schemas.INTERVIEW_SCHEMA` rows (questions);
    ``survey_rows``: :data:`~sim.records.schemas.SURVEY_SCHEMA` rows (an instrument).
    """
    folder = run_dir / INTERVIEWS_DIR
    answers = folder / f"{interview_id}.parquet"
    tables = [(answers, frame(rows, INTERVIEW_SCHEMA)),
              (folder / f"{interview_id}-prompts.parquet",
               frame(prompt_rows(prompts, set()), PROMPT_SCHEMA))]
    if survey_rows:
        tables.append((folder / f"{interview_id}-survey.parquet",
                       frame(survey_rows, SURVEY_SCHEMA)))
    for path, df in tables:
        atomic_write(path, lambda p, df=df: df.write_parquet(p))
    text = json.dumps({"id": interview_id, **meta}, indent=2) + "\n"
    atomic_write(folder / f"{interview_id}.json", lambda p: p.write_text(text))
    return answers
