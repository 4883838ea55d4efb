"""Scripted policies behind typed edges, and backends' declared capabilities."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import pytest

from agents.policies import POLICIES, policy_for
from sim.backends.protocol import Capabilities, capabilities_of
from sim.backends.scripted import ScriptedBackend, policy_probabilities
from sim.errors import RunError
from sim.executors.local import LocalExecutor
from sim.requests import (
    GenerateRequest,
    GenerateResult,
    Message,
    ModelInfo,
    PolicyCall,
    PolicyFacts,
    SamplingParams,
    ScoreRequest,
    ScoreResult,
)
from sim.run.conditioning import prepare_steering
from sim.scenario.spec import PolicySpec
from tests.scenario_builders import pd

ROOT = Path(__file__).resolve().parents[1]
PD = ["cooperate", "defect"]


NO_FACTS = PolicyFacts()


def _probs(facts: PolicyFacts = NO_FACTS, options: Sequence[str] = PD, **spec: Any
           ) -> list[float]:
    return policy_probabilities(PolicyCall(spec=PolicySpec(**spec), facts=facts), options)


def test_registry_answers_every_policy_name_the_spec_allows():
    assert set(POLICIES) == set(get_args(PolicySpec.model_fields["name"].annotation))
    assert [n for n, p in POLICIES.items() if p.stateful] == ["naming_game"]
    with pytest.raises(ValueError, match="unknown scripted policy 'nope'"):
        policy_for("nope")
    with pytest.raises(TypeError, match="no inventory"):
        policy_for("always").update([], "a", ["b"])


def test_random_defaults_to_even_odds_for_its_option():
    assert _probs(name="random", option="defect") == [0.5, 0.5]
    assert _probs(name="random", option="defect", p=0.8) == pytest.approx([0.2, 0.8])
    assert _probs(options=["a", "b", "c", "d"], name="random") == [0.25] * 4


def test_reactive_policies_read_typed_facts():
    assert _probs(name="tit_for_tat") == [1.0, 0.0]
    assert _probs(PolicyFacts(partner_last_choice="defect"), name="tit_for_tat") == [0.0, 1.0]
    assert _probs(PolicyFacts(partner_last_choice="defect"), name="tit_for_tat",
                  cooperate="defect") == [0.0, 1.0]
    assert _probs(PolicyFacts(received=("cooperate",)), name="grim_trigger") == [1.0, 0.0]
    assert _probs(PolicyFacts(received=("cooperate", "defect")), name="grim_trigger") \
        == [0.0, 1.0]
    assert _probs(name="always", option="defect") == [0.0, 1.0]


def test_threshold_defaults_to_the_last_option_at_zero():
    def plays(values: tuple[tuple[str, float], ...], **spec: Any) -> list[float]:
        return _probs(PolicyFacts(partner_values=values), ["reject", "accept"],
                      name="threshold", **spec)

    assert plays((("offer", 0.0),)) == [0.0, 1.0]
    assert plays(()) == [1.0, 0.0]  # nothing offered this round
    assert plays((("offer", 2.0), ("bonus", 5.0)), threshold=4) == [0.0, 1.0]  # the largest
    assert plays((("offer", 2.0),), threshold=4, option="reject") == [0.0, 1.0]


def test_trait_linked_follows_the_agents_own_trait():
    def plays(agreeableness: float, options: Sequence[str] = PD, **spec: Any) -> list[float]:
        facts = PolicyFacts(traits=(("extraversion", 0.1), ("agreeableness", agreeableness)))
        return _probs(facts, options, name="trait_linked", trait="agreeableness", **spec)

    # q = clip(0.5 + 0.8 * (0.9 - 0.5)) = 0.82; clipped at 1 for slope 2 (0.5 + 2 * 0.4 = 1.3)
    assert plays(0.9, option="cooperate", slope=0.8) == pytest.approx([0.82, 0.18])
    assert plays(0.9, option="cooperate", slope=2.0) == pytest.approx([1.0, 0.0])
    assert plays(0.1, option="cooperate", slope=0.8, base=0.6) == pytest.approx([0.28, 0.72])
    assert plays(0.3, option="cooperate") == pytest.approx([0.5, 0.5])  # slope 0: base
    # no option: binomial over 3 levels with q = 0.5 + 1.0 * (0.75 - 0.5) = 0.75
    assert plays(0.75, ["0", "5", "10"], slope=1.0) == pytest.approx([1 / 16, 6 / 16, 9 / 16])
    # a persona without the trait sits at the midpoint
    assert _probs(name="trait_linked", trait="openness", option="defect", slope=1.0) \
        == pytest.approx([0.5, 0.5])


def test_haggle_messages_and_stock_phrases_for_other_policies():
    backend = ScriptedBackend()
    msgs = (Message("user", "talk"),)
    haggler = PolicyCall(spec=PolicySpec(name="haggle", concession=0.5),
                         facts=PolicyFacts(role="buyer", private=(("reserve", 80.0),),
                                           my_offer=56.0, partner_offer=95.0))
    plain = PolicyCall(spec=PolicySpec(name="tit_for_tat"))
    out = backend.generate([
        GenerateRequest(messages=msgs, policy=haggler),
        GenerateRequest(messages=msgs, policy=plain, sampling=SamplingParams(seed=3)),
        GenerateRequest(messages=msgs, sampling=SamplingParams(seed=3)),
    ])
    assert out[0].text == "I offer 68."  # 56 + 0.5 * (80 - 56)
    assert out[1].text == out[2].text and "offer" not in out[1].text


def test_agent_facts_are_checked_by_name():
    from dataclasses import replace

    with pytest.raises(TypeError):
        replace(PolicyFacts(), partner_ofer=3.0)


def test_agents_import_no_backend_or_engine():
    code = ("import sys, agents.agent, agents.policies, agents.steering, agents.population, "
            "agents.survey; print(sorted(m for m in sys.modules if m.startswith("
            "('sim.backends', 'sim.engine', 'sim.executors', 'sim.run'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------- capabilities
class _Quiet:
    """A minimal backend that also has the optional methods, but declares none of them."""

    def __init__(self) -> None:
        self.forgot = 0
        self.stats = {"retries": 5}

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(backend="quiet", model_id="quiet")

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        return [ScoreResult(logprobs=(0.0,) * len(r.options)) for r in requests]

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return [GenerateResult(text="hi") for _ in requests]

    def forget_prefixes(self) -> None:
        self.forgot += 1

    def set_steering(self, directions: Any, layers: Any) -> None:
        raise AssertionError("never called: steering is not declared")


class _Declared(_Quiet):
    capabilities = Capabilities(prefix_cache=True, stats=True)


def test_undeclared_abilities_are_not_used():
    quiet = _Quiet()
    assert capabilities_of(quiet) == Capabilities()
    executor = LocalExecutor(quiet)  # type: ignore[arg-type]
    executor.begin_step()
    executor.run([ScoreRequest(messages=(Message("user", "x"),), options=("a", "b"))])
    assert quiet.forgot == 0 and executor.stats.retries == 0
    with pytest.raises(RunError, match=r"quiet backend cannot steer.*Fix: --backend hf"):
        prepare_steering(quiet)  # type: ignore[arg-type]


def test_declared_abilities_are_used():
    declared = _Declared()
    executor = LocalExecutor(declared)  # type: ignore[arg-type]
    executor.begin_step()

    def bump(requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        declared.stats["retries"] += 2
        return _Quiet.score(declared, requests)

    declared.score = bump  # type: ignore[method-assign]
    executor.run([ScoreRequest(messages=(Message("user", "x"),), options=("a", "b"))])
    assert declared.forgot == 1 and executor.stats.retries == 2


def test_scripted_declares_nothing_and_a_wrong_declaration_is_an_error():
    assert ScriptedBackend.capabilities == Capabilities()

    class Wrong(_Quiet):
        capabilities = ("steering",)

    with pytest.raises(TypeError, match=r"Wrong\.capabilities must be a Capabilities"):
        capabilities_of(Wrong())


def test_steering_scenario_on_scripted_backend_is_refused(tmp_path):
    from sim.run.runner import run_scenario
    from sim.scenario.spec import RunConfig

    spec = pd(size=2, rounds=1)
    spec = spec.model_copy(update={"population": spec.population.model_copy(
        update={"conditioning": "steering"})})
    with pytest.raises(RunError, match="needs the hf backend"):
        run_scenario(spec, RunConfig(backend="scripted", seed=0, out=tmp_path))


def _pick(options: Sequence[str], **spec: Any) -> str:
    probs = _probs(options=options, **spec)
    assert sorted(probs) == [0.0] * (len(options) - 1) + [1.0]
    return options[probs.index(1.0)]


LEVELS_0_TO_20 = [str(x) for x in range(21)]


@pytest.mark.parametrize(("highest", "catch"), [(20, "10"), (16, "8"), (7, "3"), (1, "0"),
                                                (0, "0")])
def test_sustainable_takes_at_most_half_of_the_highest_offered_level(highest, catch):
    # Offered 0..h: the largest level at or below h / 2 (7 -> 3.5 -> 3; 1 -> 0.5 -> 0).
    assert _pick(LEVELS_0_TO_20[:highest + 1], name="sustainable") == catch


def test_sustainable_and_greedy_on_other_grids_and_options():
    evens = ["0", "4", "8", "12"]  # h = 12, p = 0.5: 6 -> 4 (8 would be above)
    assert _pick(evens, name="sustainable") == "4"
    assert _pick(evens, name="sustainable", p=0.25) == "0"  # 3 -> 0
    assert _pick(["5", "6", "7"], name="sustainable") == "5"  # none at or below 3.5: lowest
    assert _pick(["8", "2", "5"], name="greedy") == "8"  # order of listing does not matter
    assert _pick(LEVELS_0_TO_20[:13], name="greedy") == "12"
    assert _pick(["hold", "fish"], name="greedy") == "fish"
    assert _pick(["hold", "fish"], name="sustainable") == "hold"
    assert _pick(["hold", "fish"], name="greedy", option="hold") == "hold"


def test_sustainable_fishers_never_shrink_a_doubling_stock():
    # Five fishers offered 0..floor(L / 5) each: together at most L / 2, so
    # min(100, 2 * (L - total)) >= L for every stock L from 0 to the cap.
    for lake in range(101):
        offered = LEVELS_0_TO_20[:lake // 5 + 1]
        total = 5 * int(_pick(offered, name="sustainable"))
        assert min(100, 2 * (lake - total)) >= lake
