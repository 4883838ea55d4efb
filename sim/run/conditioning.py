"""Conditioning before a run: steering directions set on the backend, recorded in the run dir.

``prepare_steering`` loads (or computes and caches, :mod:`sim.backends.hf.steering_directions`)
the CAA directions of :mod:`agents.steering` for the loaded model and sets them on a backend
that declares steering, so requests' ``steering`` coefficients refer to them;
``write_steering_json`` records what was used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from agents.conditioning import needs_steering
from agents.steering import SteeringDirections
from sim.backends.hf.steering_directions import load_or_compute_directions
from sim.backends.openai import OpenAIBackend
from sim.backends.protocol import Backend, Steerable, capabilities_of
from sim.errors import RunError
from sim.scenario.spec import ScenarioSpec

if TYPE_CHECKING:
    from sim.backends.hf.backend import HFBackend

__all__ = ["check_server_steering", "prepare_run_conditioning", "prepare_steering",
           "write_steering_json"]


def prepare_steering(backend: Backend, *, layers: Sequence[int] | None = None,
                     cache_dir: Path | None = None) -> SteeringDirections:
    """Compute or load the directions for ``backend``'s model and set them on it.

    Raises:
        RunError: the backend does not declare steering (e.g. scripted).
    """
    if not capabilities_of(backend).steering:
        raise RunError("conditioning 'steering'/'both' needs the hf backend (activation "
                       f"steering runs inside the model; the {backend.info.backend} backend "
                       "cannot steer). Fix: --backend hf, or use conditioning 'prompt'.")
    dirs = load_or_compute_directions(cast("HFBackend", backend), layers=layers,
                                      cache_dir=cache_dir)
    cast(Steerable, backend).set_steering(dirs.directions, dirs.layers)
    return dirs


def _steering_field(spec: ScenarioSpec) -> tuple[str, str]:
    """The first field asking for steering, and its value."""
    pop = spec.population
    if pop.conditioning in ("steering", "both"):
        return "population.conditioning", pop.conditioning
    for i, cohort in enumerate(pop.cohorts):
        if cohort.conditioning in ("steering", "both"):
            return f"population.cohorts[{i}].conditioning", cohort.conditioning
    for i, item in enumerate(spec.interventions):
        if item.conditioning is not None and item.conditioning.conditioning in ("steering",
                                                                                "both"):
            return f"interventions[{i}].conditioning", item.conditioning.conditioning
    return "population.conditioning", pop.conditioning  # pragma: no cover - needs_steering


def check_server_steering(spec: ScenarioSpec, backend: Backend) -> None:
    """Refuse, before a run starts, steering through a server that holds no weights.

    A ``traitlab serve`` server steers with its own directions (``can_steer``).

    Raises:
        RunError: naming the field that asks for steering, and the fix.
    """
    if not needs_steering(spec) or capabilities_of(backend).steering:
        return
    if not isinstance(backend, OpenAIBackend) or backend.can_steer:
        return  # not a server backend (prepare_steering explains), or a traitlab serve
    field, value = _steering_field(spec)
    raise RunError(
        f"{field} is '{value}': activation steering needs the model's weights, and the openai "
        "backend only reaches a server. Fix: set it to 'prompt', run with --backend hf, or "
        "serve the model with `traitlab serve --steering` and point --base-url at it.")


def prepare_run_conditioning(spec: ScenarioSpec, backend: Backend, run_dir: Path) -> None:
    """Set steering directions on ``backend`` (and write steering.json) if any agent steers.

    A server that steers (``traitlab serve --steering``) holds its own directions: nothing to
    set here.

    Raises:
        RunError: steering is asked for on a backend that cannot steer.
    """
    if not needs_steering(spec):
        return
    check_server_steering(spec, backend)
    if isinstance(backend, OpenAIBackend):
        return  # a steering server (checked above) holds its own directions
    pop = spec.population
    dirs = prepare_steering(backend, layers=pop.steering_layers)
    write_steering_json(run_dir, dirs, {"all_traits": pop.steering_strength})


def write_steering_json(run_dir: Path, dirs: SteeringDirections,
                        strengths: Mapping[str, float]) -> Path:
    """Write ``steering.json`` (layers, hashes, norms, strengths) into ``run_dir``."""
    target = Path(run_dir) / "steering.json"
    target.write_text(json.dumps({"steering": dirs.manifest(), "strengths": dict(strengths)},
                                 indent=2))
    return target
