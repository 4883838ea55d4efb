"""Every shipped scenario validates and runs two steps on the scripted backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.io import load_run
from sim.cli.main import main
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))


def test_there_are_scenarios():
    assert {p.name for p in SCENARIOS} >= {
        "prisoners_dilemma.yaml", "naming_game.yaml", "public_goods.yaml", "ultimatum.yaml",
        "speed_dating.yaml", "negotiation.yaml", "classroom.yaml"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_validates(path, capsys):
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.startswith("ok")


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_runs_two_scripted_steps(path, tmp_path):
    outcome = run_scenario(path, RunConfig(backend="scripted", steps=2, out=tmp_path))
    run = load_run(outcome.path)
    assert outcome.steps == 2 and run.manifest["status"] == "complete"
    assert (run.events["status"] == "ok").all()
