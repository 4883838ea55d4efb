"""``traitlab interview``: ask a recorded run's agents questions at any past step."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sim.errors import RunError

__all__ = ["add_parser", "load_questions", "main", "take_question"]

_EXAMPLE = """example:
  traitlab interview runs/prisoners-dilemma/20261123T101500Z-1a2b3c --at 12 \\
      --agents a001,a003 "Why did you defect in the last round?"
  traitlab interview RUN_DIR --at 5 --questions questions.yaml   # a YAML list of questions
  traitlab interview RUN_DIR --at 5 --instrument mini-ipip       # a questionnaire, in situ

Answers go to RUN_DIR/interviews/<id>.parquet (with the prompts beside it); the run's own
records are not changed. Scripted agents are skipped.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               fmt: type[argparse.HelpFormatter]) -> None:
    """Add the ``interview`` sub-command."""
    from agents.instruments import RESTRICTED_FLAG
    from sim.scenario.spec import RunConfig

    parser = sub.add_parser("interview", help="ask a run's agents questions at a past step",
                            epilog=_EXAMPLE, formatter_class=fmt)
    parser.add_argument("interview_dir", type=Path, metavar="RUN_DIR", help="a run directory")
    parser.add_argument("question", nargs="?", default=None, help="the question to ask")
    parser.add_argument("--at", type=int, required=True, metavar="STEP",
                        help="the step at whose end to interview (0: before the first step)")
    parser.add_argument("--agents", default=None, metavar="KEYS",
                        help="comma-separated agent keys (default: every agent)")
    parser.add_argument("--questions", type=Path, default=None, metavar="FILE",
                        help="a YAML file with a list of questions")
    parser.add_argument("--instrument", default=None, metavar="NAME",
                        help="administer a questionnaire (ipip-50, mini-ipip, ...) in situ")
    parser.add_argument(RESTRICTED_FLAG, dest="allow_restricted", action="store_true",
                        help="allow instruments with non-commercial terms")
    parser.add_argument("--memory", type=int, default=None, metavar="N",
                        help="remembered moments shown (default: the scenario's largest)")
    fields = RunConfig.model_fields
    parser.add_argument("--backend", default=None,
                        choices=list(fields["backend"].annotation.__args__),  # type: ignore[union-attr]
                        help="answer with another backend (default: the run's)")
    parser.add_argument("--model", default=None, help="answer with another model folder")
    parser.add_argument("--dtype", default=None,
                        choices=list(fields["dtype"].annotation.__args__))  # type: ignore[union-attr]
    parser.add_argument("--device", default=None,
                        choices=list(fields["device"].annotation.__args__))  # type: ignore[union-attr]


def take_question(args: argparse.Namespace, extra: list[str]) -> bool:
    """Take a QUESTION given after the flags (argparse binds optional positionals early).

    Returns whether ``extra`` (what the parser did not recognise) was that question.
    """
    if getattr(args, "command", None) != "interview" or args.question is not None:
        return False
    if len(extra) != 1 or extra[0].startswith("-"):
        return False
    args.question = extra[0]
    return True


MAX_QUESTIONS = 1_000
"""Most questions one interview asks (each agent answers each, in one batched wave)."""
MAX_QUESTION_CHARS = 5_000
"""Longest question, as long as an intervention's announcement may be."""


def load_questions(path: Path) -> list[str]:
    """The questions of a YAML file: a list of strings (or ``questions:`` with one).

    Raises:
        RunError: the file is unreadable, or not a non-empty list of non-empty strings.
    """
    from sim.scenario.yaml_source import read_value

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"--questions {path}: cannot read it ({type(exc).__name__}). Fix: "
                       "pass a YAML file with a list of questions.") from None
    data = read_value(text, str(path))  # the loader's limits: size, nodes, depth, no tags
    if isinstance(data, dict) and set(data) == {"questions"}:
        data = data["questions"]
    if not isinstance(data, list) or not data:
        raise RunError(f"--questions {path}: expected a list of questions (non-empty strings), "
                       f"got {type(data).__name__}. Fix: write one '- question' per line.")
    if len(data) > MAX_QUESTIONS:
        raise RunError(f"--questions {path}: {len(data):,} questions, over the limit of "
                       f"{MAX_QUESTIONS:,} (every agent answers every one). Fix: split the file "
                       "into several interviews.")
    bad = next((i for i, q in enumerate(data) if not isinstance(q, str) or not q.strip()
                or len(q) > MAX_QUESTION_CHARS), None)
    if bad is not None:
        shown = repr(data[bad])[:60]
        raise RunError(f"--questions {path}: question {bad + 1} is {shown}, not a question. "
                       f"Fix: write each question as text of at most {MAX_QUESTION_CHARS:,} "
                       "characters on its own '- ' line (quote it if it holds ': ' or starts "
                       "with '{' or '[').")
    return [q.strip() for q in data]


def main(args: argparse.Namespace, argv: list[str]) -> int:
    """Interview the run's agents and print the answers."""
    from sim.backends.factory import open_backend
    from sim.closing import Closing
    from sim.records.files import read_manifest
    from sim.run.interview import interview_run, open_interview
    from sim.scenario.spec import RunConfig

    if args.question is not None and args.questions is not None:
        raise RunError("pass either a QUESTION or --questions FILE, not both.")
    questions = [args.question] if args.question is not None else (
        load_questions(args.questions) if args.questions is not None else [])
    if args.question is not None and not args.question.strip():
        raise RunError("QUESTION is empty. Fix: pass the question in quotes.")
    if args.question is not None and len(args.question) > MAX_QUESTION_CHARS:
        raise RunError(f"QUESTION has {len(args.question):,} characters, over the limit of "
                       f"{MAX_QUESTION_CHARS:,}. Fix: ask a shorter question.")
    manifest = read_manifest(args.interview_dir)
    overrides = {k: getattr(args, k) for k in ("backend", "model", "dtype", "device")
                 if getattr(args, k) is not None}
    config = RunConfig.model_validate({**manifest["run_config"], **overrides})
    agents = [k.strip() for k in args.agents.split(",") if k.strip()] if args.agents else None
    open_interview(args.interview_dir, args.at, agents)  # refuse a bad request before loading
    backend = open_backend(config)
    try:
        result = interview_run(args.interview_dir, args.at, backend, questions=questions,
                               instrument=args.instrument, agents=agents, memory=args.memory,
                               allow_restricted=args.allow_restricted,
                               command=["traitlab", *argv])
    finally:
        if isinstance(backend, Closing):
            backend.close()
    _print(result)
    return 0


def _print(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from sim.cli.terminal import safe_text

    console = Console(emoji=False, highlight=False)
    if result.rows:
        table = Table(title=f"Interview at step {result.rows[0]['step']}")
        for column in ("replica", "agent", "question", "answer"):
            table.add_column(column, overflow="fold")
        for row in result.rows:
            answer = row["text"] if row["status"] == "ok" else f"(failed: {row['error']})"
            table.add_row(str(row["replica"]), row["agent"], safe_text(row["question"]),
                          safe_text(answer or ""))
        console.print(table)
    if result.survey_rows:
        console.print(f"{len(result.survey_rows)} questionnaire items answered.")
    if result.skipped:
        console.print(f"Skipped scripted agents (no words of their own): "
                      f"{', '.join(result.skipped)}.")
    console.print(f"Answers: {safe_text(str(result.path))}")
