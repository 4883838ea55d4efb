"""The chain of per-step checkpoints: any past step reopens to the exact engine state, a
step's document does not grow with the run, and memory deltas survive amended moments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.memory import MEMORY_LIMIT, Memory, Moment
from sim.engine.loop import StepReport
from sim.errors import RunError
from sim.records import checkpoint
from sim.records.checkpoint import checkpoint_steps, doc_path, engine_state_at, read_checkpoint
from sim.records.delta import apply_delta, encode_delta
from sim.run.reopen import last_step, reopen
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig
from tests.scenario_builders import pd


def _moment(round_: int, payoff: float | None = None) -> dict[str, Any]:
    return Moment(round=round_, stage="play", partners=("Ann",), my_choice="cooperate",
                  payoff=payoff).to_dict()


def _engine_state(memory: dict[str, Any], score: float = 0.0) -> dict[str, Any]:
    agent = {"key": "a000", "memory": memory, "score": score}
    return {"steps_done": 1, "replicas": [{"replica": 0, "flow": None, "agents": [agent]}]}


def test_memory_delta_stores_only_new_and_amended_moments():
    before = _engine_state({"total": 3, "moments": [_moment(1), _moment(2), _moment(3)]})
    # Round 3's payoff was amended after the fact, and round 4 was added.
    after = _engine_state({"total": 4, "moments": [_moment(1), _moment(2), _moment(3, 5.0),
                                                   _moment(4)]}, score=5.0)
    delta = encode_delta(before, after)
    memory = delta["replicas"][0]["agents"]["0"]["memory"]
    assert (memory["from"], memory["total"], memory["count"]) == (2, 4, 4)
    assert memory["moments"] == [_moment(3, 5.0), _moment(4)]
    assert apply_delta(before, delta) == after
    assert encode_delta(after, after)["replicas"][0]["agents"] == {}  # nothing changed


def test_memory_delta_across_the_limit():
    """Once the memory is full, each new moment drops the oldest: the delta holds one."""
    old = [_moment(r) for r in range(1, 4)]
    before = _engine_state({"total": 10, "moments": old})
    after = _engine_state({"total": 11, "moments": [*old[1:], _moment(4)]})
    delta = encode_delta(before, after)
    assert delta["replicas"][0]["agents"]["0"]["memory"]["moments"] == [_moment(4)]
    assert apply_delta(before, delta) == after


def test_memory_keeps_the_last_moments_it_can_ever_render():
    memory = Memory()
    for r in range(MEMORY_LIMIT + 30):
        memory.add(Moment(round=r, stage="play", partners=()))
    assert memory.total == MEMORY_LIMIT + 30 and len(memory.moments) == MEMORY_LIMIT
    assert memory.moments[-1].round == MEMORY_LIMIT + 29
    assert memory.render(2).splitlines()[0].startswith(f"Round {MEMORY_LIMIT + 28} ")


def _run_with_states(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rounds: int,
                     snapshot_every: int) -> tuple[Path, dict[int, dict[str, Any]]]:
    monkeypatch.setattr(checkpoint, "SNAPSHOT_EVERY", snapshot_every)
    states: dict[int, dict[str, Any]] = {}
    spec = pd(size=4, rounds=rounds, chat_turns=1)

    def keep(report: StepReport) -> None:
        states[report.step] = json.loads(json.dumps(engine.state_dict()))

    from sim.engine.loop import Engine

    original = Engine.__init__

    def init(self: Engine, *args: Any, **kwargs: Any) -> None:
        nonlocal engine
        original(self, *args, **kwargs)
        engine = self
        self.callbacks.append(keep)

    engine: Any = None
    monkeypatch.setattr(Engine, "__init__", init)
    outcome = run_scenario(spec, RunConfig(backend="scripted", seed=3, replicas=2,
                                           out=tmp_path))
    monkeypatch.undo()
    return outcome.path, states


def test_every_past_step_reopens_to_the_live_state(tmp_path, monkeypatch):
    run_dir, states = _run_with_states(tmp_path, monkeypatch, rounds=7, snapshot_every=5)
    kinds = {s: json.loads(doc_path(run_dir, s).read_text())["kind"]
             for s in checkpoint_steps(run_dir)}
    assert kinds[0] == kinds[5] == kinds[10] == "full" and kinds[6] == "delta"
    spec_hash = json.loads((run_dir / "manifest.json").read_text())["spec_hash"]
    for step, state in states.items():
        assert engine_state_at(run_dir, step) == state, step
        assert read_checkpoint(run_dir, spec_hash, step)["engine"] == state, step
    assert last_step(run_dir) == max(states)


def test_a_reopened_engine_continues_like_the_run(tmp_path, monkeypatch):
    run_dir, _ = _run_with_states(tmp_path, monkeypatch, rounds=5, snapshot_every=4)
    events = pl.read_parquet(run_dir / "events")
    columns = ["replica", "step", "agent", "kind", "turn", "choice", "text", "score"]
    past = reopen(run_dir, 6)
    assert past.engine.steps_done == 6
    while past.engine.running:
        report = past.engine.step()
        got = sorted(tuple(row.get(c) for c in columns) for row in report.rows)
        assert got == sorted(events.filter(step=report.step).select(columns).rows())
    assert past.engine.steps_done == events["step"].max() == 10


def test_a_steps_document_does_not_grow_with_the_run(tmp_path, monkeypatch):
    run_dir, _ = _run_with_states(tmp_path, monkeypatch, rounds=150, snapshot_every=50)
    size = {s: doc_path(run_dir, s).stat().st_size for s in checkpoint_steps(run_dir)}
    # Each round is a chat step then a play step; compare the same kind of step.
    early, late = size[21], size[281]
    assert late <= early * 1.1, (early, late)
    assert size[250] <= size[100] * 1.1  # full snapshots too, once memory is bounded


@pytest.mark.parametrize("step", [-1, 10_000])
def test_a_step_without_a_checkpoint_is_refused(tmp_path, step):
    run_dir = run_scenario(pd(size=2, rounds=2, chat_turns=1),
                           RunConfig(backend="scripted", out=tmp_path)).path
    with pytest.raises(RunError, match=rf"has checkpoints of steps 0 to 4; step {step} is not"):
        engine_state_at(run_dir, step)


def test_a_chain_may_start_from_a_full_state_but_never_lose_its_head(tmp_path, monkeypatch):
    """A run started from another run's state at step 4 (its first document full, with no
    predecessor) reads back; removing a run's first documents is refused."""
    run_dir, states = _run_with_states(tmp_path, monkeypatch, rounds=4, snapshot_every=50)
    spec_hash = json.loads((run_dir / "manifest.json").read_text())["spec_hash"]
    started = tmp_path / "started-at-4"
    writer = checkpoint.CheckpointWriter(started, spec_hash)
    progress = {"timings": {"steps": []}}
    for step in range(4, 9):
        progress["timings"]["steps"].append(0.1)
        writer.write(states[step], progress=progress, settings={}, files={})
    assert json.loads(doc_path(started, 4).read_text())["kind"] == "full"
    assert read_checkpoint(started, spec_hash)["engine"] == states[8]
    assert engine_state_at(started, 6, spec_hash) == states[6]
    with pytest.raises(RunError, match="has checkpoints of steps 4 to 8; step 3 is not"):
        engine_state_at(started, 3, spec_hash)
    doc_path(run_dir, 0).unlink()
    with pytest.raises(RunError, match=r"step-000000.json is missing from the run's chain"):
        read_checkpoint(run_dir, spec_hash)
