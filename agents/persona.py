"""Big Five and MBTI personas, seeded population samplers and their prompt rendering.

Traits are scores in [0, 1] (0.5 is the population middle). MBTI types carry an optional
clarity per axis in [0, 1]; they convert to Big Five coefficients through the documented
correlations of McCrae & Costa (1989): E-I with extraversion, S-N with openness, T-F with
agreeableness and J-P with conscientiousness.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MBTI_AXES",
    "TRAITS",
    "TRAIT_POLES",
    "BigFive",
    "Mbti",
    "Persona",
    "default_names",
    "intensity_word",
    "mbti_to_big_five",
    "render_persona",
    "sample_big_five",
]

TRAITS: tuple[str, ...] = (
    "openness",
    "conscientiousness",
    "extraversion",
    "agreeableness",
    "neuroticism",
)

# Each axis: (first letter, second letter, Big Five trait it maps to, sign for first letter).
MBTI_AXES: tuple[tuple[str, str, str, float], ...] = (
    ("E", "I", "extraversion", +1.0),
    ("S", "N", "openness", -1.0),
    ("T", "F", "agreeableness", -1.0),
    ("J", "P", "conscientiousness", +1.0),
)
_MBTI_RE = re.compile(r"^[EI][SN][TF][JP]$")

# Adjectives written for this project: (high pole, low pole) per trait (shared with prompting).
TRAIT_POLES: dict[str, tuple[str, str]] = {
    "openness": ("curious, imaginative and open to new ideas",
                 "conventional, practical and fond of the familiar"),
    "conscientiousness": ("organised, dependable and disciplined",
                          "spontaneous, easy-going and careless about plans"),
    "extraversion": ("outgoing, talkative and energetic",
                     "reserved, quiet and solitary"),
    "agreeableness": ("warm, trusting and cooperative",
                      "critical, suspicious and competitive"),
    "neuroticism": ("anxious, moody and easily stressed",
                    "calm, even-tempered and emotionally stable"),
}

_NAMES: tuple[str, ...] = (
    "Alex", "Blake", "Casey", "Dana", "Eli", "Frankie", "Gray", "Harper", "Indy", "Jules",
    "Kai", "Logan", "Morgan", "Noel", "Oakley", "Parker", "Quinn", "Reese", "Sage", "Taylor",
    "Uri", "Val", "Wren", "Xen", "Yael", "Zion", "Ari", "Bay", "Cam", "Drew", "Emery", "Finley",
)


@dataclass(frozen=True, slots=True)
class BigFive:
    """Five trait scores in [0, 1], in the order of :data:`TRAITS`."""

    openness: float
    conscientiousness: float
    extraversion: float
    agreeableness: float
    neuroticism: float

    def as_dict(self) -> dict[str, float]:
        """Return ``{trait: score}`` in :data:`TRAITS` order."""
        return {t: float(getattr(self, t)) for t in TRAITS}

    @classmethod
    def from_dict(cls, scores: dict[str, float]) -> BigFive:
        """Build from a mapping with all five traits."""
        return cls(**{t: float(scores[t]) for t in TRAITS})


@dataclass(frozen=True, slots=True)
class Mbti:
    """An MBTI type with a clarity per axis in [0, 1] (1 = very clear preference)."""

    type: str
    clarity: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if not _MBTI_RE.match(self.type):
            raise ValueError(f"invalid MBTI type {self.type!r}: expected four letters like INTJ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Persona:
    """Who an agent is: a name, traits and an optional background sentence."""

    name: str
    big_five: BigFive
    mbti: Mbti | None = None
    background: str = ""


def mbti_to_big_five(mbti: Mbti) -> BigFive:
    """Map an MBTI type to Big Five scores.

    Each axis moves its correlated trait away from 0.5 by ``0.5 * clarity`` in the pole's
    direction (E -> high extraversion, N -> high openness, F -> high agreeableness,
    J -> high conscientiousness). Neuroticism has no MBTI axis and stays at 0.5.
    """
    scores = dict.fromkeys(TRAITS, 0.5)
    for (first, _second, trait, sign), letter, clarity in zip(
        MBTI_AXES, mbti.type, mbti.clarity, strict=True
    ):
        direction = sign if letter == first else -sign
        scores[trait] = 0.5 + direction * 0.5 * clarity
    return BigFive.from_dict(scores)


def intensity_word(score: float) -> str | None:
    """Qualifier for a trait score: graded words towards each pole, ``None`` in the middle."""
    distance = abs(score - 0.5)
    if distance < 0.1:
        return None
    if distance < 0.25:
        return "somewhat"
    if distance < 0.4:
        return "very"
    return "extremely"


def render_persona(persona: Persona) -> str:
    """Render a persona as second-person system-prompt text with graded intensity."""
    lines = [f"You are {persona.name}."]
    for trait, score in persona.big_five.as_dict().items():
        word = intensity_word(score)
        high, low = TRAIT_POLES[trait]
        if word is None:
            lines.append(f"You are average in {trait}: neither {high.split(',')[0]} "
                         f"nor {low.split(',')[0]}.")
        else:
            lines.append(f"You are {word} {high if score > 0.5 else low}.")
    if persona.background:
        lines.append(persona.background)
    return " ".join(lines)


def default_names(count: int) -> list[str]:
    """Deterministic readable names; beyond the list they get a numeric suffix."""
    return [
        _NAMES[i % len(_NAMES)] + ("" if i < len(_NAMES) else f" {i // len(_NAMES) + 1}")
        for i in range(count)
    ]


def sample_big_five(
    rng: np.random.Generator,
    count: int,
    *,
    method: str = "uniform",
    mean: Sequence[float] | None = None,
    sd: float = 0.15,
) -> list[BigFive]:
    """Sample ``count`` Big Five profiles.

    Args:
        rng: the run's population stream.
        count: number of profiles.
        method: ``uniform`` on [0, 1]^5 or ``normal`` around ``mean`` (clipped to [0, 1]).
        mean: five means for ``normal`` (default 0.5 each).
        sd: standard deviation for ``normal``.

    Returns:
        The sampled profiles, rounded to 3 decimals so records are exact.
    """
    if method == "uniform":
        draws = rng.uniform(0.0, 1.0, size=(count, len(TRAITS)))
    elif method == "normal":
        centre = np.asarray(mean if mean is not None else [0.5] * len(TRAITS), dtype=float)
        draws = np.clip(rng.normal(centre, sd, size=(count, len(TRAITS))), 0.0, 1.0)
    else:
        raise ValueError(f"unknown sampling method {method!r}")
    return [BigFive(*(round(float(x), 3) for x in row)) for row in draws]
