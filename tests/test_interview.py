"""``traitlab interview``: agents answer at a past step from their memory then, the run's
records stay byte-identical, the same interview gives the same answers, bad requests are
one-line errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from sim.cli.main import main
from sim.records.schemas import INTERVIEW_SCHEMA
from sim.run.interview import interview_run
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig
from tests.scenario_builders import pd

QUESTION = "Why did you [red]defect[/red]?"


def _digests(run_dir: Path) -> dict[str, str]:
    """sha256 of every file of a run but its interviews."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.relative_to(run_dir).parts[0] != "interviews"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four language-model agents and two scripted ones, answered by the scripted backend."""
    spec = pd(size=6, rounds=3, chat_turns=1, cohorts=[
        {"name": "people", "count": 4},
        {"name": "bots", "count": 2, "policy": {"name": "tit_for_tat"}}])
    return run_scenario(spec, RunConfig(backend="scripted", seed=7,
                                        out=tmp_path_factory.mktemp("runs"))).path


def _answers(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path).drop("created_at")


def test_interview_leaves_the_run_as_it_was_and_repeats_exactly(run_dir, capsys):
    before = _digests(run_dir)
    argv = ["interview", str(run_dir), "--at", "3", "--agents", "a000,a002,a005", QUESTION]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "[red]defect[/red]" in out.replace("\n", "").replace(" ", "")  # shown, not styled
    assert "Skipped scripted agents" in out and "a005" in out
    assert main(argv) == 0
    assert _digests(run_dir) == before
    first, second = sorted((run_dir / "interviews").glob("*step3-??????.parquet"))
    a, b = _answers(first), _answers(second)
    assert a.equals(b)
    assert a.columns == [c for c in INTERVIEW_SCHEMA if c != "created_at"]
    assert a["agent"].to_list() == ["a000", "a002"] and set(a["step"]) == {3}
    assert a["text"].null_count() == 0 and a["question"].to_list() == [QUESTION] * 2
    prompts = pl.read_parquet(first.with_name(first.stem + "-prompts.parquet"))
    assert set(prompts["prompt_hash"]) == set(a["prompt_hash"])
    user = json.loads(prompts["messages"][0])[1]["content"]
    assert "What you remember:\nRound 1 (chat)" in user and QUESTION in user
    meta = json.loads(first.with_suffix(".json").read_text())
    assert (meta["step"], meta["agents"], meta["seed"]) == (3, ["a000", "a002"], 7)


def test_answers_differ_by_step_and_memory_grows(run_dir):
    from sim.backends.scripted import ScriptedBackend

    early = interview_run(run_dir, 0, ScriptedBackend(), questions=["Who are you?"])
    late = interview_run(run_dir, 6, ScriptedBackend(), questions=["Who are you?"])
    assert [r["agent"] for r in early.rows] == ["a000", "a001", "a002", "a003"]
    assert early.skipped == ["a004", "a005"]
    assert [r["seed"] for r in early.rows] != [r["seed"] for r in late.rows]
    users = [[json.loads(m)[1]["content"] for m in pl.read_parquet(
        i.path.with_name(i.path.stem + "-prompts.parquet"))["messages"]] for i in (early, late)]
    assert all("What you remember:\nnothing yet\n" in u for u in users[0])
    assert all("Round 3 (play)" in u for u in users[1])


def test_questions_file_and_instrument(run_dir, tmp_path, capsys):
    questions = tmp_path / "q.yaml"
    questions.write_text("- How do you feel?\n- What will you do next?\n")
    assert main(["interview", str(run_dir), "--at", "2", "--agents", "a001",
                 "--questions", str(questions), "--instrument", "mini-ipip"]) == 0
    assert "40 questionnaire items answered" in capsys.readouterr().out
    (survey,) = (run_dir / "interviews").glob("*step2-*-survey.parquet")
    rows = pl.read_parquet(survey)
    assert rows.height == 20 * 2 and set(rows["agent"]) == {"a001"}  # items x orders
    assert set(rows["mode"]) == {"in_situ"} and set(rows["step"]) == {2}
    answers = _answers(survey.with_name(survey.name.replace("-survey", "")))
    assert answers["question"].to_list() == ["How do you feel?", "What will you do next?"]


@pytest.mark.parametrize(("args", "message"), [
    (["--at", "99", "Q"], "error: --at 99: the run has steps 0 to 6. Fix: pass --at from 0"),
    (["--at", "-1", "Q"], "error: --at -1: the run has steps 0 to 6."),
    (["--at", "2", "--agents", "a009", "Q"], "error: --agents: no agent 'a009' in "),
    (["--at", "2"], "error: an interview needs a question, --questions FILE or --instrument "
                    "NAME. Fix: add one, e.g. traitlab interview RUN_DIR --at 3 "),
    (["--at", "2", "--instrument", "nope"], "error: unknown instrument 'nope'. Fix: use one "
                                            "of: ipip-50, "),
    (["--at", "2", "--instrument", "mini_ipip5"], "error: unknown instrument 'mini_ipip5'. "
                                                  "Fix: did you mean 'mini-ipip'? use one of"),
])
def test_bad_requests_are_one_line_errors(run_dir, capsys, args, message):
    before = _digests(run_dir)
    assert main(["interview", str(run_dir), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(message), err
    assert _digests(run_dir) == before


def test_a_bad_questions_file_is_a_one_line_error(run_dir, tmp_path, capsys):
    bad = tmp_path / "q.yaml"
    bad.write_text("question: one\n")
    assert main(["interview", str(run_dir), "--at", "1", "--questions", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --questions {bad}: expected a list of questions")


def test_a_question_that_is_not_text_is_named(run_dir, tmp_path, capsys):
    bad = tmp_path / "q.yaml"
    bad.write_text("- Why?\n- {mood: 3}\n")  # an unquoted brace makes a mapping
    assert main(["interview", str(run_dir), "--at", "1", "--questions", str(bad)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --questions {bad}: question 2 is {{'mood': 3}}, not a question. Fix: write "
        "each question as text of at most 5,000 characters on its own '- ' line (quote it if "
        "it holds ': ' or starts with '{' or '[')."]


def test_a_questions_file_is_bounded(run_dir, tmp_path, capsys):
    many = tmp_path / "many.yaml"  # one alias repeated: a small file, many questions
    many.write_text("- &q Why?\n" + "- *q\n" * 1000)
    assert main(["interview", str(run_dir), "--at", "1", "--questions", str(many)]) == 2
    assert capsys.readouterr().err == (
        f"error: --questions {many}: 1,001 questions, over the limit of 1,000 (every agent "
        "answers every one). Fix: split the file into several interviews.\n")
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("- !!python/object/apply:os.system ['true']\n")
    assert main(["interview", str(run_dir), "--at", "1", "--questions", str(tagged)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tagged}:1:") and err.count("\n") == 1, err


def test_the_tiny_model_answers_the_same_twice(tmp_path, tiny_model_path):
    """fp32 on a real (tiny random) model: same seed, same answers; the run is untouched."""
    config = {"backend": "hf", "model": str(tiny_model_path), "dtype": "float32"}
    run = run_scenario(pd(size=3, rounds=2, chat_turns=1),
                       RunConfig(seed=1, out=tmp_path, max_new_tokens=8, **config)).path
    before = _digests(run)
    argv = ["interview", str(run), "--at", "2", "What matters to you?"]
    assert main(argv) == 0 and main(argv) == 0
    assert _digests(run) == before
    first, second = (_answers(p)
                     for p in sorted((run / "interviews").glob("*step2-??????.parquet")))
    assert first.equals(second) and first.height == 3
    assert first["text"].n_unique() > 1 and first["model"][0].startswith("hf:")
