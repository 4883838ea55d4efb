"""Step deltas of an engine state: what changed since the previous step, and its inverse.

An engine state (:meth:`sim.engine.loop.Engine.state_dict`) is plain JSON data::

    {"steps_done": 7, "executor": {...}, ...,
     "replicas": [{"replica": 0, "flow": {...}, ..., "agents": [{...}, ...]}, ...]}

The delta is generic over keys: every engine key but ``replicas`` and every replica key but
``agents`` is stored whole each step (they are small: counters, the flow position, the
round's groupings, and whatever a replica adds later). Agents are stored only if they
changed, and then whole but for their memory, which is the one part that grows: only its
moments that are new or changed since the previous step are stored, with their global index.
So a delta's size depends on what one step did, never on how long the run has been.

Layout of a delta::

    {"engine": {"steps_done": 8, "executor": {...}},
     "replicas": [{"state": {"replica": 0, "flow": {...}, ...},
                   "agents": {"3": {"score": 2.0, ..., "memory": {"total": 41, "count": 41,
                                                                   "from": 40,
                                                                   "moments": [{...}]}}}}]}

``memory.from`` is the global index of the first stored moment; the agent's memory is the
previous one's moments before ``from``, then the stored ones, of which the last ``count``
are kept (see :class:`agents.memory.Memory`).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["apply_delta", "encode_delta"]

_REPLICAS, _AGENTS, _MEMORY = "replicas", "agents", "memory"


def encode_delta(prev: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The delta from engine state ``prev`` to ``new``.

    ``None`` if they are not comparable (another number of replicas or agents): the caller
    then stores ``new`` whole.
    """
    if len(prev[_REPLICAS]) != len(new[_REPLICAS]):
        return None
    replicas = []
    for before, after in zip(prev[_REPLICAS], new[_REPLICAS], strict=True):
        if len(before[_AGENTS]) != len(after[_AGENTS]):
            return None
        agents = {str(i): _agent_delta(a, b)
                  for i, (a, b) in enumerate(zip(before[_AGENTS], after[_AGENTS], strict=True))
                  if a != b}
        replicas.append({"state": {k: v for k, v in after.items() if k != _AGENTS},
                         _AGENTS: agents})
    return {"engine": {k: v for k, v in new.items() if k != _REPLICAS}, _REPLICAS: replicas}


def apply_delta(state: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The engine state after ``delta`` (a new dict; ``state`` is left as it was)."""
    replicas = []
    for before, change in zip(state[_REPLICAS], delta[_REPLICAS], strict=True):
        agents = list(before[_AGENTS])
        for index, agent in change[_AGENTS].items():
            agents[int(index)] = _apply_agent(agents[int(index)], agent)
        replicas.append({**copy.deepcopy(change["state"]), _AGENTS: agents})
    return {**copy.deepcopy(delta["engine"]), _REPLICAS: replicas}


def _agent_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in after.items() if k != _MEMORY}
    if _MEMORY in after and before.get(_MEMORY) != after[_MEMORY]:
        out[_MEMORY] = _memory_delta(before.get(_MEMORY), after[_MEMORY])
    return out


def _memory_delta(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """The moments of ``after`` from the first one (by global index) ``before`` lacks."""
    moments, total = after["moments"], int(after["total"])
    start = total - len(moments)  # global index of moments[0]
    old = before["moments"] if before else []
    old_start = int(before["total"]) - len(old) if before else 0
    same = 0
    if old_start <= start:
        shared = old[start - old_start:start - old_start + len(moments)]
        # Usually every moment but the new ones is shared: one slice comparison finds it.
        if moments[:len(shared)] == shared:
            same = len(shared)
        else:
            while same < len(shared) and moments[same] == shared[same]:
                same += 1
    return {"total": total, "count": len(moments), "from": start + same,
            "moments": moments[same:]}


def _apply_agent(before: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    after = copy.deepcopy({k: v for k, v in change.items() if k != _MEMORY})
    if _MEMORY not in change:
        if _MEMORY in before:
            after[_MEMORY] = before[_MEMORY]
        return after
    memory = change[_MEMORY]
    old = before.get(_MEMORY) or {"total": 0, "moments": []}
    old_start = int(old["total"]) - len(old["moments"])
    kept = old["moments"][:max(0, int(memory["from"]) - old_start)]
    moments = kept + copy.deepcopy(memory["moments"])
    count = int(memory["count"])
    after[_MEMORY] = {"total": int(memory["total"]),
                      "moments": moments[len(moments) - count:] if count else []}
    return after
