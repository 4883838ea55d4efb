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
from sim.backends.protocol import Backend, Steerable, capabilities_of
from sim.errors import RunError
from sim.scenario.spec import ScenarioSpec

if TYPE_CHECKING:
    from sim.backends.hf.backend import HFBackend

__all__ = ["prepare_run_conditioning", "prepare_steering", "write_steering_json"]


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


def prepare_run_conditioning(spec: ScenarioSpec, backend: Backend, run_dir: Path) -> None:
    """Set steering directions on ``backend`` (and write steering.json) if any agent steers.

    Raises:
        RunError: steering is asked for on a backend that cannot steer.
    """
    if not needs_steering(spec):
        return
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
