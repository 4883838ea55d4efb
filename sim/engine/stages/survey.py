"""Survey stages: a questionnaire for every language-model agent, in a side channel.

On the rounds the stage lists (default: every round it is reached), every language-model
agent that acts in the stage answers every item under every control (option order,
instruction paraphrase, repeat): one score request each, all in one wave, so the engine
batches them with the other replicas' waves and the backend prefills each agent's shared
prefix once. On other rounds the stage does nothing.

The answers never reach the agents: the runner reads their state (persona, steering,
memory), writes nothing to them, draws no random numbers and returns no event rows. Its
survey rows go to ``ctx.side``, which :class:`~sim.engine.replica.Replica` hands to the
recorder for the run's ``surveys/`` shards.
"""

from __future__ import annotations

from agents.instruments import load_instrument
from agents.survey import SurveyDesign, rows_from_scores, survey_requests
from sim.engine.stages.base import Plan, StageContext
from sim.engine.survey_side import respondents_of
from sim.scenario.spec import SurveyStage
from sim.scenario.templates import render

__all__ = ["run_survey", "surveyed"]


def surveyed(stage: SurveyStage, round_: int) -> bool:
    """Whether the stage administers its survey in ``round_``."""
    return stage.rounds is None or round_ in stage.rounds


def run_survey(stage: SurveyStage, ctx: StageContext) -> Plan:
    """Plan of a survey stage: one wave of score requests, no event rows."""
    if not surveyed(stage, ctx.round):
        return []
    inst = load_instrument(stage.instrument, allow_restricted=stage.allow_restricted)
    agents = [a for a in ctx.agents if a.policy is None and ctx.acts(a, stage.actors)]
    preface = {a.key: render(stage.prompt, {"name": a.name, "round": ctx.round,
                                            "rounds": ctx.rounds}).strip()
               for a in agents}
    respondents = respondents_of(agents, stage.mode, stage.memory, preface=preface)
    design = SurveyDesign(orders=tuple(stage.orders), paraphrases=stage.paraphrases,
                          repeats=stage.repeats,
                          items=tuple(stage.items) if stage.items else None)
    pairs = survey_requests(inst, respondents, design)
    if not pairs:
        return []
    results = yield [request for _factors, request in pairs]
    for (factors, _request), row in zip(pairs, rows_from_scores(inst, pairs, results),
                                        strict=True):
        del row["run_id"]  # tables on disk carry no run id (analysis.io adds it)
        row["context"] = factors["respondent"].context
        ctx.side.append(row)
    return []
