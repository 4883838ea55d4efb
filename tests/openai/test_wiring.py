"""The openai backend's settings, flags and summary, without a server (fast)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[2]
PD = str(ROOT / "scenarios" / "prisoners_dilemma.yaml")
KEY = "sk-proj-4f3e2d1c0b9a8f7e6d5c4b3a"


@pytest.mark.parametrize("value, is_key", [
    ("OPENAI_API_KEY", False), ("VLLM_KEY", False), ("my_key_2", False),
    (KEY, True), ("hf_abcdefghijklmnop", True), ("a1b2c3d4e5f6a7b8c9d0e1f2a3b4", True),
    ("has space", True), ("", True),
])
def test_looks_like_key(value: str, is_key: bool):
    from sim.scenario.api_settings import looks_like_key

    assert looks_like_key(value) is is_key


def test_run_config_openai_needs_api_and_max_cost_needs_prices():
    from sim.scenario.api_settings import OpenAISettings
    from sim.scenario.spec import RunConfig

    with pytest.raises(ValidationError, match="--base-url"):
        RunConfig(backend="openai")
    api = OpenAISettings(base_url="http://127.0.0.1:8000/v1")
    with pytest.raises(ValidationError, match="--price-in"):
        RunConfig(backend="openai", api=api, max_cost=5)
    priced = api.model_copy(update={"price_in_per_million": 0.5})
    config = RunConfig(backend="openai", api=priced, max_cost=5)
    assert RunConfig.model_validate(config.model_dump(mode="json")) == config  # resume reads it


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    from sim.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_cli_openai_without_base_url_is_one_line(capsys, tmp_path):
    line = _error_line(capsys, ["run", PD, "--backend", "openai", "--out", str(tmp_path)])
    assert "--base-url" in line and "Fix:" in line
    line = _error_line(capsys, ["run", PD, "--base-url", "http://127.0.0.1:1/v1"])
    assert "--base-url needs --backend openai" in line
    line = _error_line(capsys, ["run", PD, "--backend", "openai", "--base-url", "ftp://x"])
    assert line.startswith("error: --base-url 'ftp://x'")
    line = _error_line(capsys, ["run", PD, "--backend", "scripted", "--max-cost", "3"])
    assert "--price-in" in line
    assert not list(tmp_path.iterdir())


def test_cli_never_repeats_a_key_given_as_the_variable_name(capsys):
    line = _error_line(capsys, ["run", PD, "--backend", "openai", "--base-url",
                                "http://127.0.0.1:1/v1", "--api-key-env", KEY])
    assert "--api-key-env" in line and KEY not in line


def test_sweep_run_block_takes_openai_settings(tmp_path):
    from sim.errors import ScenarioError
    from sim.sweep.spec import load_sweep_spec

    (tmp_path / "pd.yaml").write_text((ROOT / "scenarios" / "prisoners_dilemma.yaml").read_text())
    sweep = tmp_path / "sweep.yaml"
    body = ("name: s\nscenario: pd.yaml\nseeds: [0]\nvary:\n  - grid:\n"
            "      rounds: [1, 2]\nrun:\n  backend: openai\n  api:\n"
            "    base_url: http://127.0.0.1:8000/v1\n    api_key_env: {env}\n")
    sweep.write_text(body.format(env="VLLM_KEY"))
    run = load_sweep_spec(sweep).run
    assert run.backend == "openai" and run.api is not None and run.api.api_key_env == "VLLM_KEY"
    sweep.write_text(body.format(env=KEY))
    with pytest.raises(ScenarioError) as err:
        load_sweep_spec(sweep)
    assert "run.api.api_key_env" in str(err.value) and KEY not in str(err.value)


def _run(events: list[str | None], surveys: list[str | None]) -> Any:
    return SimpleNamespace(events=pl.DataFrame({"decided_by": events}, schema={
        "decided_by": pl.String}), surveys=pl.DataFrame({"decided_by": surveys}, schema={
        "decided_by": pl.String}))


def test_summary_counts_how_answers_were_decided():
    from sim.cli.progress import decided_by_line

    assert decided_by_line(_run(["logprobs", None, "policy"], ["logprobs"])) is None
    line = decided_by_line(_run(["parsed", "failed", None, "logprobs"],
                                ["parsed", "parsed", "constrained", "failed", "failed"]))
    assert line == ("decided by: 1 logprobs, 1 constrained, 3 parsed, 3 failed "
                    "(3 parse or request failures)")


def test_serve_command_binds_loopback_and_serves_the_model(monkeypatch, tiny_model_path):
    import sim.serve
    from sim.cli.main import main

    seen: dict[str, Any] = {}

    def fake_serve(backend: Any, host: str, port: int, *, window_ms: float) -> None:
        seen.update(backend=backend, host=host, port=port, window_ms=window_ms)

    monkeypatch.setattr(sim.serve, "serve", fake_serve)
    assert main(["serve", "--model", str(tiny_model_path), "--dtype", "float32",
                 "--port", "0", "--window-ms", "5"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 0 and seen["window_ms"] == 5
    assert seen["backend"].info.backend == "hf"


def test_serve_command_rejects_a_bad_port(capsys):
    line = _error_line(capsys, ["serve", "--port", "70000"])
    assert "--port 70000" in line
