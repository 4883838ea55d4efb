"""Conditioning before a run: steering directions set on the backend, recorded in the run dir.

``prepare_steering`` loads (or computes and caches) the CAA directions of
:mod:`agents.steering` for the loaded model and sets them on the backend, so requests'
``steering`` coefficients refer to them; ``write_steering_json`` records what was used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.steering import SteeringDirections, load_or_compute_directions
from sim.errors import RunError

__all__ = ["prepare_steering", "write_steering_json"]


def prepare_steering(backend: Any, *, layers: Sequence[int] | None = None,
                     cache_dir: Path | None = None) -> SteeringDirections:
    """Compute or load the directions for ``backend``'s model and set them on it.

    Raises:
        RunError: the backend cannot steer (it has no ``set_steering``, e.g. scripted).
    """
    if not hasattr(backend, "set_steering"):
        raise RunError("conditioning 'steering'/'both' needs the hf backend (activation "
                       "steering runs inside the model). Fix: --backend hf, or use "
                       "conditioning 'prompt'.")
    dirs = load_or_compute_directions(backend, layers=layers, cache_dir=cache_dir)
    backend.set_steering(dirs.directions, dirs.layers)
    return dirs


def write_steering_json(run_dir: Path, dirs: SteeringDirections,
                        strengths: Mapping[str, float]) -> Path:
    """Write ``steering.json`` (layers, hashes, norms, strengths) into ``run_dir``."""
    target = Path(run_dir) / "steering.json"
    target.write_text(json.dumps({"steering": dirs.manifest(), "strengths": dict(strengths)},
                                 indent=2))
    return target
