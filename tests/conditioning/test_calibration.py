"""Strength calibration against a scripted steerable responder with known effect sizes.

The responder is not a model: its answer to a held-apart item moves by ``prompt`` scale
points for an "extremely high" persona sentence of the item's trait (and down for "extremely
low"), and by ``gain * c`` for a steering coefficient ``c`` on that trait. So the prompted
shift is ``2 * prompt`` and the steered shift at ``c`` is ``2 * gain * c``: calibration must
find ``c = prompt / gain`` unless one of them is under the noise floor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest

from agents.instruments import load_instrument
from agents.persona import TRAITS
from agents.prompting import trait_sentence
from sim.backends.protocol import Capabilities
from sim.backends.scripted import ScriptedBackend
from sim.errors import RunError
from sim.probe.calibration import MIN_SHIFT, _match, calibrate
from sim.requests import ModelInfo, ScoreRequest, ScoreResult


class SteerableResponders:
    """Answers by prompt sentence and steering coefficient, per trait (deterministic)."""

    capabilities = Capabilities(steering=True)

    def __init__(self, prompt: Mapping[str, float], gain: Mapping[str, float]) -> None:
        self.prompt, self.gain = prompt, gain
        pool = load_instrument("ipip-neo-120")
        self.items = {item.text: item for item in pool.items}

    def set_steering(self, directions: Mapping[str, object], layers: Sequence[int]) -> None:
        """Unused: the effect of a coefficient is ``gain``, not a direction."""

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(backend="synthetic", model_id="steerable")

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        out = []
        for req in requests:
            item = self.items[req.messages[-1].content.rsplit("Statement: ", 1)[1]]
            system = req.messages[0].content
            shift = 0.0
            if trait_sentence(item.trait, 1.0) in system:
                shift += self.prompt[item.trait]
            if trait_sentence(item.trait, 0.0) in system:
                shift -= self.prompt[item.trait]
            shift += sum(self.gain[t] * c for t, c in req.steering if t == item.trait)
            latent = 3.0 + item.keyed * shift
            logps = [-8.0 * (int(o) - latent) ** 2 for o in req.options]
            top = max(logps)
            norm = top + math.log(sum(math.exp(x - top) for x in logps))
            out.append(ScoreResult(logprobs=tuple(x - norm for x in logps)))
        return out


def _calibrate(prompt: float, gain: float, **kw):
    backend = SteerableResponders(dict.fromkeys(TRAITS, prompt), dict.fromkeys(TRAITS, gain))
    return calibrate(backend, load_instrument("ipip-50"), **kw)


def test_matched_strength_is_recovered():
    cal = _calibrate(0.5, 0.125)  # steering at c = 4 moves answers exactly as the prompt
    assert set(cal.status.values()) == {"matched"}
    for trait in TRAITS:
        assert cal.prompt_shift[trait] == pytest.approx(1.0, abs=0.05)
        assert cal.strengths[trait] == pytest.approx(4.0, abs=1e-3)


def test_prompt_shift_under_the_floor_is_prompt_inert():
    cal = _calibrate(0.03, 0.1)  # prompted shift 0.06 > 0 but < 0.12
    assert all(0 < s < MIN_SHIFT for s in cal.prompt_shift.values())
    assert set(cal.status.values()) == {"prompt_inert"}
    # the same evidence judged with a floor of 0 counts as a (tiny) match
    assert set(_calibrate(0.03, 0.1, min_shift=0.0).status.values()) == {"matched"}


def test_steered_shifts_under_the_floor_never_reach_a_target():
    cal = _calibrate(0.5, 0.005)  # steered shift at c = 8: 0.08 < 0.12
    assert set(cal.status.values()) == {"steer_inert"}
    assert all(s == 8.0 for s in cal.strengths.values())


def test_floor_is_recorded_in_the_manifest():
    cal = _calibrate(0.5, 0.1, min_shift=0.3)
    assert cal.manifest()["min_shift"] == 0.3
    assert _calibrate(0.5, 0.1).manifest()["min_shift"] == MIN_SHIFT


@pytest.mark.parametrize("target,shifts,status", [
    (0.11, {1.0: 0.5, 2.0: 1.0}, "prompt_inert"),
    (0.5, {1.0: 0.05, 2.0: 0.1}, "steer_inert"),
    (0.5, {1.0: 0.2, 2.0: 0.4}, "capped"),
    (0.3, {1.0: 0.2, 2.0: 0.4}, "matched"),
    (float("nan"), {1.0: 0.2, 2.0: 0.4}, "prompt_inert"),
])
def test_match_statuses(target, shifts, status):
    assert _match(target, shifts, (1.0, 2.0))[1] == status


def test_negative_floor_is_refused():
    with pytest.raises(ValueError, match=r"min_shift=-0\.1"):
        _calibrate(0.5, 0.1, min_shift=-0.1)


def test_calibration_refuses_a_backend_that_cannot_steer():
    with pytest.raises(RunError, match=r"scripted backend cannot steer.*--strength"):
        calibrate(ScriptedBackend(), load_instrument("ipip-50"))
