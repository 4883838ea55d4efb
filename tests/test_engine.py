"""Engine behaviour: batching per wave, payoffs, determinism, replicas."""

from __future__ import annotations

import polars as pl
import pytest

from analysis.io import load_run
from sim.backends.scripted import ScriptedBackend
from sim.engine.loop import Engine
from sim.executors.local import LocalExecutor
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig
from tests.scenario_builders import pd


def _engine(spec, backend, **config):
    return Engine(spec, RunConfig(backend="scripted", **config), LocalExecutor(backend))


def test_choice_stage_of_16_agents_is_one_backend_call():
    backend = ScriptedBackend()
    engine = _engine(pd(size=16, rounds=1), backend)
    report = engine.step()
    assert backend.calls == {"generate": 0, "score": 1}
    assert sum(r["kind"] == "choice" for r in report.rows) == 16


def test_dialogue_of_8_pairs_by_4_turns_is_4_backend_calls():
    backend = ScriptedBackend()
    engine = _engine(pd(size=16, rounds=1, chat_turns=4), backend)
    report = engine.step()  # the chat stage
    assert report.stages == ("chat",)
    assert backend.calls["generate"] == 4
    messages = [r for r in report.rows if r["kind"] == "message"]
    assert len(messages) == 32
    assert sorted({r["turn"] for r in messages}) == [0, 1, 2, 3]


def test_replicas_share_each_wave():
    backend = ScriptedBackend()
    engine = _engine(pd(size=4, rounds=2), backend, replicas=3)
    engine.run()
    assert backend.calls["score"] == 2  # 2 steps, each one call for all 3 replicas
    assert {s.replica for s in engine.replicas} == {0, 1, 2}


def test_tit_for_tat_against_always_defect_scores_9_and_14():
    spec = pd(size=2, rounds=10, cohorts=[
        {"name": "tft", "count": 1, "policy": {"name": "tit_for_tat"}},
        {"name": "alld", "count": 1, "policy": {"name": "always", "option": "defect"}},
    ])
    engine = _engine(spec, ScriptedBackend())
    engine.run()
    tft, alld = engine.replicas[0].population
    assert (tft.score, alld.score) == (9.0, 14.0)
    assert tft.last_choice["play"] == "defect"


def test_grim_trigger_never_forgives():
    spec = pd(size=2, rounds=6, cohorts=[
        {"count": 1, "policy": {"name": "grim_trigger"}},
        {"count": 1, "policy": {"name": "random", "option": "cooperate", "p": 0.5}},
    ])
    engine = _engine(spec, ScriptedBackend(), seed=4)
    moves: list[tuple[str, str]] = []
    engine.callbacks.append(lambda rep: moves.append(
        tuple(r["choice"] for r in sorted(rep.rows, key=lambda r: r["agent"]))))
    engine.run()
    first_defection = next(i for i, (_g, other) in enumerate(moves) if other == "defect")
    assert all(g == "cooperate" for g, _o in moves[: first_defection + 1])
    assert all(g == "defect" for g, _o in moves[first_defection + 1:])


def test_odd_agent_sits_out_and_is_recorded():
    report = _engine(pd(size=5, rounds=1), ScriptedBackend()).step()
    kinds = pl.DataFrame(report.rows)["kind"].value_counts().sort("kind")
    assert dict(kinds.iter_rows()) == {"choice": 4, "sit_out": 1}


def _events(tmp_path, spec_or_path, **config):
    outcome = run_scenario(spec_or_path, RunConfig(out=tmp_path, **config))
    return load_run(outcome.path).events.drop("run_id")


def test_same_seed_same_records_scripted(tmp_path):
    from sim.scenario.loader import load_scenario

    loaded = load_scenario("scenarios/prisoners_dilemma.yaml")
    a = _events(tmp_path / "a", loaded, backend="scripted", seed=7)
    b = _events(tmp_path / "b", loaded, backend="scripted", seed=7)
    c = _events(tmp_path / "c", loaded, backend="scripted", seed=8)
    assert a.height == 16 * 10 + 2 * 2 * 8  # 10 moves, 2 chats of 2 turns in 8 pairs
    assert a.equals(b)
    assert not a.equals(c)


def test_step_limit_stops_early(tmp_path):
    from sim.scenario.loader import load_scenario

    loaded = load_scenario("scenarios/prisoners_dilemma.yaml")
    outcome = run_scenario(loaded, RunConfig(out=tmp_path, backend="scripted", steps=3))
    run = load_run(outcome.path)
    assert outcome.steps == 3
    assert sorted(run.events["step"].unique()) == [1, 2, 3]
    assert run.manifest["status"] == "complete"


def test_same_seed_same_records_hf_fp32(tmp_path, tiny_model_path):
    from sim.backends.hf.backend import HFBackend

    spec = pd(size=4, rounds=2, chat_turns=2)
    backend = HFBackend(tiny_model_path, dtype="float32", threads=1)
    runs = [
        load_run(run_scenario(spec, RunConfig(out=tmp_path / d, seed=3, dtype="float32",
                                              max_new_tokens=8, temperature=1.0),
                              backend=backend).path).events.drop("run_id")
        for d in ("a", "b")
    ]
    assert runs[0].equals(runs[1])
    messages = runs[0].filter(pl.col("kind") == "message")
    assert messages.height == 8 and (messages["new_tokens"] > 0).all()
    probs = runs[0].filter(pl.col("kind") == "choice")["option_probs"]
    assert all(abs(sum(p) - 1.0) < 1e-9 and len(p) == 2 for p in probs)


@pytest.mark.parametrize("replicas", [1, 2])
def test_replica_zero_equals_the_plain_run(tmp_path, replicas):
    spec = pd(size=6, rounds=3, chat_turns=1)
    events = _events(tmp_path, spec, backend="scripted", seed=5, replicas=replicas)
    plain = _events(tmp_path / "plain", spec, backend="scripted", seed=5)
    assert events.filter(pl.col("replica") == 0).equals(plain)


# --- several engines, one drive (a sweep cohort's loop) ---

class _RaiseAt:
    """Hooks that raise at one point (of any step)."""

    def __init__(self, point: str) -> None:
        self.point = point

    def at(self, point: str, step: int) -> None:
        if point == self.point:
            raise RuntimeError(f"boom at {point}")


def _shared(spec, executor, seed, hooks=None):
    from sim.executors.local import ExecutorStats
    from sim.records.hooks import NO_HOOKS

    return Engine(spec, RunConfig(backend="scripted", seed=seed), executor,
                  stats=ExecutorStats(), hooks=hooks or NO_HOOKS)


def test_engines_driven_together_share_each_wave_and_keep_their_own_counts():
    from sim.engine.loop import drive_engines

    backend = ScriptedBackend()
    executor = LocalExecutor(backend)
    a = _shared(pd(size=4, rounds=1, chat_turns=2), executor, seed=1)
    b = _shared(pd(size=6, rounds=1, chat_turns=2), executor, seed=2)
    reports = drive_engines([a, b], executor)  # the chat: 2 waves
    assert backend.calls == {"generate": 2, "score": 0}
    assert [r.step for r in reports] == [1, 1] and (a.steps_done, b.steps_done) == (1, 1)
    assert (a.stats.requests, b.stats.requests) == (4, 6)  # 2 pairs x 2 turns, 3 pairs x 2
    assert a.stats.calls == b.stats.calls == {"model.generate": 2}
    assert a.stats.waves == b.stats.waves == 2
    assert executor.stats.requests == 0  # every request was counted to its engine
    alone = _engine(pd(size=4, rounds=1, chat_turns=2), ScriptedBackend(), seed=1).step()
    assert reports[0].rows == alone.rows


def test_an_engine_that_fails_before_its_step_fails_alone():
    from sim.engine.loop import drive_engines

    backend = ScriptedBackend()
    executor = LocalExecutor(backend)
    bad = _shared(pd(size=4, rounds=1), executor, seed=1, hooks=_RaiseAt("before-step"))
    good = _shared(pd(size=6, rounds=1), executor, seed=2)
    failed, report = drive_engines([bad, good], executor)
    assert isinstance(failed, RuntimeError) and "boom at before-step" in str(failed)
    assert bad.steps_done == 0 and bad.stats.requests == 0
    assert good.steps_done == 1 and sum(r["kind"] == "choice" for r in report.rows) == 6
    with pytest.raises(RuntimeError, match="boom at before-step"):
        bad.step()


def test_an_engine_that_fails_inside_a_wave_gets_no_further_waves():
    from sim.engine.loop import drive_engines

    backend = ScriptedBackend()
    executor = LocalExecutor(backend)
    bad = _shared(pd(size=4, rounds=1, chat_turns=3), executor, seed=1,
                  hooks=_RaiseAt("in-wave"))
    good = _shared(pd(size=4, rounds=1, chat_turns=3), executor, seed=2)
    failed, report = drive_engines([bad, good], executor)
    assert isinstance(failed, RuntimeError) and bad.steps_done == 0
    assert bad.stats.requests == 2  # its first wave only: 2 pairs, one turn
    assert good.stats.requests == 6 and backend.calls["generate"] == 3
    assert sum(r["kind"] == "message" for r in report.rows) == 6
