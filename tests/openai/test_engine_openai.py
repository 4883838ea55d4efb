"""The engine through `--backend openai` against a real `traitlab serve` on 127.0.0.1.

The served model and the in-process reference are the same tiny model in fp32, so the records
must agree: choices exactly, probabilities to 1e-4. Then the guarantees a server backend must
keep: failed requests recorded and the run going on, resume equal to an uninterrupted run,
replay with no server, a budget stop, and an API key that reaches no file and no error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.openai.fault_proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
STEPS = 6  # intake survey, chat, play, (exit, intake: not this round), play
AGENTS, ITEMS = 6, ["EXT1", "AGR1", "CSN1", "EST1", "OPN1"]
_APPROX = {"option_probs", "expected", "entropy", "mass", "probs"}
KEY = "sk-traitlab-test-9f8e7d6c5b4a3210"


def _config(base_url: str, out: Path, **api: Any):
    from sim.scenario.api_settings import OpenAISettings
    from sim.scenario.spec import RunConfig

    api.setdefault("timeout_s", 30)
    api.setdefault("concurrency", 64)
    max_cost = api.pop("max_cost", None)
    return RunConfig(backend="openai", api=OpenAISettings(base_url=base_url, **api),
                     steps=STEPS, out=out, max_cost=max_cost)


def _tables(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    from analysis.io import load_run

    run = load_run(path)
    order = ["replica", "step", "agent", "turn", "kind"]
    return (run.events.drop("run_id").sort(order),
            run.surveys.drop("run_id").sort(["step", "agent", "item_id", "order", "repeat"]))


def _assert_close(left: pl.DataFrame, right: pl.DataFrame) -> None:
    exact = [c for c in left.columns if c not in _APPROX]
    assert_frame_equal(left.select(exact), right.select(exact))
    for col in _APPROX & set(left.columns):
        a, b = left[col].to_list(), right[col].to_list()
        for x, y in zip(a, b, strict=True):
            if isinstance(x, list):
                assert y is not None and len(x) == len(y)
                assert all(abs(p - q) <= 1e-4 for p, q in zip(x, y, strict=True)), col
            elif x is None:
                assert y is None, col
            else:
                assert abs(x - y) <= 1e-4, col


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    """pd_with_survey, smaller: 6 agents, 5 intake items (both orders)."""
    import yaml

    raw = yaml.safe_load((ROOT / "scenarios" / "pd_with_survey.yaml").read_text())
    raw["population"]["size"] = AGENTS
    raw["stages"][0]["items"] = ITEMS
    path = tmp_path_factory.mktemp("scenario") / "pd_small.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def proxied(server):
    """A proxy in front of the server, so a test can take 'the server' away."""
    from sim.serve import start_app

    fault = FaultProxy(server.url)
    handle = start_app(fault.app)
    yield fault, handle
    handle.stop()


@pytest.fixture(scope="module")
def api_run(proxied, scenario, tmp_path_factory) -> Path:
    """An uninterrupted openai run of the scenario through the proxy."""
    from sim.run.runner import run_scenario

    _fault, handle = proxied
    out = tmp_path_factory.mktemp("api")
    outcome = run_scenario(scenario, _config(handle.base_url, out))
    assert outcome.status == "complete"
    return outcome.path


def test_openai_run_equals_in_process_hf(api_run, scenario, reference_backend, tiny_model_path,
                                        tmp_path):
    from sim.run.runner import run_scenario
    from sim.scenario.spec import RunConfig

    hf = run_scenario(scenario, RunConfig(model=str(tiny_model_path), dtype="float32",
                                          steps=STEPS, out=tmp_path),
                      backend=reference_backend)
    events, surveys = _tables(api_run)
    ref_events, ref_surveys = _tables(hf.path)
    assert surveys.height == AGENTS * len(ITEMS) * 2
    assert events.filter(pl.col("kind") == "choice").height == 2 * AGENTS
    assert events.filter(pl.col("kind") == "message").height > 0  # sampled chat, same seeds
    _assert_close(events, ref_events)
    _assert_close(surveys, ref_surveys)
    assert set(events.filter(pl.col("kind") == "choice")["decided_by"]) == {"logprobs"}
    assert set(surveys["decided_by"]) == {"logprobs"}
    manifest = json.loads((api_run / "manifest.json").read_text())
    assert manifest["server"]["capabilities"]["scoring"] == "native"
    assert manifest["server"]["base_url"].startswith("http://127.0.0.1:")
    assert (api_run / "responses" / "responses.jsonl").stat().st_size > 0


def test_replay_with_no_server_gives_identical_records(api_run, tmp_path, capsys):
    from sim.cli.main import main

    assert main(["run", "--replay", str(api_run), "--out", str(tmp_path)]) == 0
    replayed = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert replayed != api_run and replayed.is_relative_to(tmp_path)
    for mine, theirs in zip(_tables(replayed), _tables(api_run), strict=True):
        assert_frame_equal(mine, theirs)
    manifest = json.loads((replayed / "manifest.json").read_text())
    assert manifest["server"]["replay"] is True and manifest["status"] == "complete"


def test_replay_refuses_a_run_without_responses(scenario, tmp_path, capsys):
    from sim.cli.main import main
    from sim.run.runner import run_scenario
    from sim.scenario.spec import RunConfig

    run = run_scenario(scenario, RunConfig(backend="scripted", steps=1, out=tmp_path))
    assert main(["run", "--replay", str(run.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--replay" in err[0] and "Fix:" in err[0]


class _StopAt:
    """Run hook: at the start of step ``step``, take the server away."""

    def __init__(self, step: int, handle) -> None:
        self.step, self.handle = step, handle

    def at(self, point: str, step: int) -> None:
        if point == "before-step" and step == self.step:
            self.handle.stop()


def test_server_gone_mid_run_records_failures_and_goes_on(server, scenario, tmp_path):
    from sim.run.runner import run_scenario
    from sim.serve import start_app

    handle = start_app(FaultProxy(server.url).app)
    config = _config(handle.base_url, tmp_path, retries=2)
    outcome = run_scenario(scenario, config, hooks=_StopAt(3, handle))
    assert outcome.status == "complete" and outcome.steps == STEPS
    events, surveys = _tables(outcome.path)
    later = events.filter((pl.col("step") >= 3) & (pl.col("kind") == "choice"))
    assert later.height == 2 * AGENTS
    assert set(later["status"]) == {"failed"} and set(later["decided_by"]) == {"failed"}
    assert all("gave up after 3 tries" in e for e in later["error"])
    early = events.filter(pl.col("step") < 3)
    assert set(early["status"]) == {"ok"} and not any(surveys["refused"])
    manifest = json.loads((outcome.path / "manifest.json").read_text())
    # the play stage is option_order: balanced, so each choice is two score requests
    assert manifest["failures"] == 2 * AGENTS * 2
    assert manifest["retries"] == 2 * AGENTS * 2 * 2  # every failed request was retried twice


class _InterruptAt:
    """Run hook: a crash between a step's shard and its checkpoint."""

    def __init__(self, where: str) -> None:
        self.where = where

    def at(self, point: str, step: int) -> None:
        if f"{point}:{step}" == self.where:
            raise KeyboardInterrupt


def test_resume_after_a_crash_equals_the_uninterrupted_run(api_run, proxied, scenario,
                                                          tmp_path):
    from sim.backends.openai import OpenAIBackend, OpenAIConfig
    from sim.errors import RunInterrupted
    from sim.run.runner import resume_run, run_scenario

    _fault, handle = proxied
    config = _config(handle.base_url, tmp_path)
    with pytest.raises(RunInterrupted) as crash:
        run_scenario(scenario, config, hooks=_InterruptAt("after-shard:3"))
    path = crash.value.path
    backend = OpenAIBackend(OpenAIConfig(**config.api.model_dump()),
                            store_dir=path / "responses")
    with backend:
        outcome = resume_run(path, backend=backend)
    assert outcome.status == "complete"
    assert backend.stats["store_hits"] >= AGENTS  # step 3 was answered before the crash
    # Another run through the server: its waves batch differently, which moves float
    # rounding (not choices) in the last digits; the replay test shows bitwise equality.
    for mine, theirs in zip(_tables(path), _tables(api_run), strict=True):
        _assert_close(mine, theirs)


def test_max_cost_stops_resumably_and_resume_finishes(api_run, proxied, scenario, tmp_path,
                                                      capsys):
    from sim.cli.main import main

    _fault, handle = proxied
    argv = ["run", str(scenario), "--backend", "openai", "--base-url", handle.base_url,
            "--steps", str(STEPS), "--out", str(tmp_path), "--price-in", "1000",
            "--price-out", "1000", "--max-cost", "0.001", "--quiet"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "--max-cost" in err and "Resume: traitlab run --resume" in err
    (path,) = list((tmp_path / "pd-with-survey").iterdir())
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["steps_completed"] == 1
    spent = manifest["cost_usd"]
    tokens = manifest["tokens"]["prompt"] + manifest["tokens"]["new"]
    assert spent >= tokens * 1000 / 1e6 > 0  # at least what the recorded tokens cost
    assert main(["run", "--resume", str(path), "--max-cost", "1000000", "--quiet"]) == 0
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["cost_usd"] > spent
    for mine, theirs in zip(_tables(path), _tables(api_run), strict=True):
        _assert_close(mine, theirs)


def test_api_key_reaches_no_file_and_no_error(server, scenario, tmp_path, capsys, monkeypatch):
    from sim.cli.main import main
    from sim.serve import start_app

    monkeypatch.setenv("TRAITLAB_TEST_KEY", KEY)
    fault = FaultProxy(server.url)
    fault.echo_auth = True  # a hostile server: chat errors repeat the Authorization header
    handle = start_app(fault.app)
    try:
        code = main(["run", str(scenario), "--backend", "openai", "--base-url", handle.base_url,
                     "--api-key-env", "TRAITLAB_TEST_KEY", "--retries", "0", "--steps", "3",
                     "--out", str(tmp_path)])
    finally:
        handle.stop()
    assert code == 0
    assert f"Bearer {KEY}" in fault.auth_headers  # the key was sent ...
    out = capsys.readouterr()
    assert KEY not in out.out and KEY not in out.err  # ... and never shown
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert any(f.name == "responses.jsonl" for f in files)
    for file in files:
        assert KEY.encode() not in file.read_bytes(), file
    events, _ = _tables(next((tmp_path / "pd-with-survey").iterdir()))
    errors = events.filter(pl.col("kind") == "message")["error"].to_list()
    assert errors and all(e and "***" in e for e in errors)
    # the key given where its variable's name belongs: refused without repeating it
    code = main(["run", str(scenario), "--backend", "openai", "--base-url", handle.base_url,
                 "--api-key-env", KEY, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and KEY not in err and "--api-key-env" in err


def test_steering_through_a_plain_server_is_refused_before_the_run(proxy, scenario, tmp_path):
    from sim.errors import RunError
    from sim.run.runner import run_scenario
    from sim.scenario.loader import load_scenario

    fault, handle = proxy
    fault.plain = True
    spec = load_scenario(scenario).spec
    spec = spec.model_copy(update={"population": spec.population.model_copy(
        update={"conditioning": "steering"})})
    with pytest.raises(RunError) as err:
        run_scenario(spec, _config(handle.base_url, tmp_path))
    text = str(err.value)
    assert "population.conditioning" in text and "Fix:" in text and "\n" not in text
    assert not list(tmp_path.rglob("manifest.json"))  # refused before the run directory


class _Engine:
    running = True


class _Recorder:
    def __init__(self) -> None:
        self.manifest: dict[str, Any] = {}
        self.path = Path("run")

    def annotate(self, **values: Any) -> None:
        self.manifest.update(values)


def test_cost_meter_stops_before_the_step_that_would_cross_the_budget():
    from sim.errors import BudgetReached
    from sim.run.budget import CostMeter

    costs = iter([0.10, 0.20, 0.30])  # each step costs 0.10
    recorder = _Recorder()
    meter = CostMeter(lambda: next(costs), recorder, max_cost=0.35)  # type: ignore[arg-type]
    check = meter.check(_Engine())  # type: ignore[arg-type]
    check(None)  # 0.10 spent, next ~0.10: 0.20 <= 0.35
    check(None)  # 0.20 spent: 0.30 <= 0.35
    with pytest.raises(BudgetReached) as stop:
        check(None)  # 0.30 spent: 0.40 > 0.35, so step 4 is not started
    assert stop.value.spent == pytest.approx(0.30)
    assert stop.value.next_step == pytest.approx(0.10)
    assert "--max-cost" in stop.value.resume_command
