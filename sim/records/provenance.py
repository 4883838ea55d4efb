"""What a manifest says about where a run came from: versions, commit, design, prompts."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from sim.requests import GenerateRequest, ScoreRequest
from sim.scenario.spec import ScenarioSpec

__all__ = [
    "design_facts",
    "git_commit",
    "package_versions",
    "prompt_rows",
]


_PACKAGES = ("torch", "transformers", "mesa", "networkx", "pydantic", "polars", "numpy", "ray")


def prompt_rows(prompts: Mapping[str, GenerateRequest | ScoreRequest], seen: set[str]
                ) -> list[dict[str, Any]]:
    """Rows of :data:`PROMPT_SCHEMA` for the requests whose hash is not in ``seen`` (added)."""
    rows = []
    for key, request in prompts.items():
        if key in seen:
            continue
        seen.add(key)
        score = isinstance(request, ScoreRequest)
        rows.append({"prompt_hash": key, "kind": "score" if score else "generate",
                     "messages": json.dumps([{"role": m.role, "content": m.content}
                                             for m in request.messages], ensure_ascii=False),
                     "options": list(request.options) if score else None})
    return rows


def git_commit() -> str | None:
    """The checkout's commit, or None outside a git checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def design_facts(spec: ScenarioSpec) -> dict[str, Any]:
    """How personas condition the model and how each choice is decided, for report headers.

    Returns:
        ``conditioning`` (``population`` and each cohort: its conditioning, or ``scripted``
        for a rule policy), ``steering_strength`` and ``decisions`` (choice and sanction
        stage id -> ``sample`` or ``argmax``).
    """
    pop = spec.population
    conditioning: dict[str, str] = {"population": pop.conditioning}
    for i, cohort in enumerate(pop.cohorts):
        conditioning[cohort.name or f"cohort-{i}"] = (
            "scripted" if cohort.policy is not None else cohort.conditioning or pop.conditioning)
    decisions = {s.id: s.decision for s in spec.stages if s.kind in ("choice", "sanction")}
    return {"conditioning": conditioning, "steering_strength": pop.steering_strength,
            "decisions": decisions}


def package_versions() -> dict[str, str | None]:
    """The installed versions of the packages that decide a run's numbers."""
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found
