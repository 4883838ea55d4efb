"""Inputs that are no scenario file at all, and an empty --out: one line, no hang, no
traceback, nothing written."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sim.cli.main import main


@pytest.mark.parametrize(("target", "message"), [
    ("/dev/zero", "is not a regular file (a device, pipe or socket)"),
    ("FIFO", "is not a regular file (a device, pipe or socket)"),
    ("DIR", "is a directory, not a file"),
    ("MISSING", "no such file"),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_scenario_path_that_is_no_file(tmp_path, capsys, target, message, command):
    if target == "FIFO":  # opening it would block until a writer comes
        target = str(tmp_path / "fifo.yaml")
        os.mkfifo(target)
    elif target == "DIR":
        target = str(tmp_path)
    elif target == "MISSING":
        target = str(tmp_path / "nope.yaml")
    started = time.perf_counter()
    argv = [command, target] + (["--backend", "scripted", "--out", str(tmp_path / "runs")]
                                if command == "run" else [])
    assert main(argv) == 2
    assert time.perf_counter() - started < 5
    err = capsys.readouterr().err
    assert err == f"error: {target}: {message}" + err.split(message, 1)[1]
    assert len(err.splitlines()) == 1 and " Fix: " in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_empty_out_is_refused(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    scenario = Path(__file__).parents[1] / ("scenarios/prisoners_dilemma.yaml" if command == "run"
                                            else "scenarios/sweeps/pd_agreeableness.yaml")
    with pytest.raises(SystemExit) as exit_:
        main([command, str(scenario), "--out", ""])
    assert exit_.value.code == 2
    assert "argument --out: '' is empty; name an output folder" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
