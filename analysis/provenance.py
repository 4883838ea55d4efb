"""What produced the runs of a report: model, dtype, conditioning, temperature, decisions, seeds.

Everything is read from each run's ``manifest.json`` (its ``design`` entry, written by
:func:`sim.records.recorder.design_facts`). Runs recorded before that entry existed get the
same facts from their resolved ``scenario.yaml``. Values that differ between runs are listed
side by side, so a sweep's header shows every model, seed and commit it mixes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analysis.io import Run

__all__ = ["HEADER_FIELDS", "header"]

HEADER_FIELDS: tuple[str, ...] = (
    "model", "dtype", "backend", "conditioning", "temperature", "decision rule", "seeds",
    "commit", "traitlab", "finished",
)
"""The header's fields, in display order."""


def _design(run: Run) -> dict[str, Any]:
    design = run.manifest.get("design")
    if isinstance(design, dict):
        return design
    from sim.records.recorder import design_facts
    from sim.scenario.spec import ScenarioSpec

    try:
        return design_facts(ScenarioSpec.model_validate(run.scenario))
    except Exception:  # an old or hand-edited scenario: its facts are unknown
        return {}


def _decision(design: dict[str, Any]) -> str:
    decisions = design.get("decisions")
    if not decisions:
        return "no choice stages" if decisions == {} else "unknown"
    words = {"sample": "sampled from the option probabilities", "argmax": "argmax"}
    rules = set(decisions.values())
    if len(rules) == 1:
        return words.get(next(iter(rules)), str(next(iter(rules))))
    return "; ".join(f"{sid}: {words.get(r, r)}" for sid, r in decisions.items())


def _conditioning(design: dict[str, Any]) -> str:
    cond = design.get("conditioning") or {}
    if not cond:
        return "unknown"
    text = ", ".join(f"{k}: {v}" if k != "population" else str(v) for k, v in cond.items())
    if any(v in ("steering", "both") for v in cond.values()):
        text += f" (steering strength {design.get('steering_strength')})"
    return text


def _one_run(run: Run) -> dict[str, str]:
    m = run.manifest
    model = m.get("model") or {}
    config = m.get("run_config") or {}
    design = _design(run)
    backend = str(model.get("backend") or config.get("backend") or "unknown")
    return {
        "model": str(model.get("model_id") or "unknown"),
        "dtype": str(model.get("dtype") or ("n/a (no model)" if backend == "scripted"
                                            else config.get("dtype", "unknown"))),
        "backend": backend + (f" on {model['device']}" if model.get("device") else ""),
        "conditioning": _conditioning(design),
        "temperature": f"{config.get('temperature', 'unknown')} (generated messages; choice "
                       "probabilities are the softmax of option log-likelihoods)",
        "decision rule": _decision(design),
        "seeds": str(m.get("seed")) + (f" ({m.get('replicas')} replicas)"
                                       if (m.get("replicas") or 1) > 1 else ""),
        "commit": str(m.get("git_commit") or "unknown (not a git checkout)"),
        "traitlab": str(m.get("traitlab") or "unknown"),
        "finished": str(m.get("finished_at") or m.get("status") or "unknown"),
    }


def header(runs: Sequence[Run]) -> list[tuple[str, str]]:
    """The header fields of a report over ``runs``: ``(name, value)`` in display order.

    Values shared by every run are shown once; differing values are joined with `` | ``
    in run order (seeds always list every run's seed). ``finished`` is the latest end time.
    """
    per_run = [_one_run(r) for r in runs]
    out = []
    for name in HEADER_FIELDS:
        values = [p[name] for p in per_run]
        if name == "finished":
            value = max(values)
        elif name == "seeds":
            seeds = list(dict.fromkeys(values))
            value = (", ".join(seeds) if len(seeds) <= 16
                     else f"{len(seeds)} seeds: {seeds[0]}, {seeds[1]}, ... {seeds[-1]}")
        else:
            value = " | ".join(dict.fromkeys(values))
        out.append((name, value))
    return out
