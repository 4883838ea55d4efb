"""The view's JSON payloads, built from a :class:`analysis.live.LiveRun`.

Every payload is plain JSON data; agent and user text travels as strings and the page puts it
into the document only as text (``textContent``), never as markup.

The aggregate panels are a list of ``{"title", "y", "series": [{"name", "points"}]}`` where a
point is ``[x, mean, lo, hi]`` over replicas: another kind of series is one more panel from one
more function (the world-state panels are built in :mod:`sim.view.world`).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from agents.memory import Moment
from analysis.live import LiveRun
from analysis.psychometrics import survey_scores
from sim.view import world

__all__ = ["agent_card", "aggregates", "meta", "snapshot", "transcript"]

_PERSONA = ("name", "cohort", "role", "policy", "backend", "persona_model", "openness",
            "conscientiousness", "extraversion", "agreeableness", "neuroticism", "mbti",
            "background", "private")
_MAX_RATES = 8  # a choice stage with more (numeric) options is drawn as its mean value


def meta(live: LiveRun) -> dict[str, Any]:
    """Run identity, status, committed steps (with their round and stage) and option sets."""
    m = live.manifest
    steps = (live.events.select("step", "round", "stage").unique(["step", "stage"])
             .group_by("step").agg(pl.col("round").min(), pl.col("stage").sort().str.join("+"))
             .sort("step"))
    options: dict[str, list[str]] = {}
    for stage in live.scenario.get("stages", []):
        if stage.get("options"):
            options[str(stage["id"])] = [str(o) for o in stage["options"]]
    return {"run_id": live.path.name, "scenario": m.get("scenario"), "status": m.get("status"),
            "committed": live.committed, "replicas": int(m.get("replicas", 1)),
            "agents": int(live.agents.filter(pl.col("replica") == 0).height),
            "steps": steps.rows(), "options": options,
            "model": (m.get("model") or {}).get("model_id")}


def snapshot(live: LiveRun, replica: int, step: int) -> dict[str, Any]:
    """Each agent's last choice and cumulative score after ``step``, and the step's groups."""
    keys = (live.agents.filter(pl.col("replica") == replica).sort("index")["agent"].to_list())
    upto = live.events.filter((pl.col("replica") == replica) & (pl.col("step") <= step))
    chosen = (upto.filter(pl.col("kind") == "choice").sort("step", "turn")
              .group_by("agent").agg(pl.col("choice").last(), pl.col("stage").last()))
    scored = (upto.filter(pl.col("score").is_not_null()).sort("step", "turn")
              .group_by("agent").agg(pl.col("score").last()))
    choice = dict(zip(chosen["agent"].to_list(), chosen["choice"].to_list(), strict=True))
    score = dict(zip(scored["agent"].to_list(), scored["score"].to_list(), strict=True))
    now = upto.filter((pl.col("step") == step) & (pl.col("group") != "-"))
    groups = (now.group_by("stage", "group").agg(pl.col("agent").unique(maintain_order=True))
              .sort("stage", "group"))
    values = world.agent_values(live, replica, step, keys)
    return {"replica": replica, "step": step,
            "choice": [choice.get(k) for k in keys],
            "score": [score.get(k) for k in keys],
            "state": values["agents"], "world": values["world"],
            "groups": [{"stage": s, "group": g, "agents": a} for s, g, a in groups.rows()]}


def transcript(live: LiveRun, replica: int, step: int, group: str) -> dict[str, Any]:
    """The rows of one group at one step, in turn order: who said or chose what."""
    names = _names(live, replica)
    rows = (live.events.filter((pl.col("replica") == replica) & (pl.col("step") == step)
                               & (pl.col("group") == group)).sort("turn", "agent"))
    return {"replica": replica, "step": step, "group": group, "rows": [
        {"agent": r["agent"], "name": names.get(r["agent"], r["agent"]), "kind": r["kind"],
         "turn": r["turn"], "stage": r["stage"], "text": r["text"], "choice": r["choice"],
         "payoff": r["payoff"]} for r in rows.iter_rows(named=True)]}


def aggregates(live: LiveRun) -> dict[str, Any]:
    """Per-round panels over replicas, the declared variables and the interventions applied.

    Panels: the world state first (:func:`sim.view.world.state_panels`: what a scenario with
    state is about), then choice rates of each choice stage (or the mean of a numeric scale)
    and mean payoff per agent. A point is ``[round, mean, lo, hi]``: the mean over replicas
    and the band from the lowest to the highest replica.
    """
    events = live.events
    panels: list[dict[str, Any]] = world.state_panels(live)
    choices = events.filter((pl.col("kind") == "choice") & (pl.col("status") == "ok"))
    for stage in choices["stage"].unique(maintain_order=True).to_list():
        rows = choices.filter(pl.col("stage") == stage)
        options = rows["options"][0].to_list() if rows.height else []
        if len(options) > _MAX_RATES and _numeric(options):
            # a numeric scale (catches 0..20): one line of its mean, not a line per level
            means = rows.group_by("replica", "round").agg(pl.col("value").mean())
            panels.append({"title": f"mean choice: {stage}", "y": "chosen value",
                           "series": [{"name": stage, "points": _band(means, "value")}]})
            continue
        rates = rows.group_by("replica", "round").agg(
            [(pl.col("choice") == o).mean().alias(f"o{i}") for i, o in enumerate(options)])
        panels.append({"title": f"choice rates: {stage}", "y": "share of choices",
                       "series": [{"name": o, "points": _band(rates, f"o{i}")}
                                  for i, o in enumerate(options)]})
    paid = events.filter(pl.col("payoff").is_not_null())
    if paid.height:
        per_agent = (paid.group_by("replica", "round", "agent").agg(pl.col("payoff").sum())
                     .group_by("replica", "round").agg(pl.col("payoff").mean()))
        panels.append({"title": "mean payoff per agent", "y": "payoff",
                       "series": [{"name": "payoff", "points": _band(per_agent, "payoff")}]})
    return {"panels": panels, "band": "lowest to highest replica",
            "replicas": int(live.manifest.get("replicas", 1)),
            "variables": world.variables(live), "interventions": world.interventions(live)}


def _numeric(options: list[str]) -> bool:
    try:
        return all(float(o) == float(o) for o in options)  # NaN is no scale
    except ValueError:
        return False


def _band(frame: pl.DataFrame, column: str) -> list[list[float]]:
    """``[round, mean, lo, hi]`` of ``column`` over replicas, by round."""
    out = (frame.group_by("round").agg(mean=pl.col(column).mean(), lo=pl.col(column).min(),
                                       hi=pl.col(column).max()).sort("round"))
    return [[float(r), float(m), float(lo), float(hi)] for r, m, lo, hi in out.rows()]


def agent_card(live: LiveRun, replica: int, agent: str, step: int) -> dict[str, Any]:
    """Persona and conditioning, memory, choices, prompts seen and state, at ``step``; surveys."""
    row = live.agents.filter((pl.col("replica") == replica) & (pl.col("agent") == agent))
    if row.height == 0:
        raise KeyError(f"no agent {agent!r} in replica {replica}")
    persona = {k: v for k, v in row.select(_PERSONA).row(0, named=True).items()
               if v not in (None, "", "{}")}
    mine = live.events.filter((pl.col("replica") == replica) & (pl.col("agent") == agent)
                              & (pl.col("step") <= step)).sort("step", "turn")
    design = (live.manifest.get("design") or {}).get("conditioning") or {}
    cohort = persona.get("cohort")
    return {
        "agent": agent, "replica": replica, "step": step, "persona": persona,
        "conditioning": design.get(cohort) if cohort in design else design.get("population"),
        "memory": _memory(live, replica, agent, step),
        "choices": [{"step": r["step"], "round": r["round"], "stage": r["stage"],
                     "choice": r["choice"], "options": r["options"],
                     "probs": r["option_probs"], "payoff": r["payoff"]}
                    for r in mine.filter(pl.col("kind") == "choice").iter_rows(named=True)],
        "history": [{"step": r["step"], "round": r["round"], "stage": r["stage"],
                     "kind": r["kind"], "text": r["text"], "choice": r["choice"],
                     "partners": r["partners"], "payoff": r["payoff"]}
                    for r in mine.iter_rows(named=True)],
        "prompts": _prompts(live, mine.filter(pl.col("step") == step)),
        "surveys": _surveys(live, replica, agent, step),
        "state": world.agent_history(live, replica, agent, step),
    }


def _memory(live: LiveRun, replica: int, agent: str, step: int) -> dict[str, Any] | None:
    """The agent's memory after ``step``, from the checkpoint chain (None without one)."""
    engine = live.engine_state(step)
    if engine is None or not 0 <= replica < len(engine["replicas"]):
        return None
    for state in engine["replicas"][replica]["agents"]:
        if state["key"] == agent:
            return {"after_step": step,
                    "moments": [Moment.from_dict(m).render()
                                for m in state["memory"]["moments"]]}
    return None


def _prompts(live: LiveRun, rows: pl.DataFrame) -> list[dict[str, Any]]:
    """The stored requests behind ``rows`` (via ``prompt_hash``), each once."""
    hashes = [h for h in rows["prompt_hash"].unique(maintain_order=True).to_list() if h]
    found = live.prompts.filter(pl.col("prompt_hash").is_in(hashes))
    by_hash = {r["prompt_hash"]: r for r in found.iter_rows(named=True)}
    out = []
    for h in hashes:
        if h in by_hash:
            r = by_hash[h]
            out.append({"hash": h, "kind": r["kind"], "messages": json.loads(r["messages"]),
                        "options": r["options"]})
    return out


def _surveys(live: LiveRun, replica: int, agent: str, step: int) -> list[dict[str, Any]]:
    """The agent's trait scores per survey administration up to ``step``."""
    rows = live.surveys.filter((pl.col("replica") == replica) & (pl.col("agent") == agent)
                               & (pl.col("step") <= step))
    if rows.height == 0:
        return []
    scores = survey_scores(rows.with_columns(pl.lit(live.path.name).alias("run_id")))
    return [{"round": r["round"], "stage": r["stage"], "instrument": r["instrument"],
             "trait": r["trait"], "score": r["score"]}
            for r in scores.sort("round", "trait").iter_rows(named=True)]


def _names(live: LiveRun, replica: int) -> dict[str, str]:
    rows = live.agents.filter(pl.col("replica") == replica)
    return dict(zip(rows["agent"].to_list(), rows["name"].to_list(), strict=True))
