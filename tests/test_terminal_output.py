"""What the CLI writes to a terminal: every library run can be shown and analysed, and text
from agents and users (names, messages, options, stage ids) arrives as inert, visible text.

The hostile run is shown by a subprocess whose raw stdout bytes are read, once as a pipe and
once with rich forced to behave as on a colour terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from sim.cli.main import main
from sim.cli.terminal import safe_text, visible
from sim.requests import GenerateRequest, GenerateResult, ModelInfo, ScoreRequest, ScoreResult
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig

LIBRARY = sorted(Path("scenarios").glob("*.yaml"))
HOSTILE = ["[/red]", "[link=http://x]click[/link]", "[/INST]", "\x1bc", "\x1b]0;title\x07",
           "\x1b[2J", "\x9b31m", "\u202eevil"]
BAD_SEQUENCES = [b"\x1bc", b"\x1b]0;", b"\x1b[2J", b"\x1b]8;", b"\x07", b"\xc2\x9b",
                 "\u202e".encode()]


@pytest.mark.parametrize("scenario", LIBRARY, ids=lambda p: p.stem)
def test_show_and_analyze_every_library_run(scenario, tmp_path, capsys):
    assert main(["run", str(scenario), "--backend", "scripted", "--seed", "0", "--quiet",
                 "--out", str(tmp_path)]) == 0
    run_dir = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["show", run_dir, "--limit", "100000"]) == 0
    shown = capsys.readouterr().out
    assert "replica 0" in shown
    assert main(["analyze", run_dir]) == 0
    assert capsys.readouterr().out


class HostileBackend:
    """Says every hostile string in each message; scores all options alike."""

    info = ModelInfo(backend="hostile", model_id="none")

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """One message with every hostile string in it."""
        return [GenerateResult(text="says " + " | ".join(HOSTILE), num_new_tokens=1)
                for _ in requests]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Equal log-likelihoods."""
        return [ScoreResult(logprobs=(0.0,) * len(r.options)) for r in requests]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-round PD run whose names, options, stage ids and messages are hostile."""
    root = tmp_path_factory.mktemp("hostile")
    data = yaml.safe_load(Path("scenarios/prisoners_dilemma.yaml").read_text())
    data["rounds"] = 2
    data["population"]["size"] = 4
    data["population"]["names"] = ["[/red]", "[link=http://x]x", "\x1bc\x1b[2J",
                                   "\x1b]0;title\x07"]
    data["stages"][1]["options"] = ["[/INST]", "\x1b[2Jdefect"]
    data["flow"][0]["every"] = 1
    data["interventions"] = [{"id": "notice", "at": {"round": 2},
                              "announce": "announces " + " | ".join(HOSTILE)}]
    path = root / "hostile.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    config = RunConfig(backend="scripted", out=root / "runs")
    backend = HostileBackend()
    outcome = run_scenario(path, config, backend=backend)
    return outcome.path


def _terminal_bytes(args: list[str], *, colour: bool) -> bytes:
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    if colour:
        env["FORCE_COLOR"] = "1"
        env["TERM"] = "xterm-256color"
    else:
        env.pop("FORCE_COLOR", None)
    done = subprocess.run([sys.executable, "-c", "from sim.cli.main import main; "
                           "raise SystemExit(main())", *args], env=env,
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


@pytest.mark.parametrize("command", ["show", "analyze"])
def test_hostile_text_reaches_a_pipe_without_escape_bytes(hostile_run, command):
    out = _terminal_bytes([command, str(hostile_run)], colour=False)
    assert b"\x1b" not in out and b"\x07" not in out
    for sequence in BAD_SEQUENCES:
        assert sequence not in out
    text = out.decode()
    if command == "show":  # the text is visible, as written
        assert "[/red]" in text and "[link=http://x]" in text and "[/INST]" in text
        assert "\\x1bc" in text and "\\x1b]0;title\\x07" in text and "\\x1b[2J" in text
        assert "\\u202eevil" in text
        assert 'intervention notice: "announces [/red] | [link=http://x]click[/link]' in text


@pytest.mark.parametrize("command", ["show", "analyze"])
def test_hostile_text_on_a_colour_terminal_makes_no_control_sequence(hostile_run, command):
    out = _terminal_bytes([command, str(hostile_run)], colour=True)
    assert b"\x1b[" in out  # rich's own colours are there: the terminal path is exercised
    for sequence in BAD_SEQUENCES:
        assert sequence not in out
    assert b"http://x" not in out or b"\x1b]8;" not in out  # shown, never a hyperlink


def test_run_summary_survives_hostile_names(hostile_run, capsys):
    from analysis.io import load_run
    from sim.cli.progress import print_summary

    print_summary(load_run(hostile_run), 1.0)  # a MarkupError here made `run` exit 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "[/INST]" in out


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain", "plain"), ("a\nb\tc", "a\nb\tc"), ("\x1bc", "\\x1bc"), ("\x00", "\\x00"),
    ("\x7f", "\\x7f"), ("\x9b", "\\x9b"), ("\u200b", "\\u200b"),
    ("\u2066x\u2069", "\\u2066x\\u2069"),
])
def test_visible_writes_controls_as_escapes(raw, shown):
    assert visible(raw) == shown


@pytest.mark.parametrize("raw", ["[/red]", "[link=http://x]", "[bold]x[/bold]", "a\\",
                                 "[@click=quit]", "\\[/red]"])
def test_safe_text_renders_to_itself(raw):
    from rich.console import Console

    console = Console(file=None, record=True, width=200, emoji=False)
    with console.capture() as capture:
        console.print(f"[bold]{safe_text(raw)}[/bold]")
    assert capture.get().rstrip("\n") == raw


def test_schema_into_a_closed_pipe_is_quiet():
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(f"'{sys.executable}' -c 'from sim.cli.main import main; "
                          f"raise SystemExit(main())' schema | head -n 1",
                          shell=True, env=env, capture_output=True, timeout=120, check=False)
    assert done.stdout.strip() == b"{"
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr


def test_report_tables_print_emoji_codes_as_text(capsys):
    import polars as pl

    from analysis.report import Report
    from analysis.report_html import print_report

    report = Report(title="t :smile:", run_ids=["r"])
    report.add("names", pl.DataFrame({"agent": [":thumbs_up: [bold]x[/bold]"]}))
    print_report(report)
    out = capsys.readouterr().out
    assert ":smile:" in out and ":thumbs_up:" in out and "[bold]x[/bold]" in out
    assert "\U0001f604" not in out and "\U0001f44d" not in out
