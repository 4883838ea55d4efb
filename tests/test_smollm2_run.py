"""Integration: the CLI runs the default scenario on the embedded SmolLM2 (slow)."""

import polars as pl
import pytest

from analysis.io import load_run
from sim.cli.main import main


@pytest.mark.slow
def test_prisoners_dilemma_on_smollm2(tmp_path, capsys, monkeypatch, model_cache):
    monkeypatch.setenv("TRAITLAB_CACHE", str(model_cache))
    code = main(["run", "scenarios/prisoners_dilemma.yaml", "--steps", "2", "--quiet",
                 "--out", str(tmp_path)])
    assert code == 0
    run = load_run(capsys.readouterr().out.strip().splitlines()[-1])
    assert run.manifest["status"] == "complete"
    assert run.manifest["model"]["backend"] == "hf"
    assert run.manifest["model"]["weights_hash"]
    messages = run.events.filter(pl.col("kind") == "message")
    choices = run.events.filter(pl.col("kind") == "choice")
    assert messages.height == 16 and choices.height == 16  # 8 pairs x 2 turns; 16 moves
    assert (messages["text"].str.len_chars() > 0).mean() > 0.8
    assert (choices["prompt_tokens"] > 50).all()
    assert all(abs(sum(p) - 1) < 1e-6 for p in choices["option_probs"])
