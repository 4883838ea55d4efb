"""Interview a recorded run's agents at any past step, without changing the run.

The run is reopened at the step (:func:`sim.run.reopen.reopen`); every chosen
language-model agent of every replica answers every question from its persona and its memory
then, all in one batched ``generate`` wave (and, with an instrument, one ``score`` wave as in
an ``in_situ`` survey stage). Scripted agents have no words of their own and are skipped.
Each request's seed comes from the run seed, replica, step, agent and question, so the same
interview gives the same answers. Only ``interviews/`` files are written
(:mod:`sim.records.interviews`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from agents.agent import Agent
from agents.instruments import load_instrument
from agents.interview import interview_request, question_key
from agents.survey import SurveyDesign, rows_from_scores, survey_requests
from sim.backends.protocol import Backend
from sim.engine.stages.base import prompt_hash
from sim.engine.survey_side import respondents_of
from sim.errors import RunError
from sim.records.interviews import new_interview_id, write_interview
from sim.requests import GenerateRequest, SamplingParams, ScoreRequest
from sim.run.conditioning import prepare_run_conditioning
from sim.run.reopen import Reopened, last_step, reopen

__all__ = ["Interview", "interview_run", "open_interview"]

_INTERVIEW_STREAM = 101  # spawn key of interview seeds, apart from the run's own streams


@dataclass(frozen=True)
class Interview:
    """What an interview asked and got.

    Attributes:
        id: the interview's id (its files are ``interviews/<id>.*``).
        path: the answers table, ``interviews/<id>.parquet``.
        rows: the answers (``interviews`` table rows).
        survey_rows: the instrument's rows (``surveys`` table columns), if one was given.
        skipped: keys of the scripted agents that were not asked.
    """

    id: str
    path: Path
    rows: list[dict[str, Any]]
    survey_rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def interview_run(run_dir: str | Path, step: int, backend: Backend, *,
                  questions: Sequence[str] = (), instrument: str | None = None,
                  agents: Sequence[str] | None = None, memory: int | None = None,
                  allow_restricted: bool = False, command: list[str] | None = None
                  ) -> Interview:
    """Ask the run's agents at ``step`` every question (and the instrument's items).

    Args:
        run_dir: a run directory.
        step: 0 (before the first step) to the run's last step.
        backend: the model that answers (the run's own, or another one).
        questions: free-text questions, each asked to every chosen agent.
        instrument: a questionnaire (``ipip-50``, ...) administered as an ``in_situ``
            survey stage would.
        agents: agent keys (``a001``); default: every agent.
        memory: how many remembered moments the prompt shows (default: the most any stage
            of the scenario shows).
        allow_restricted: opt in to an instrument with non-commercial terms.
        command: the command line, for ``interviews/<id>.json``.

    Raises:
        RunError: a step without a checkpoint, an unknown agent, or nothing to ask.
    """
    if not questions and instrument is None:
        raise RunError("an interview needs a question, --questions FILE or --instrument NAME. "
                       "Fix: add one, e.g. traitlab interview RUN_DIR --at 3 \"Why did you "
                       "defect?\"")
    inst = load_instrument(instrument, allow_restricted=allow_restricted) \
        if instrument is not None else None
    past, chosen = open_interview(run_dir, step, agents)
    window = memory if memory is not None else max(s.memory for s in past.spec.stages)
    speakers = [(r, a) for r, a in chosen if a.policy is None]
    with tempfile.TemporaryDirectory() as scratch:  # steering.json stays out of the run
        prepare_run_conditioning(past.spec, backend, Path(scratch))
        rows, prompts = _ask(past, backend, speakers, questions, window)
        survey_rows = _survey(past, backend, speakers, inst, window, prompts) if inst else []
    created = datetime.now(UTC).isoformat()
    for row in rows:
        row["created_at"] = created
    interview_id = new_interview_id(step)
    meta = {"step": step, "agents": [a.key for _, a in speakers], "questions": list(questions),
            "instrument": inst.name if inst else None, "memory": window,
            "seed": past.config.seed, "model": _model_name(backend), "created_at": created,
            "command": command}
    path = write_interview(past.path, interview_id, meta=meta, rows=rows,
                           survey_rows=survey_rows, prompts=prompts)
    return Interview(id=interview_id, path=path, rows=rows, survey_rows=survey_rows,
                     skipped=sorted({a.key for _, a in chosen if a.policy is not None}))


def open_interview(run_dir: str | Path, step: int, agents: Sequence[str] | None = None
                   ) -> tuple[Reopened, list[tuple[int, Agent]]]:
    """The run reopened at ``step`` and the chosen (replica, agent) pairs, checked.

    Cheap (no model is loaded): call it to refuse a bad request before opening a backend.

    Raises:
        RunError: a step without a checkpoint or an unknown agent key, naming the flag.
    """
    last = last_step(run_dir)
    if not 0 <= step <= last:
        raise RunError(f"--at {step}: the run has steps 0 to {last}. Fix: pass --at from 0 "
                       f"to {last}.")
    past = reopen(run_dir, step)
    return past, _chosen(past, agents)


def _chosen(past: Reopened, keys: Sequence[str] | None) -> list[tuple[int, Agent]]:
    """(replica, agent) for the chosen keys in every replica; an unknown key is refused."""
    population = past.engine.replicas[0].population
    known = [a.key for a in population]
    for key in keys or ():
        if key not in known:
            raise RunError(f"--agents: no agent {key!r} in {past.path} (its agents are "
                           f"{known[0]} to {known[-1]}). Fix: pass keys from agents.parquet.")
    wanted = set(keys) if keys else set(known)
    return [(sim.replica, a) for sim in past.engine.replicas for a in sim.population
            if a.key in wanted]


def _seed(past: Reopened, replica: int, agent: Agent, question: str) -> int:
    seq = np.random.SeedSequence(past.config.seed, spawn_key=(
        replica, _INTERVIEW_STREAM, past.step, agent.index, question_key(question)))
    return int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _ask(past: Reopened, backend: Backend, speakers: Sequence[tuple[int, Agent]],
         questions: Sequence[str], memory: int
         ) -> tuple[list[dict[str, Any]], dict[str, GenerateRequest | ScoreRequest]]:
    """One generate wave: every speaker answers every question."""
    slots, requests = [], []
    for replica, agent in speakers:
        for question in questions:
            seed = _seed(past, replica, agent, question)
            sampling = SamplingParams(max_new_tokens=past.config.max_new_tokens,
                                      temperature=past.config.temperature, seed=seed)
            slots.append((replica, agent, question, seed))
            requests.append(interview_request(agent, question, memory=memory,
                                              sampling=sampling))
    results = backend.generate(requests) if requests else []
    model = _model_name(backend)
    rows, prompts = [], {}
    for (replica, agent, question, seed), request, result in zip(slots, requests, results,
                                                                  strict=True):
        key = prompt_hash(request)
        prompts[key] = request
        failed = result.finish_reason == "error"
        rows.append({"replica": replica, "step": past.step, "agent": agent.key,
                     "question": question, "prompt_hash": key,
                     "text": None if failed else result.text,
                     "new_tokens": result.num_new_tokens,
                     "status": "failed" if failed else "ok", "error": result.error,
                     "seed": seed, "model": model})
    return rows, prompts


def _survey(past: Reopened, backend: Backend, speakers: Sequence[tuple[int, Agent]],
            inst: Any, memory: int, prompts: dict[str, GenerateRequest | ScoreRequest]
            ) -> list[dict[str, Any]]:
    """One score wave: the instrument to every speaker, as an in_situ survey stage."""
    pairs, owners = [], []
    for replica in sorted({r for r, _ in speakers}):
        respondents = respondents_of([a for r, a in speakers if r == replica], "in_situ", memory)
        for pair in survey_requests(inst, respondents, SurveyDesign()):
            pairs.append(pair)
            owners.append(replica)
    results = backend.score([request for _factors, request in pairs]) if pairs else []
    rows = []
    for (factors, request), replica, row in zip(pairs, owners,
                                                rows_from_scores(inst, pairs, results),
                                                strict=True):
        del row["run_id"]
        prompts[prompt_hash(request)] = request
        row.update(replica=replica, step=past.step, stage="interview",
                   context=factors["respondent"].context)
        rows.append(row)
    return rows


def _model_name(backend: Backend) -> str:
    info = backend.info
    return f"{info.backend}:{info.model_id}"
