"""The traitlab command: help with examples, a complete run directory, show, schema."""

from __future__ import annotations

import json

import polars as pl
import pytest

from sim.cli.main import main


@pytest.mark.parametrize("argv", [[], ["run"], ["validate"], ["schema"], ["show"]])
def test_every_help_shows_a_worked_example(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out
    assert "traitlab " + (argv[0] if argv else "run") in out


def test_run_writes_a_complete_run_directory(tmp_path, capsys):
    code = main(["run", "scenarios/prisoners_dilemma.yaml", "--backend", "scripted",
                 "--seed", "2", "--out", str(tmp_path)])
    assert code == 0
    (run_dir,) = (tmp_path / "prisoners-dilemma").iterdir()
    names = {p.name for p in run_dir.iterdir()}
    assert {"manifest.json", "scenario.yaml", "agents.parquet", "network.parquet",
            "events"} <= names
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["seed"] == 2 and manifest["steps_completed"] == 12
    assert len(list((run_dir / "events").glob("step-*.parquet"))) == 12
    assert {"spec_hash", "model", "packages", "git_commit", "timings", "tokens"} <= set(manifest)
    assert pl.read_parquet(run_dir / "agents.parquet").height == 16
    assert not list(run_dir.rglob("*.tmp"))  # atomic writes leave no temporaries
    out = capsys.readouterr().out
    assert "first-option rate per round" in out and "mean payoff per decision" in out


def test_show_prints_the_transcript(tmp_path, capsys):
    main(["run", "scenarios/prisoners_dilemma.yaml", "--backend", "scripted", "--quiet",
          "--out", str(tmp_path), "--steps", "2"])
    run_dir = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["show", run_dir]) == 0
    out = capsys.readouterr().out
    assert "round 1" in out and "chat" in out and "play" in out
    assert "cooperate=" in out  # option probabilities shown with the choice


def test_schema_is_json_schema_of_the_scenario(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"name", "population", "stages", "flow", "rounds"} <= set(schema["properties"])
    assert "ChoiceStage" in schema["$defs"] and "DialogueStage" in schema["$defs"]


@pytest.mark.parametrize("flag", ["--seed", "--prefix-cache-mib", "--batch-rows"])
def test_bad_flag_value_is_one_line_exit_2(tmp_path, capsys, flag):
    code = main(["run", "scenarios/prisoners_dilemma.yaml", "--backend", "scripted",
                 flag, "-1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {flag} -1")


def test_show_of_a_non_run_is_exit_2(tmp_path, capsys):
    assert main(["show", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_batch_limits_reach_the_backend(tiny_model_path, tmp_path):
    """``--batch-tokens`` and ``--batch-rows`` become the backend's batch limits."""
    from sim.run.runner import open_backend
    from sim.scenario.spec import RunConfig

    config = RunConfig(model=str(tiny_model_path), dtype="float32", batch_tokens=512,
                       batch_rows=3, out=tmp_path)
    backend = open_backend(config)
    assert (backend.max_batch_tokens, backend.max_batch_size) == (512, 3)
    assert RunConfig().batch_rows == 64
