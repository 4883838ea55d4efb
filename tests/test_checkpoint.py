"""Checkpoint state round trips, Ctrl-C handling and the refusals of ``--resume``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sim import cli
from sim.backends.scripted import ScriptedBackend
from sim.engine.loop import Engine, StepReport
from sim.errors import RunError
from sim.executors.local import LocalExecutor
from sim.records.checkpoint import CHECKPOINTS_DIR, checkpoint_steps, doc_path
from sim.run.runner import resume_run, run_scenario
from sim.scenario.spec import RunConfig, ScenarioSpec
from tests.conftest import SCENARIOS
from tests.scenario_builders import pd

PD = SCENARIOS / "prisoners_dilemma.yaml"


def _engine(spec: ScenarioSpec, **config: object) -> Engine:
    return Engine(spec, RunConfig(backend="scripted", **config), LocalExecutor(ScriptedBackend()))


def _events(run_dir: Path) -> pl.DataFrame:
    shards = sorted((run_dir / "events").glob("step-*.parquet"))
    return pl.concat([pl.read_parquet(s) for s in shards])


def test_engine_state_survives_json_and_continues_identically():
    spec = pd(size=6, rounds=6, chat_turns=2)
    original = _engine(spec, seed=5, replicas=2)
    for _ in range(5):
        original.step()
    state = json.loads(json.dumps(original.state_dict()))
    restored = _engine(spec, seed=5, replicas=2)
    restored.load_state_dict(state)
    agent = restored.replicas[1].population[3]
    assert agent.memory.moments and agent.memory.moments == \
        original.replicas[1].population[3].memory.moments
    assert restored.state_dict() == original.state_dict()
    while original.running:
        assert restored.step().rows == original.step().rows
    assert not restored.running


def test_agent_state_round_trip_restores_tuples():
    engine = _engine(pd(size=2, rounds=3, chat_turns=1))
    engine.run()
    agent = engine.replicas[0].population[0]
    fresh = _engine(pd(size=2, rounds=3, chat_turns=1)).replicas[0].population[0]
    fresh.load_state_dict(json.loads(json.dumps(agent.state_dict())))
    assert fresh.memory.moments == agent.memory.moments
    assert (fresh.score, fresh.last_choice, fresh.received) == \
        (agent.score, agent.last_choice, agent.received)
    with pytest.raises(ValueError, match="a000"):
        engine.replicas[0].population[1].load_state_dict(agent.state_dict())


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    original = Engine.step

    def step_or_interrupt(self: Engine) -> StepReport:
        if self.steps_done == step:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Engine, "step", step_or_interrupt)


def test_ctrl_c_marks_interrupted_prints_resume_command_and_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    argv = ["run", str(PD), "--backend", "scripted", "--quiet", "--seed", "2", "--out"]
    _interrupt_at(monkeypatch, 4)
    assert cli.main([*argv, str(tmp_path / "a")]) == 130
    (run_dir,) = (tmp_path / "a" / "prisoners-dilemma").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert (manifest["status"], manifest["steps_completed"]) == ("interrupted", 4)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"interrupted; records so far are kept. Resume: traitlab run --resume "
                   f"{run_dir}"]
    monkeypatch.undo()
    assert cli.main(["run", "--resume", str(run_dir), "--quiet"]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["resumes"][0]["previous_status"] == "interrupted"
    reference = run_scenario(PD, RunConfig(backend="scripted", seed=2, out=tmp_path / "b")).path
    assert_frame_equal(_events(run_dir), _events(reference))


def test_resuming_a_complete_run_is_a_one_line_error(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]):
    run_dir = run_scenario(PD, RunConfig(backend="scripted", steps=2, out=tmp_path)).path
    assert cli.main(["run", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: run {run_dir} is already complete; nothing to resume.\n"


def test_resume_needs_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert cli.main(["run", "--resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert cli.main(["run", "--backend", "scripted"]) == 2


def _crashed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _interrupt_at(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run_scenario(PD, RunConfig(backend="scripted", out=tmp_path))
    monkeypatch.undo()
    (run_dir,) = (tmp_path / "prisoners-dilemma").iterdir()
    return run_dir


def test_checkpoint_of_another_spec_is_refused(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch):
    run_dir = _crashed_run(tmp_path, monkeypatch)
    path = doc_path(run_dir, checkpoint_steps(run_dir)[-1])
    checkpoint = json.loads(path.read_text())
    path.write_text(json.dumps({**checkpoint, "spec_hash": "0" * 16}))
    with pytest.raises(RunError, match="refusing to use it"):
        resume_run(run_dir)
    path.write_text(json.dumps(checkpoint))
    assert resume_run(run_dir).status == "complete"


def test_changed_scenario_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run_dir = _crashed_run(tmp_path, monkeypatch)
    scenario = run_dir / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace("rounds: 10", "rounds: 11"))
    with pytest.raises(RunError, match="changed scenario"):
        resume_run(run_dir)


def test_run_without_checkpoint_restarts_in_place(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    run_dir = _crashed_run(tmp_path, monkeypatch)
    shutil.rmtree(run_dir / CHECKPOINTS_DIR)
    assert resume_run(run_dir).steps == 12
    reference = run_scenario(PD, RunConfig(backend="scripted", out=tmp_path / "ref")).path
    assert_frame_equal(_events(run_dir), _events(reference))
    assert json.loads((run_dir / "manifest.json").read_text())["events"] == 192


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_written_scenario_loads_back_to_the_same_spec(tmp_path: Path, path: Path):
    from sim.records.recorder import Recorder
    from sim.requests import ModelInfo
    from sim.scenario.loader import load_scenario, spec_hash

    spec = load_scenario(path).spec
    recorder = Recorder.create(RunConfig(backend="scripted", out=tmp_path), spec,
                               ModelInfo(backend="scripted", model_id="x"))
    again = load_scenario(recorder.path / "scenario.yaml").spec
    assert again == spec
    assert spec_hash(again) == recorder.manifest["spec_hash"]
