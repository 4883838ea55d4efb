"""The world state of one replica: global and per-agent variables, and their updates.

A :class:`World` holds the values of the scenario's ``state:`` and ``agent_state:``
variables (:mod:`sim.scenario.world`), gives formulas and templates their names
(``state.X``, ``my.state.Y``), applies a stage's ``update:`` after the stage's rows exist,
and writes one long-format row per variable after every step (the ``state/`` shards).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sim.engine.stages.formulas import parsed
from sim.scenario.formula import Formula
from sim.scenario.spec import ScenarioSpec, StateVarSpec
from sim.scenario.world import update_target

__all__ = ["World", "stage_outcomes"]

Value = float | str


def _initial(var: StateVarSpec) -> Value:
    return var.initial if isinstance(var.initial, str) else float(var.initial)


def _bounded(var: StateVarSpec, value: float) -> float | None:
    """``value`` within the variable's bounds (clamped), or ``None`` if it is refused."""
    low = var.min if var.min is not None else -float("inf")
    high = var.max if var.max is not None else float("inf")
    if low <= value <= high:
        return value
    return None if var.on_bound == "refuse" else min(max(value, low), high)


def _text_formula(source: str) -> Formula:
    return Formula.parse(source, text_result=True)


def stage_outcomes(rows: Sequence[Mapping[str, Any]], n_agents: int
                   ) -> tuple[dict[str, float], dict[str, dict[str, Value]]]:
    """The update names of a stage's rows: population totals, and each agent's own.

    An agent that chose in several games of the stage (``neighbour_sample``, ``ego``)
    counts each choice in ``total_value`` and ``mean_value``; its own ``value`` is the mean
    of its choices, ``my.choice`` its last, ``payoff`` their sum.

    Returns:
        ``total_value``, ``mean_value``, ``n_actors``, ``total_payoff``, ``mean_payoff``;
        and by agent key its ``value``, ``acted``, ``payoff`` and ``my.choice``.
    """
    own: dict[str, dict[str, Value]] = {}
    values: list[float] = []  # every choice: an agent in several games chooses in each
    for row in rows:
        mine = own.setdefault(row["agent"], {"value": 0.0, "acted": 0.0, "payoff": 0.0,
                                             "my.choice": ""})
        if row.get("kind") == "choice" and row.get("value") is not None:
            games = float(mine["acted"])  # its value is the mean over its games
            mine.update({"value": (float(mine["value"]) * games + float(row["value"]))
                         / (games + 1), "acted": games + 1,
                         "my.choice": str(row.get("choice") or "")})
            values.append(float(row["value"]))
        if row.get("payoff") is not None:
            mine["payoff"] = float(mine["payoff"]) + float(row["payoff"])
    for mine in own.values():
        mine["acted"] = min(float(mine["acted"]), 1.0)
    payoff = sum(float(v["payoff"]) for v in own.values())
    actors = sum(1 for v in own.values() if v["acted"])
    totals = {"total_value": sum(values), "mean_value": sum(values) / len(values)
              if values else 0.0, "n_actors": float(actors), "total_payoff": payoff,
              "mean_payoff": payoff / n_agents if n_agents else 0.0}
    return totals, own


class World:
    """The state variables of one replica.

    Attributes:
        spec: the scenario.
        shared: global variables by name.
        agents: each agent's variables by name, by agent index.
        refused: ``(agent index or -1, name)`` of the updates refused in the last step.
        params: the scenario's ``params`` as run-time values (an intervention may set them).
    """

    def __init__(self, spec: ScenarioSpec, n_agents: int) -> None:
        self.spec = spec
        self.shared: dict[str, Value] = {k: _initial(v) for k, v in spec.state.items()}
        self.agents: list[dict[str, Value]] = [
            {k: _initial(v) for k, v in spec.agent_state.items()} for _ in range(n_agents)]
        self.refused: set[tuple[int, str]] = set()
        self.params: dict[str, float] = dict(spec.params)

    @property
    def declared(self) -> bool:
        """Whether the scenario declares any state (else nothing is recorded)."""
        return bool(self.spec.state or self.spec.agent_state)

    def names(self, round_: int, agent: int | None = None) -> dict[str, Value]:
        """The values conditions and updates see: params, ``round``, ``state.X``, ...

        With ``agent``, also that agent's ``my.state.Y``.
        """
        out: dict[str, Value] = dict(self.params)
        out.update(round=float(round_), rounds=float(self.spec.rounds),
                   n_agents=float(len(self.agents)))
        out.update({f"state.{k}": v for k, v in self.shared.items()})
        if agent is not None:
            out.update({f"my.state.{k}": v for k, v in self.agents[agent].items()})
        return out

    def template_fields(self, agent: int) -> dict[str, str]:
        """``{state.X}`` and ``{my.state.Y}`` as prompt text (numbers written with ``:g``)."""
        def text(v: Value) -> str:
            return v if isinstance(v, str) else f"{v:g}"
        out = {f"state.{k}": text(v) for k, v in self.shared.items()}
        out.update({f"my.state.{k}": text(v) for k, v in self.agents[agent].items()})
        return out

    def holds(self, source: str, round_: int) -> bool:
        """Whether a condition (``stop``, ``while: {state}``) is true now."""
        return bool(parsed(source).evaluate(self.names(round_)))

    def apply(self, updates: Mapping[str, str], rows: Sequence[Mapping[str, Any]],
              round_: int, keys: Sequence[str]) -> None:
        """Apply a stage's ``update:`` in order (``keys``: agent keys by index)."""
        if not updates:
            return
        totals, own = stage_outcomes(rows, len(self.agents))
        for target, source in updates.items():
            scope, name = update_target(target)
            if scope == "global":
                values = {**self.names(round_), **totals}
                self._set(self.shared, -1, self.spec.state[name], name, source, values)
                continue
            for i, mine in enumerate(self.agents):
                values = {**self.names(round_, i), **totals,
                          "value": 0.0, "acted": 0.0, "payoff": 0.0, "my.choice": "",
                          **own.get(keys[i], {})}
                self._set(mine, i, self.spec.agent_state[name], name, source, values)

    def begin_step(self) -> None:
        """Forget the refusals of the last step (an intervention's and updates' come next)."""
        self.refused = set()

    def assign(self, target: str, source: str | float, round_: int,
               agents: Sequence[int] | None = None) -> None:
        """Set ``state.X``, ``my.state.Y`` (for ``agents``, default all) or ``params.Z``.

        A formula sees what a condition sees (and ``my.state.Y`` for an agent's own); the
        bounds and ``on_bound`` hold as for updates.
        """
        prefix, name = target.rsplit(".", 1)
        if prefix == "params":
            self.params[name] = float(source) if isinstance(source, float) \
                else parsed(source).evaluate(self.names(round_))
            return
        text = source if isinstance(source, str) else repr(source)
        if prefix == "state":
            self._set(self.shared, -1, self.spec.state[name], name, text, self.names(round_))
            return
        for i in range(len(self.agents)) if agents is None else agents:
            self._set(self.agents[i], i, self.spec.agent_state[name], name, text,
                      self.names(round_, i))

    def _set(self, store: dict[str, Value], who: int, var: StateVarSpec, name: str,
             source: str, values: Mapping[str, Value]) -> None:
        if var.categorical:
            store[name] = _text_formula(source).evaluate_text(values)
            return
        value = _bounded(var, parsed(source).evaluate(values))
        if value is None:
            self.refused.add((who, name))
        else:
            store[name] = value + 0.0

    def rows(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        """One row per variable (global, then each agent's), as the ``state`` table has them."""
        def row(scope: str, who: int, name: str, value: Value) -> dict[str, Any]:
            return {"scope": scope, "agent": keys[who] if who >= 0 else None, "name": name,
                    "value": None if isinstance(value, str) else value,
                    "text": value if isinstance(value, str) else None,
                    "refused": (who, name) in self.refused}
        out = [row("global", -1, k, v) for k, v in self.shared.items()]
        for i, mine in enumerate(self.agents):
            out.extend(row("agent", i, k, v) for k, v in mine.items())
        return out

    def state_dict(self) -> dict[str, Any]:
        """The values as JSON-ready data (floats survive JSON exactly)."""
        return {"shared": dict(self.shared), "agents": [dict(a) for a in self.agents]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.shared = dict(state["shared"])
        self.agents = [dict(a) for a in state["agents"]]
