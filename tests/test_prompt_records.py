"""Prompts are recorded once per run, linked from events, and printed inert."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from analysis.io import Run, load_run
from sim.cli.progress import print_prompts
from sim.records.schemas import AGENT_SCHEMA, EVENT_SCHEMA, NETWORK_SCHEMA, PROMPT_SCHEMA, frame
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig
from tests.scenario_builders import pd


def rehash(messages: str, options: list[str] | None) -> str:
    """The prompt hash recomputed from the stored text (sim.engine.stages.base.prompt_hash)."""
    h = hashlib.sha256()
    for m in json.loads(messages):
        h.update(m["role"].encode() + b"\0" + m["content"].encode() + b"\0")
    if options is not None:
        h.update("\0".join(options).encode())
    return h.hexdigest()[:16]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("prompts")
    outcome = run_scenario(pd(size=4, rounds=3, chat_turns=2),
                           RunConfig(backend="scripted", seed=0, replicas=2, out=out))
    return load_run(outcome.path)


def test_every_event_links_to_its_stored_prompt(run: Run):
    linked = run.events.filter(pl.col("prompt_hash").is_not_null())
    assert linked.height == run.events.filter(pl.col("kind").is_in(["choice", "message"])).height
    stored = set(run.prompts["prompt_hash"].to_list())
    assert set(linked["prompt_hash"].to_list()) <= stored
    assert run.prompts["prompt_hash"].n_unique() == run.prompts.height  # once per run


def test_stored_text_is_exactly_what_was_hashed(run: Run):
    for row in run.prompts.iter_rows(named=True):
        assert rehash(row["messages"], row["options"]) == row["prompt_hash"]
        assert (row["options"] is None) == (row["kind"] == "generate")


def test_prompt_shards_are_compressed_parquet(run: Run, tmp_path: Path):
    shards = sorted((run.path / "prompts").glob("step-*.parquet"))
    assert shards
    assert dict(pl.read_parquet_schema(shards[0])) == PROMPT_SCHEMA
    plain = tmp_path / "plain.parquet"
    pl.read_parquet(shards[0]).write_parquet(plain, compression="uncompressed")
    assert shards[0].stat().st_size < plain.stat().st_size / 2


def test_show_prompts_prints_agent_text_inert(capsys: pytest.CaptureFixture[str]):
    evil = "[red]boom[/red] \x1b[2J and \u202egnp.exe"
    prompts = frame([{"prompt_hash": "abc", "kind": "score", "options": ["a", "[b]"],
                      "messages": json.dumps([{"role": "user", "content": evil}])}],
                    PROMPT_SCHEMA)
    empty = pl.DataFrame(schema=EVENT_SCHEMA)
    print_prompts(Run(path=Path("r"), manifest={}, scenario={}, events=empty,
                      agents=pl.DataFrame(schema=AGENT_SCHEMA),
                      network=pl.DataFrame(schema=NETWORK_SCHEMA),
                      surveys=pl.DataFrame(), prompts=prompts), limit=10)
    out = capsys.readouterr().out
    assert "[red]boom[/red]" in out and "[b]" in out  # markup shown, not applied
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out and "\\u202e" in out


def test_cli_show_prompts(run: Run, capsys: pytest.CaptureFixture[str]):
    from sim.cli.main import main

    assert main(["show", str(run.path), "--prompts", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    first = run.prompts.row(0, named=True)
    assert first["prompt_hash"] in out and "more prompts" in out
