"""``traitlab analyze``: tables, a self-contained HTML report, sweeps and user errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis.io import load_run
from analysis.report import analyze_run
from analysis.summary import choice_rates_by_round
from sim.cli.main import main
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig

ROOT = Path(__file__).resolve().parents[1]
PD = ROOT / "scenarios" / "prisoners_dilemma.yaml"


def _run(out: Path, seed: int) -> Path:
    return run_scenario(str(PD), RunConfig(backend="scripted", out=out, seed=seed)).path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scripted prisoner's-dilemma run."""
    return _run(tmp_path_factory.mktemp("runs"), 1)


def _section(html: str, section_id: str) -> str:
    match = re.search(rf"<section id='{section_id}'>(.*?)</section>", html, re.S)
    assert match, f"section {section_id} missing"
    return match.group(1)


def test_analyze_writes_self_contained_html(run_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["analyze", str(run_dir), "--html", str(out)]) == 0
    assert "Cooperation rate" in capsys.readouterr().out
    html = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", html)
    assert "http://" not in html and "https://" not in html
    assert "<svg" in html and "<script" not in html
    for title in ("Cooperation rate · play", "Conditional cooperation · play",
                  "Payoff by trait · play", "Choice consensus and entropy · play",
                  "Alignment vs surrogates · chat"):
        assert f"<h2>{title}</h2>" in html


def test_cooperation_numbers_match_summary(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["analyze", str(run_dir), "--html", str(out)]) == 0
    body = _section(out.read_text(), "cooperation-rate---play")
    rows = re.findall(r"<tr><td>[^<]*</td><td>0</td><td>(\d+)</td><td>([\d.]+)</td>", body)
    got = {int(r): float(v) for r, v in rows}
    expected = choice_rates_by_round(load_run(run_dir).events).filter(stage="play")
    assert len(got) == expected.height == 10
    for row in expected.iter_rows(named=True):
        assert got[row["round"]] == pytest.approx(row["rate"], abs=1e-4)


def test_analyze_run_tables(run_dir: Path) -> None:
    report = analyze_run(load_run(run_dir))
    rates = report.tables["Cooperation rate · play"]
    assert rates["cooperation"].to_list() == pytest.approx(
        choice_rates_by_round(load_run(run_dir).events).filter(stage="play")["rate"].to_list())
    assert "Drift tests" not in report.tables  # the scripted run has no surveys
    assert report.figures


def test_sweep_of_two_runs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    ids = {_run(sweep / "a", 1).name, _run(sweep / "b", 2).name}
    out = tmp_path / "sweep.html"
    assert main(["analyze", str(sweep), "--html", str(out)]) == 0
    html = out.read_text()
    assert all(i in html for i in ids) and "2 runs" in html
    coop = _section(html, "cooperation-rate---play")
    assert all(i in coop for i in ids)


def test_not_a_run_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["analyze", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
