"""Resuming a whole fork set with one command (``traitlab run --resume FORKSET_DIR``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.io import load_run
from sim.cli.main import main
from sim.errors import RunError, RunInterrupted
from sim.run.fork import fork_set, resume_forkset
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig
from tests.conftest import SCENARIOS

PD = SCENARIOS / "prisoners_dilemma.yaml"
AT = 7
SET = {"replicas": 2, "overrides": ["rounds=12"], "seed": "new"}


def _status(path: Path) -> str:
    return json.loads((path / "manifest.json").read_text())["status"]


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return run_scenario(PD, RunConfig(backend="scripted", seed=0, out=out)).path


def test_an_interrupted_set_resumes_with_one_command(parent: Path, capsys):
    reference = fork_set(parent, AT, **SET)
    first = len(load_run(reference.forks[0][2]).events["step"].filter(
        load_run(reference.forks[0][2]).events["step"] > AT).unique())
    calls = []

    def stop(_report) -> None:  # the 2nd step of the second fork (unchanged-00)
        calls.append(1)
        if len(calls) == first + 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted) as caught:
        fork_set(parent, AT, callbacks=[stop], **SET)
    root = caught.value.path
    assert caught.value.resume_command == f"traitlab run --resume {root}"
    statuses = [_status(root / d) for d in ("changed-00", "unchanged-00", "changed-01",
                                            "unchanged-01")]
    assert statuses[0] == "complete" and statuses[1] == "interrupted"
    assert "complete" not in statuses[2:]
    capsys.readouterr()
    assert main(["run", "--resume", str(root)]) == 0
    out = capsys.readouterr().out
    assert "3 of 4 forks resumed" in out and "was complete" in out
    for arm, i, path in reference.forks:
        mine = root / path.name
        assert _status(mine) == "complete", path.name
        assert load_run(mine).events.drop("run_id").equals(
            load_run(path).events.drop("run_id")), (arm, i)
    assert main(["run", "--resume", str(root)]) == 0
    assert "all 4 forks are complete; nothing to resume" in capsys.readouterr().out


def test_a_set_resume_refuses_a_missing_fork(parent: Path, tmp_path: Path):
    made = fork_set(parent, AT, replicas=1, settings={"out": str(tmp_path)})
    (made.path / "unchanged-00" / "manifest.json").unlink()
    with pytest.raises(RunError, match="unchanged-00 is missing from the fork set"):
        resume_forkset(made.path)
    with pytest.raises(RunError, match=r"has no forkset\.json"):
        resume_forkset(parent)

