"""The view's payloads of world state (``state:``, ``agent_state:``) and interventions.

A global variable is one per-round panel (its value at the end of each round, mean and band over
replicas); an agent variable is one panel of its mean over agents, a choice of node colour and
size in the network panel, and a small chart on the agent card. Interventions are listed and
marked on the per-round panels. Every value comes from the committed ``state/`` and ``events/``
shards; agent text (an announcement) travels as a string the page shows as text.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from analysis.live import LiveRun

__all__ = ["agent_history", "agent_values", "interventions", "state_panels", "variables"]


def variables(live: LiveRun) -> list[dict[str, Any]]:
    """Each declared variable: ``name``, ``scope``, ``kind`` and its range or values.

    ``kind`` is ``number`` (``lo`` and ``hi``: the declared bound, else the lowest and highest
    value recorded so far, for a colour scale that does not jump between steps) or
    ``category`` (``values`` in the declared order).
    """
    out: list[dict[str, Any]] = []
    for scope, key in (("global", "state"), ("agent", "agent_state")):
        for name, decl in (live.scenario.get(key) or {}).items():
            decl = decl or {}
            if decl.get("values") is not None:
                out.append({"name": str(name), "scope": scope, "kind": "category",
                            "values": [str(v) for v in decl["values"]]})
                continue
            seen = live.state.filter((pl.col("scope") == scope) & (pl.col("name") == name))
            lo, hi = seen["value"].min(), seen["value"].max()
            out.append({"name": str(name), "scope": scope, "kind": "number",
                        "lo": _num(decl.get("min"), lo), "hi": _num(decl.get("max"), hi)})
    return out


def _num(declared: Any, seen: Any) -> float | None:
    value = declared if declared is not None else seen
    return None if value is None else float(value)


def _band(frame: pl.DataFrame, column: str) -> list[list[float]]:
    """``[round, mean, lo, hi]`` of ``column`` over replicas, by round."""
    out = (frame.group_by("round").agg(mean=pl.col(column).mean(), lo=pl.col(column).min(),
                                       hi=pl.col(column).max()).sort("round"))
    return [[float(r), float(m), float(lo), float(hi)] for r, m, lo, hi in out.rows()
            if m is not None]


def state_panels(live: LiveRun) -> list[dict[str, Any]]:
    """Per-round panels of the world state, in declaration order.

    A point is ``[round, mean, lo, hi]`` over replicas of the value at the end of the round
    (after its last recorded step). A numeric global variable is its value; a categorical one
    is one series per value, the share of replicas holding it; an agent variable is the mean
    over agents (numeric) or the share of agents holding each value (categorical).
    """
    state = live.state
    if state.height == 0:
        return []
    ends = (state.sort("step").group_by("replica", "round", "scope", "agent", "name")
            .agg(pl.col("value").last(), pl.col("text").last()))
    panels = []
    for var in variables(live):
        rows = ends.filter((pl.col("scope") == var["scope"]) & (pl.col("name") == var["name"]))
        agent = var["scope"] == "agent"
        suffix = " (mean over agents)" if agent else ""
        if var["kind"] == "number":
            per = rows.group_by("replica", "round").agg(pl.col("value").mean())
            series = [{"name": var["name"], "points": _band(per, "value")}]
            y = var["name"] + suffix
        else:
            series = []
            for value in var["values"]:
                per = rows.group_by("replica", "round").agg(
                    (pl.col("text") == value).cast(pl.Float64).mean().alias("share"))
                series.append({"name": value, "points": _band(per, "share")})
            y = "share of agents" if agent else "share of replicas"
        panels.append({"title": f"state: {var['name']}{suffix}", "y": y, "series": series,
                       "state": var["name"]})
    return panels


def interventions(live: LiveRun) -> list[dict[str, Any]]:
    """Every applied intervention: ``replica``, ``step``, ``round``, ``stage``, ``id``, ``text``."""
    rows = (live.events.filter(pl.col("kind") == "intervention")
            .sort("step", "replica", "turn"))
    return [{"replica": r["replica"], "step": r["step"], "round": r["round"],
             "stage": r["stage"], "id": r["intervention"], "text": r["text"]}
            for r in rows.iter_rows(named=True)]


def agent_values(live: LiveRun, replica: int, step: int,
                 keys: list[str]) -> dict[str, Any]:
    """The world after ``step`` in one replica: global values and per-agent values.

    ``world``: each global variable's value; ``agents``: each agent variable's value per
    agent, in ``keys`` order (None if none yet). A replica that stopped earlier shows its
    last state.
    """
    rows = live.state.filter((pl.col("replica") == replica) & (pl.col("step") <= step))
    last = (rows.sort("step").group_by("scope", "agent", "name", maintain_order=True)
            .agg(pl.col("value").last(), pl.col("text").last()))
    world: dict[str, Any] = {}
    per: dict[str, dict[str, Any]] = {}
    for scope, agent, name, value, text in last.rows():
        shown = text if value is None else value
        if scope == "global":
            world[name] = shown
        else:
            per.setdefault(name, {})[agent] = shown
    return {"world": world,
            "agents": {name: [values.get(k) for k in keys] for name, values in per.items()}}


def agent_history(live: LiveRun, replica: int, agent: str, step: int) -> dict[str, Any]:
    """One agent's variables up to ``step``: name -> ``[[step, round, value], ...]``."""
    rows = live.state.filter((pl.col("replica") == replica) & (pl.col("agent") == agent)
                             & (pl.col("step") <= step)).sort("step")
    out: dict[str, list[list[Any]]] = {}
    for s, r, name, value, text in rows.select("step", "round", "name", "value",
                                                "text").rows():
        out.setdefault(name, []).append([s, r, text if value is None else value])
    return out
