"""Run directories stay inside the output root; many runs can share one root at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.errors import RunError, ScenarioError
from sim.records.recorder import Recorder
from sim.requests import ModelInfo
from sim.run.runner import run_scenario
from sim.scenario.loader import load_scenario
from sim.scenario.spec import RunConfig, ScenarioSpec
from tests.conftest import ROOT, SCENARIOS
from tests.scenario_builders import pd

PD = SCENARIOS / "prisoners_dilemma.yaml"


@pytest.mark.parametrize("name", ["../../etc", "..", "/etc", "a/../../b", ".hidden", "a\\b"])
def test_loader_refuses_scenario_names_that_are_paths(tmp_path: Path, name: str):
    text = PD.read_text().replace("name: prisoners-dilemma", f"name: {json.dumps(name)}")
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ScenarioError, match="name"):
        load_scenario(tmp_path / "s.yaml")


def test_recorder_refuses_a_name_that_escapes_even_unvalidated(tmp_path: Path):
    spec = pd(size=2, rounds=1).model_copy(update={"name": "../../etc"})  # bypasses validation
    with pytest.raises(RunError, match="outside the output root"):
        Recorder.create(RunConfig(backend="scripted", out=tmp_path / "a" / "out"), spec,
                        ModelInfo(backend="scripted", model_id="x"))
    assert not (tmp_path / "etc").exists()


def test_run_directory_is_inside_out(tmp_path: Path):
    out = tmp_path / "a" / ".." / "runs"
    spec: ScenarioSpec = pd(size=2, rounds=1)
    path = run_scenario(spec, RunConfig(backend="scripted", out=out)).path
    assert path.parent.parent == out.resolve()
    assert path.resolve().is_relative_to((tmp_path / "runs").resolve())


def test_ten_concurrent_runs_into_one_root(tmp_path: Path):
    command = [sys.executable, "-m", "sim.cli.main", "run", str(PD), "--backend", "scripted",
               "--quiet", "--steps", "2", "--out", str(tmp_path)]
    procs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(10)]
    paths = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        paths.append(Path(stdout.strip().splitlines()[-1]))
    assert len(set(paths)) == 10
    assert sorted(paths) == sorted((tmp_path / "prisoners-dilemma").iterdir())
    for path in paths:
        manifest = json.loads((path / "manifest.json").read_text())
        assert (manifest["status"], manifest["steps_completed"]) == ("complete", 2)
        assert manifest["run_id"] == path.name and manifest["events"] == 32
        assert sorted(p.name for p in (path / "events").iterdir()) == [
            "step-000001.parquet", "step-000002.parquet"]
        assert not list(path.rglob("*.tmp"))
