"""A failing request is recorded as failed with its reason; the run goes on and counts it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import polars as pl

from analysis.io import load_run
from sim.backends.protocol import Capabilities
from sim.backends.scripted import ScriptedBackend
from sim.requests import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig
from tests.scenario_builders import pd


class FlakyBackend(ScriptedBackend):
    """Fails every third request of each call and reports two retried batches per call."""

    capabilities = Capabilities(stats=True)

    def __init__(self) -> None:
        super().__init__()
        self.stats = {"retries": 0, "failures": 0}

    def _fail(self, results: list[Any], make: Callable[[Any], Any]) -> list[Any]:
        self.stats["retries"] += 2
        for i in range(0, len(results), 3):
            results[i] = make(results[i])
            self.stats["failures"] += 1
        return results

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Scripted answers with every third one failed."""
        return self._fail(super().score(requests),
                          lambda r: replace(r, logprobs=(), error="simulated out of memory"))

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Scripted messages with every third one failed."""
        return self._fail(super().generate(requests),
                          lambda r: replace(r, text="", finish_reason="error",
                                            error="NaN logits"))


def test_failed_requests_are_recorded_and_counted(tmp_path):
    backend = FlakyBackend()
    config = RunConfig(backend="scripted", out=tmp_path)
    outcome = run_scenario(pd(size=6, rounds=3, chat_turns=2), config, backend=backend)
    assert outcome.status == "complete" and outcome.steps == 6
    run = load_run(outcome.path)
    failed = run.events.filter(status="failed")
    assert set(failed["error"]) == {"simulated out of memory", "NaN logits"}
    assert failed.filter(kind="choice")["choice"].is_null().all()
    assert (failed.filter(kind="message")["text"] == "").all()
    assert run.events.filter(status="ok").height > failed.height  # the run went on
    assert run.events.filter(pl.col("status").eq("ok") & pl.col("error").is_not_null()).is_empty()
    manifest = json.loads((outcome.path / "manifest.json").read_text())
    assert manifest["failures"] == failed.height == backend.stats["failures"]
    assert manifest["retries"] == backend.stats["retries"] == 2 * sum(backend.calls.values())
    assert manifest["status"] == "complete"
