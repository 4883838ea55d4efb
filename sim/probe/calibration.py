"""Strength calibration: a steering coefficient per trait that matches the prompted shift.

For each trait, on a *held-apart* item set (IPIP-NEO-120 items whose wording is not in the
instrument under study, so calibration never sees the measured items):

- prompted shift = measured trait score of an "extremely high" single-trait persona prompt
  minus that of an "extremely low" one;
- steered shift(c) = score with steering ``+c`` minus score with ``-c`` on a neutral persona
  (name only), for each ``c`` of a grid;
- the calibrated strength is the ``c`` at which the steered shift reaches the prompted shift
  (linear interpolation on the grid, with shift(0) = 0). When no grid value reaches it:
  status ``capped`` at the largest value.

Noise floor: a shift smaller than ``min_shift`` (scale points of the 1..5 trait score,
default :data:`MIN_SHIFT` = 0.12) is not taken as a real effect. When the prompted shift is
below it there is nothing to match: status ``prompt_inert`` and the grid's middle value is
used. When no steered shift on the grid reaches it, steering does not move the trait
measurably: status ``steer_inert`` at the largest value. 0.12 is 0.2 human SD of an IPIP-NEO
domain score (SD about 0.6 on the per-item 1..5 scale, Johnson's norms), the smallest effect
of interest of equivalence tests (``docs/measurement.md``, steering calibration).

A persona's steering coefficient is then ``strength * (2 * score - 1)`` (see
:mod:`agents.steering`), so "extremely high" prompting and full-strength steering are
compared at matched strength.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.instruments import Instrument, load_instrument
from agents.persona import TRAITS
from agents.prompting import trait_sentence
from agents.survey import Respondent, SurveyDesign, rows_from_scores, survey_requests
from sim.backends.protocol import Backend, capabilities_of
from sim.errors import RunError

__all__ = ["DEFAULT_GRID", "MIN_SHIFT", "Calibration", "calibrate", "held_apart_items"]

DEFAULT_GRID: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
MIN_SHIFT = 0.12
"""Smallest shift (scale points, 1..5 trait score) counted as real: 0.2 human SD."""


@dataclass(frozen=True)
class Calibration:
    """Calibrated strength per trait and the evidence behind it."""

    strengths: dict[str, float]
    prompt_shift: dict[str, float]
    steer_shift: dict[str, dict[float, float]]
    status: dict[str, str]
    items: dict[str, list[str]]
    min_shift: float = MIN_SHIFT

    def manifest(self) -> dict[str, Any]:
        """JSON-ready form (with the noise floor ``min_shift`` the statuses were judged by)."""
        return {"strengths": self.strengths, "prompt_shift": self.prompt_shift,
                "steer_shift": {t: {str(c): v for c, v in d.items()}
                                for t, d in self.steer_shift.items()},
                "status": self.status, "items": self.items, "min_shift": self.min_shift}


def held_apart_items(measured: Instrument, per_trait: int = 4,
                     pool: str = "ipip-neo-120") -> dict[str, list[str]]:
    """Items of ``pool`` whose text is not in ``measured``, balanced by keying, per trait."""
    seen = {i.text.strip().lower() for i in measured.items}
    source = load_instrument(pool)
    out: dict[str, list[str]] = {}
    for trait in TRAITS:
        cands = [i for i in source.items if i.trait == trait and i.text.strip().lower() not in seen]
        pos = [i.id for i in cands if i.keyed > 0]
        neg = [i.id for i in cands if i.keyed < 0]
        half = per_trait // 2
        chosen = pos[:half] + neg[: per_trait - half]
        out[trait] = chosen
    return out


def _score_of(rows: list[dict[str, Any]], agent: str, trait: str, inst: Instrument) -> float:
    vals = [r["expected"] if r["keyed"] > 0 else inst.reverse(r["expected"])
            for r in rows if r["agent"] == agent and r["trait"] == trait and not r["refused"]]
    return float(np.mean(vals)) if vals else float("nan")


def calibrate(backend: Backend, measured: Instrument, *, grid: Sequence[float] = DEFAULT_GRID,
              per_trait: int = 4, name: str = "Alex", orders: tuple[str, ...] = ("asc", "desc"),
              min_shift: float = MIN_SHIFT) -> Calibration:
    """Calibrate steering strength per trait against prompting (one batched score call).

    Args:
        backend: a backend that declares steering, with directions set for the five traits.
        measured: the instrument the study measures (its items are excluded).
        grid: coefficients tried, ascending and positive.
        per_trait: held-apart items per trait.
        name: the neutral persona's name.
        orders: option orders administered.
        min_shift: the noise floor (scale points): smaller prompted or steered shifts do
            not count (statuses ``prompt_inert``, ``steer_inert``).

    Raises:
        ValueError: ``min_shift`` is negative or not finite.
        RunError: the backend does not declare steering.
    """
    if not capabilities_of(backend).steering:
        raise RunError(f"calibration compares steering with prompting, and the "
                       f"{backend.info.backend} backend cannot steer. Fix: calibrate on the hf "
                       "backend, or give a fixed strength (probe --strength N).")
    if not np.isfinite(min_shift) or min_shift < 0:
        raise ValueError(f"min_shift={min_shift}: use a finite shift >= 0 (scale points, "
                         f"default {MIN_SHIFT})")
    pool = load_instrument("ipip-neo-120")
    items = held_apart_items(measured, per_trait)
    neutral = f"You are {name}."
    pairs = []
    for trait in TRAITS:
        resps = [
            Respondent(f"{trait}:prompt:high",
                       f"{neutral} {trait_sentence(trait, 1.0)}"),
            Respondent(f"{trait}:prompt:low",
                       f"{neutral} {trait_sentence(trait, 0.0)}"),
        ]
        for c in grid:
            resps.append(Respondent(f"{trait}:steer:+{c}", neutral, ((trait, float(c)),)))
            resps.append(Respondent(f"{trait}:steer:-{c}", neutral, ((trait, -float(c)),)))
        design = SurveyDesign(orders=orders, paraphrases=1,  # type: ignore[arg-type]
                              items=tuple(items[trait]))
        pairs += survey_requests(pool, resps, design)
    results = backend.score([req for _p, req in pairs])
    rows = rows_from_scores(pool, pairs, results, run_id="calibration")
    strengths, pshift, sshift, status = {}, {}, {}, {}
    for trait in TRAITS:
        p = _score_of(rows, f"{trait}:prompt:high", trait, pool) - \
            _score_of(rows, f"{trait}:prompt:low", trait, pool)
        shifts = {float(c): _score_of(rows, f"{trait}:steer:+{c}", trait, pool)
                  - _score_of(rows, f"{trait}:steer:-{c}", trait, pool) for c in grid}
        pshift[trait], sshift[trait] = round(p, 4), {c: round(v, 4) for c, v in shifts.items()}
        strengths[trait], status[trait] = _match(p, shifts, grid, min_shift)
    return Calibration(strengths, pshift, sshift, status, items, min_shift)


def _match(target: float, shifts: dict[float, float], grid: Sequence[float],
           min_shift: float = MIN_SHIFT) -> tuple[float, str]:
    """The coefficient whose steered shift reaches ``target``, and the status."""
    if not np.isfinite(target) or target <= 0 or target < min_shift:
        return float(grid[len(grid) // 2]), "prompt_inert"
    xs = [0.0, *[float(c) for c in grid]]
    ys = [0.0, *[shifts[float(c)] for c in grid]]
    if not any(np.isfinite(y) and y >= min_shift for y in ys[1:]):
        return float(grid[-1]), "steer_inert"
    for k in range(1, len(xs)):
        if ys[k] >= target:
            lo_x, hi_x, lo_y, hi_y = xs[k - 1], xs[k], ys[k - 1], ys[k]
            frac = (target - lo_y) / (hi_y - lo_y) if hi_y > lo_y else 1.0
            return round(lo_x + frac * (hi_x - lo_x), 4), "matched"
    return float(grid[-1]), "capped"
