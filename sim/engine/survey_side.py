"""Surveys of a running simulation's agents, in a side channel that never feeds back.

``survey_agents`` administers an instrument to the language-model agents of a
:class:`~sim.engine.replica.Replica` at the current point of a run:

- ``isolated``: the agent's conditioned system prompt (persona and/or steering) only;
- ``in_situ``: the same plus the agent's memory so far, shown before the instruction.

It builds :class:`agents.survey.Respondent` objects from the agents (reading, never writing,
their state) and sends one batched score call; the rows carry ``round`` and ``mode`` and are
returned to the caller (e.g. written to a run's ``surveys/`` shards), so nothing the agents answer
reaches their memory, scores or later prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agents.instruments import Instrument
from agents.survey import Respondent, SurveyDesign, administer

__all__ = ["respondents_of", "survey_agents"]


def respondents_of(agents: Sequence[Any], mode: Literal["isolated", "in_situ"],
                   memory: int = 10, *, preface: Mapping[str, str] | None = None
                   ) -> list[Respondent]:
    """One respondent per language-model agent (scripted agents are skipped).

    ``preface``: text per agent key shown first (a survey stage's ``prompt``); ``in_situ``
    adds the agent's last ``memory`` moments after it.
    """
    out = []
    for agent in agents:
        if agent.policy is not None:
            continue
        parts = [(preface or {}).get(agent.key, "")]
        if mode == "in_situ":
            parts.append(f"What you remember:\n{agent.memory.render(memory)}")
        context = "\n\n".join(p for p in parts if p)
        out.append(Respondent(agent.key, agent._system, tuple(agent.steering), context,
                              meta={"mode": mode, "cohort": agent.cohort},
                              paraphrase=agent.index))
    return out


def survey_agents(sim: Any, backend: Any, inst: Instrument, *,
                  mode: Literal["isolated", "in_situ"] = "isolated",
                  design: SurveyDesign | None = None, run_id: str = "run",
                  memory: int = 10) -> list[dict[str, Any]]:
    """Administer ``inst`` to ``sim``'s agents now; return survey rows (nothing feeds back).

    Raises:
        ValueError: ``mode`` is not ``isolated`` or ``in_situ``.
    """
    if mode not in ("isolated", "in_situ"):
        raise ValueError(f"survey mode {mode!r}: use 'isolated' or 'in_situ'")
    rows = administer(backend, inst, respondents_of(sim.population, mode, memory), design,
                      run_id=run_id)
    for row in rows:
        row["replica"] = sim.replica
        row["step"] = sim.step_count
    return rows
