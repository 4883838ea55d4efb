"""Sweep files that would exhaust memory, read outside their folder or fail only at run time
are refused by ``traitlab sweep --validate`` with one line: file:line, field, value, fix."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sim.cli.main import main

BASE = Path("scenarios/sweeps/pd_pair.yaml")
NETWORK_BASE = """\
name: net
rounds: 2
population:
  size: 16
network:
  generator: watts_strogatz_graph
  k: 4
  p: 0.1
stages:
  - id: play
    kind: choice
    groups: {by: neighbours}
    prompt: You are paired with {partner.name}. Cooperate or defect?
    options: [cooperate, defect]
    payoff:
      matrix: [[3, 0], [5, 1]]
"""


def _sweep(tmp_path: Path, body: str, base: str | None = None) -> Path:
    folder = tmp_path / "sweeps"
    folder.mkdir(exist_ok=True)
    if base is None:
        shutil.copy(BASE, folder / "base.yaml")
    else:
        (folder / "base.yaml").write_text(base)
    path = folder / "s.yaml"
    path.write_text(body)
    return path


def _refused(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["sweep", str(path), "--validate"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert "Traceback" not in err and " Fix: " in err
    return err


def test_ten_billion_cells_are_refused_before_expanding(tmp_path, capsys):
    values = "[" + ", ".join(str(i / 100) for i in range(100)) + "]"
    grid = "\n".join(f"      population.personality.mean.{t}: {values}" for t in
                     ("openness", "conscientiousness", "extraversion", "agreeableness",
                      "neuroticism"))
    path = _sweep(tmp_path, f"name: big\nscenario: base.yaml\nvary:\n  - grid:\n{grid}\n")
    err = _refused(path, capsys)
    assert f"{path}:4:" in err and "field 'vary'" in err
    assert "10,000,000,000 cells, over the limit of 10,000" in err


def test_non_ascii_digit_is_not_an_index(tmp_path, capsys):
    path = _sweep(tmp_path, "name: s\nscenario: base.yaml\nvary:\n  - grid:\n"
                            "      stages.\u0661.memory: [1, 2]\n")
    err = _refused(path, capsys)
    assert f"{path}:5:" in err and "is not an index" in err


@pytest.mark.parametrize("where", ["../outside.yaml", "ABSOLUTE", "link.yaml"])
def test_base_scenario_outside_the_sweep_folder_is_refused(tmp_path, capsys, where):
    shutil.copy(BASE, tmp_path / "outside.yaml")
    if where == "ABSOLUTE":
        where = str(tmp_path / "outside.yaml")
    path = _sweep(tmp_path, f"name: s\nscenario: {where}\n")
    os.symlink(tmp_path / "outside.yaml", path.parent / "link.yaml")
    err = _refused(path, capsys)
    assert f"{path}:2:" in err and "field 'scenario'" in err
    assert "is outside the sweep file's folder" in err and "copy the scenario next to" in err


def test_base_scenario_in_a_subfolder_is_fine(tmp_path, capsys):
    path = _sweep(tmp_path, "name: s\nscenario: sub/base.yaml\n")
    (path.parent / "sub").mkdir()
    shutil.copy(BASE, path.parent / "sub" / "base.yaml")
    assert main(["sweep", str(path), "--validate"]) == 0


@pytest.mark.parametrize("bound", [".nan", ".inf"])
def test_non_finite_distribution_bounds_are_refused(tmp_path, capsys, bound):
    path = _sweep(tmp_path, "name: s\nscenario: base.yaml\nvary:\n  - random:\n      n: 2\n"
                            "      params:\n        population.personality.sd: "
                            f"{{uniform: [0.05, {bound}]}}\n")
    err = _refused(path, capsys)
    assert f"{path}:7:" in err and "finite number" in err


def test_wrong_network_parameter_type_is_refused_at_its_own_line(tmp_path, capsys):
    path = _sweep(tmp_path, "name: s\nscenario: base.yaml\nvary:\n  - grid:\n"
                            "      network.p: [0.1, 0.2,\n        often]\n", base=NETWORK_BASE)
    err = _refused(path, capsys)
    assert f"{path}:6:" in err and "field 'network.p'" in err and "'often'" in err


@pytest.mark.parametrize("target", ["/dev/zero", "FIFO", "DIR"])
def test_sweep_file_that_is_no_regular_file_is_refused(tmp_path, capsys, target):
    if target == "FIFO":
        target = str(tmp_path / "fifo.yaml")
        os.mkfifo(target)
    elif target == "DIR":
        target = str(tmp_path)
    assert main(["sweep", target, "--validate"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {target}: ")
