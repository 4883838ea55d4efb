"""``traitlab run --set PATH=VALUE``: one-run overrides by the dotted paths of sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from analysis.io import load_run
from sim.cli.main import main
from sim.errors import ScenarioError
from sim.run.runner import run_scenario
from sim.scenario.loader import load_scenario
from sim.scenario.overrides import apply_overrides
from sim.scenario.spec import RunConfig
from tests.conftest import SCENARIOS

PD = str(SCENARIOS / "prisoners_dilemma.yaml")


def _run(tmp_path: Path, *extra: str) -> Path:
    assert main(["run", PD, "--backend", "scripted", "--quiet", "--out", str(tmp_path),
                 *extra]) == 0
    (run_dir,) = (tmp_path / "prisoners-dilemma").iterdir()
    return run_dir


def test_overrides_change_the_records_and_are_recorded(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "--set", "rounds=3", "--set", "population.size=8",
                   "--set", "stages.1.decision=argmax")
    run = load_run(run_dir)
    assert run.agents.height == 8
    assert run.events["round"].max() == 3
    choices = run.events.filter(pl.col("kind") == "choice")
    assert choices.height == 3 * 8  # 8 agents in 4 pairs choose in each of 3 rounds
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["overrides"] == {"rounds": 3, "population.size": 8,
                                     "stages.1.decision": "argmax"}
    resolved = yaml.safe_load((run_dir / "scenario.yaml").read_text())
    assert resolved["rounds"] == 3 and resolved["population"]["size"] == 8
    assert resolved["stages"][1]["decision"] == "argmax"


def test_a_run_without_overrides_records_none(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "--steps", "1")
    assert "overrides" not in json.loads((run_dir / "manifest.json").read_text())


def test_an_overridden_run_resumes_to_the_same_records(tmp_path: Path) -> None:
    flags = ["--set", "rounds=2", "--set", "population.size=6"]
    whole = load_run(_run(tmp_path / "whole", *flags)).events
    loaded = apply_overrides(load_scenario(PD), ["rounds=2", "population.size=6"])

    def stop(report: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_scenario(loaded, RunConfig(backend="scripted", out=tmp_path / "part"),
                     callbacks=[stop])
    (part,) = (tmp_path / "part" / "prisoners-dilemma").iterdir()
    assert len(list((part / "events").iterdir())) == 1
    assert main(["run", "--resume", str(part), "--quiet"]) == 0
    assert load_run(part).events.drop("run_id").equals(whole.drop("run_id"))


@pytest.mark.parametrize(("flag", "shown", "pattern"), [
    ("rounds=ten", "--set rounds=ten: field 'rounds': ",
     "should be a valid integer, got 'ten'. Fix: write a valid integer."),
    ("rouns=3", "--set rouns=3: field 'rouns': ",
     "unknown field 'rouns' in the scenario. Fix: did you mean 'rounds'?"),
    ("rounds", "--set rounds: ", "expected PATH=VALUE. Fix: write a dotted path"),
    ("stages.7.memory=1", "--set stages.7.memory=1: field 'stages.7.memory': ",
     "stages has 2 entries in the scenario; index 7 is out of range. Fix: use an index below 2"),
    ("population.size=0", "--set population.size=0: field 'population.size': ",
     "should be greater than or equal to 1, got 0. Fix: use a value greater than or equal"),
    ("stages.1.groups.by=ego", "--set stages.1.groups.by=ego: field 'stages.1.groups.by': ",
     "groups.by 'ego' needs a network. Fix: add a 'network:' section"),
    ("params.temptaton=6", "--set params.temptaton=6: field 'params.temptaton': ",
     "the scenario declares no param 'temptaton'. Fix: params of the scenario: none; declare "
     "a new one in the file."),
    ("rounds=0x3", "--set rounds=0x3: field 'rounds': ",
     "'0x3' is a hexadecimal, octal or base-60 number in YAML 1.1. Fix: write the number"),
])
def test_a_bad_override_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           flag: str, shown: str, pattern: str) -> None:
    code = main(["run", PD, "--backend", "scripted", "--quiet", "--out", str(tmp_path),
                 "--set", "rounds=2", "--set", flag])
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {shown}{pattern}"), err
    assert not list(tmp_path.iterdir())  # nothing was created


def test_a_consequence_elsewhere_names_the_override(capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    loaded = load_scenario(SCENARIOS / "public_goods.yaml")
    size = loaded.spec.stages[0].groups.size
    with pytest.raises(ScenarioError) as caught:
        apply_overrides(loaded, [f"population.size={size - 1}"])
    text = str(caught.value)
    assert text.startswith(f"--set population.size={size - 1}: field 'population.size': "
                           f"with population.size = {size - 1} the scenario is invalid at "
                           "stages.0.groups.size: groups of"), text


def test_resume_refuses_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _run(tmp_path, "--steps", "1")
    assert main(["run", "--resume", str(run_dir), "--set", "rounds=3"]) == 2
    assert "--set changes a scenario, but a resumed run keeps its own" in \
        capsys.readouterr().err


def test_the_public_helper_takes_specs_data_and_mappings() -> None:
    loaded = load_scenario(PD)
    from_spec = apply_overrides(loaded.spec, ["rounds=4", "stages.1.prompt='Go: {name}.'"])
    assert from_spec.spec.rounds == 4 and from_spec.spec.stages[1].prompt == "Go: {name}."
    from_raw = apply_overrides(loaded.raw, {"population.personality.sd": 0.1})
    assert from_raw.spec.population.personality.sd == 0.1
    assert from_raw.overrides == {"population.personality.sd": 0.1}
    assert loaded.raw == load_scenario(PD).raw  # the original is untouched
