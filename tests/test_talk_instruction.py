"""The speaking instruction is context in the system prompt, and models do not echo it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from agents.agent import TALK_CONTEXT, TURN_CUE
from analysis.io import load_run
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig
from tests.scenario_builders import pd

OLD = ("Write your next message in the conversation: one or two short sentences, in your "
       "own voice, without your name in front.")


def _generate_prompts(tmp_path: Path) -> list[list[dict[str, str]]]:
    outcome = run_scenario(pd(size=4, rounds=1, chat_turns=2),
                           RunConfig(backend="scripted", seed=0, out=tmp_path))
    prompts = load_run(outcome.path).prompts.filter(pl.col("kind") == "generate")
    return [json.loads(m) for m in prompts["messages"]]


def test_instruction_is_second_person_context_in_the_system_prompt(tmp_path: Path):
    chats = _generate_prompts(tmp_path)
    assert chats
    for system, user in chats:
        assert system["role"] == "system" and system["content"].endswith(TALK_CONTEXT)
        assert TALK_CONTEXT not in user["content"] and OLD not in user["content"]
        # the user turn ends with the conversation and a two-word cue: nothing to copy
        assert user["content"].endswith("\n\n" + TURN_CUE)
    words = re.findall(r"[a-z']+", TALK_CONTEXT.lower())
    assert "you" in words and not {"i", "me", "my"} & set(words)  # about the agent, not its line
    assert not TALK_CONTEXT.startswith(("Write", "Say", "Reply"))  # not a line to fill in


def _windows(text: str, n: int = 6) -> set[str]:
    words = re.findall(r"[a-z']+", text.lower())
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


@pytest.mark.slow
def test_smollm2_does_not_echo_the_instruction(tmp_path: Path, monkeypatch, model_cache):
    from sim.cli.main import main

    monkeypatch.setenv("TRAITLAB_CACHE", str(model_cache))
    scenario = tmp_path / "chat.yaml"
    scenario.write_text(
        "name: chat\nrounds: 1\npopulation: {size: 4, personality: {model: big_five}}\n"
        "stages:\n  - id: chat\n    kind: dialogue\n    turns: 3\n"
        "    groups: {by: random_pairs}\n    max_new_tokens: 40\n"
        "    prompt: You meet {partner.name} at a party and chat.\n")
    assert main(["run", str(scenario), "--seed", "0", "--quiet", "--out",
                 str(tmp_path / "runs")]) == 0
    (run_dir,) = (tmp_path / "runs" / "chat").iterdir()
    texts = load_run(run_dir).events.filter(pl.col("kind") == "message")["text"].to_list()
    assert len(texts) == 6
    instruction = _windows(TALK_CONTEXT) | _windows(OLD)
    for text in texts:
        assert TALK_CONTEXT not in text and OLD not in text
        assert not _windows(text) & instruction, text  # no six-word run of it either
