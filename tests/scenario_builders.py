"""Small inline scenarios for tests (Mesa-style: tiny, defined next to the tests)."""

from __future__ import annotations

from typing import Any

from sim.scenario.spec import ScenarioSpec

PD_PROMPT = "Round {round}. You meet {partner.name}; they last chose {partner.last_choice}."


def pd(size: int = 16, rounds: int = 3, *, chat_turns: int = 0,
       cohorts: list[dict[str, Any]] | None = None, groups: str = "random_pairs") -> ScenarioSpec:
    """A prisoner's dilemma; with ``chat_turns`` a chat stage precedes every move."""
    stages: list[dict[str, Any]] = []
    if chat_turns:
        stages.append({"id": "chat", "kind": "dialogue", "turns": chat_turns,
                       "groups": {"by": groups}, "prompt": "Chat with {partner.name}."})
    stages.append({"id": "play", "kind": "choice", "groups": {"by": groups},
                   "prompt": PD_PROMPT, "options": ["cooperate", "defect"],
                   "payoff": {"matrix": [[3, 0], [5, 1]]}})
    return ScenarioSpec.model_validate({
        "name": "test-pd", "rounds": rounds,
        "population": {"size": size, "cohorts": cohorts or []},
        "stages": stages,
    })
