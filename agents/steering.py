"""Contrastive activation addition (CAA): per-trait steering directions and agent vectors.

Recipe (computed on the loaded model, never shipped as numbers):

1. For every Big Five trait, ``agents/data/steering_pairs.json`` holds contrastive pairs of
   first-person statements (high pole, low pole), written for this project, each answered to
   the same questions.
2. Each statement is fed as the assistant's reply to a question; the residual stream output
   of the chosen decoder layer(s) is averaged over the statement's tokens.
3. A trait's direction is ``mean(high) - mean(low)`` over all pairs and questions (averaged
   over the chosen layers when there are several); it is added, times the agent's
   coefficient, at those layers by :mod:`sim.backends.hf.steering_hook`.

The default layer is at about 40 % of the depth (layer 12 of SmolLM2-135M's 30), where
steering in small Llama-style models changes behaviour most without breaking fluency
(Rimsky et al. 2024, "Steering Llama 2 via Contrastive Activation Addition", ACL).

This module holds the recipe's pure parts (pairs, layers, recipe hash, the coefficients);
running it on a model, and caching the directions on disk keyed by the model's weights hash
and the recipe hash (pairs file, layers, recipe version, so a changed pair list or layer never
reuses a stale direction), is :mod:`sim.backends.hf.steering_directions`.

An agent's steering is ``sum_t coefficient_t * direction_t`` with
``coefficient_t = strength_t * (2 * score_t - 1)``: a persona at 0.5 gets no steering on that
trait, the poles get ``+-strength_t``. MBTI types map to coefficients through the correlations
of McCrae & Costa (1989, "Reinterpreting the Myers-Briggs Type Indicator from the perspective
of the five-factor model of personality", Journal of Personality 57(1), 17-40): E-I with
extraversion (|r| = .74), S-N with openness (.72), T-F with agreeableness (.44), J-P with
conscientiousness (.49) (men's sample; women's are within .05); neuroticism has no axis.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from agents.persona import TRAITS, BigFive, Mbti
from sim.errors import TraitLabError

__all__ = [
    "MBTI_CORRELATIONS",
    "RECIPE_VERSION",
    "SteeringDirections",
    "big_five_coefficients",
    "default_layers",
    "load_pairs",
    "mbti_coefficients",
    "recipe_hash",
]

RECIPE_VERSION = 1
"""Bump when the extraction recipe changes (invalidates cached directions)."""

# (axis letter for the trait's high pole, trait, |r|) from McCrae & Costa (1989), men's sample.
MBTI_CORRELATIONS: tuple[tuple[str, str, float], ...] = (
    ("E", "extraversion", 0.74),
    ("N", "openness", 0.72),
    ("F", "agreeableness", 0.44),
    ("J", "conscientiousness", 0.49),
)

Steering = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class SteeringDirections:
    """Per-trait directions, the layers they apply at, and where they came from.

    Attributes:
        directions: ``{trait: [hidden] float32 tensor}``.
        layers: decoder layer indices.
        weights_hash: the model's weights hash (``None`` for unhashed test models).
        recipe_hash: hash of the pairs file, layers and recipe version.
        norms: L2 norm of each direction (for reports).
        cached: True when loaded from the on-disk cache.
        path: cache file, if any.
    """

    directions: Mapping[str, Any]
    layers: tuple[int, ...]
    weights_hash: str | None
    recipe_hash: str
    norms: Mapping[str, float]
    cached: bool = False
    path: Path | None = None

    def manifest(self) -> dict[str, Any]:
        """JSON-ready description (no tensors)."""
        return {"layers": list(self.layers), "weights_hash": self.weights_hash,
                "recipe_hash": self.recipe_hash, "recipe_version": RECIPE_VERSION,
                "norms": dict(self.norms), "cached": self.cached,
                "path": str(self.path) if self.path else None}


def load_pairs(path: Path | None = None) -> dict[str, Any]:
    """Load the contrastive pairs (default: the packaged ``steering_pairs.json``).

    Raises:
        TraitLabError: the file is missing a trait or a pair is not ``[high, low]``.
    """
    if path is None:
        text = resources.files("agents").joinpath("data/steering_pairs.json").read_text("utf-8")
        where = "agents/data/steering_pairs.json"
    else:
        text, where = Path(path).read_text("utf-8"), str(path)
    data = json.loads(text)
    for trait in TRAITS:
        pairs = data.get("pairs", {}).get(trait)
        if not pairs or any(not isinstance(p, list) or len(p) != 2 for p in pairs):
            raise TraitLabError(
                f"{where}: pairs.{trait} must be a non-empty list of [high, low] statements. "
                "Fix: add contrastive pairs for every Big Five trait."
            )
    if not data.get("questions"):
        raise TraitLabError(f"{where}: 'questions' is empty. Fix: add at least one question.")
    return data


def default_layers(num_layers: int, depth: float = 0.4) -> tuple[int, ...]:
    """The decoder layer at ``depth`` of the stack (0.4 -> layer 12 of 30)."""
    return (min(num_layers - 1, max(0, round(depth * num_layers))),)


def recipe_hash(pairs: Mapping[str, Any], layers: Sequence[int]) -> str:
    """Hash of what determines the directions besides the weights."""
    blob = json.dumps({"pairs": pairs, "layers": list(layers), "v": RECIPE_VERSION},
                      sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def big_five_coefficients(big_five: BigFive, strengths: Mapping[str, float]) -> Steering:
    """Steering coefficients ``strength_t * (2 * score_t - 1)``; zero ones are left out."""
    scores = big_five.as_dict()
    out = []
    for trait in TRAITS:
        coef = float(strengths.get(trait, 0.0)) * (2.0 * scores[trait] - 1.0)
        if coef != 0.0:
            out.append((trait, round(coef, 6)))
    return tuple(out)


def mbti_coefficients(mbti: Mbti, strengths: Mapping[str, float]) -> Steering:
    """Coefficients for an MBTI type: ``strength_t * |r| * clarity * (+1 | -1)`` per axis.

    ``r`` is the McCrae & Costa (1989) correlation of the axis with its Big Five trait.
    """
    letters = dict(zip(("EI", "SN", "TF", "JP"), mbti.type, strict=True))
    clarity = dict(zip(("EI", "SN", "TF", "JP"), mbti.clarity, strict=True))
    axis_of = {"E": "EI", "N": "SN", "F": "TF", "J": "JP"}
    out = []
    for pole, trait, r in MBTI_CORRELATIONS:
        axis = axis_of[pole]
        sign = 1.0 if letters[axis] == pole else -1.0
        coef = float(strengths.get(trait, 0.0)) * r * float(clarity[axis]) * sign
        if coef != 0.0:
            out.append((trait, round(coef, 6)))
    return tuple(out)
