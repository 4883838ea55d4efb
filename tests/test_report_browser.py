"""The HTML report in a headless browser: charts render offline, header fields, no clipped label.

The page measures its own labels after the charts render (every chart text inside its SVG
and without Vega's ellipsis, every header, note and table cell within its box) and writes
the result into ``<pre id="label-check">``; chromium's ``--dump-dom`` hands it to the test.
Network access is cut (``--host-resolver-rules``), so rendering proves the file is
self-contained. Skipped, with the reason, where no chromium is installed.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.io import load_run
from analysis.report import analyze_run, render_html
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig

ROOT = Path(__file__).resolve().parents[1]
BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser: install chromium (apt-get install chromium) "
    "to check the rendered report")

_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
          "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=20000"]


def _browser(page: Path, *args: str) -> str:
    assert BROWSER is not None
    done = subprocess.run([BROWSER, *_FLAGS, *args, page.as_uri()], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _check(dom: str) -> dict[str, object]:
    match = re.search(r'<pre id="label-check"[^>]*>(.*?)</pre>', dom, re.S)
    assert match and match.group(1), "the page never finished rendering its charts"
    return json.loads(html_lib.unescape(match.group(1)))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """A scripted prisoner's-dilemma run and its rendered report (path, run, charts)."""
    tmp = tmp_path_factory.mktemp("browser")
    run = run_scenario(str(ROOT / "scenarios" / "prisoners_dilemma.yaml"),
                       RunConfig(backend="scripted", out=tmp, seed=2)).path
    report = analyze_run(load_run(run))
    return render_html(report, tmp / "report.html"), run, len(report.figures)


def test_report_renders_with_header_and_no_clipped_label(page: tuple[Path, Path, int]
                                                         ) -> None:
    path, run, n_figures = page
    dom = _browser(path, "--window-size=1200,2400", "--dump-dom")
    result = _check(dom)
    assert "error" not in result, result
    assert result["charts"] == n_figures >= 4
    assert int(result["checked"]) > 100  # chart labels and page labels were measured
    assert result["clipped"] == [], result["clipped"]
    head = dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", dom))
    manifest = json.loads((run / "manifest.json").read_text())
    assert head["model"] == manifest["model"]["model_id"]
    assert head["decision rule"] == "sampled from the option probabilities"
    assert head["conditioning"] == "prompt" and head["seeds"] == "2"
    assert head["commit"] == (manifest["git_commit"] or "unknown (not a git checkout)")
    assert {"dtype", "temperature"} <= set(head)
    shot = path.with_suffix(".png")
    _browser(path, "--window-size=1200,2400", f"--screenshot={shot}")
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one


def test_label_check_catches_a_cut_label(page: tuple[Path, Path, int], tmp_path: Path) -> None:
    _, run, _ = page
    report = analyze_run(load_run(run))
    spec = next(f.spec for f in report.figures if f.section.startswith("Payoff by trait"))
    spec["config"]["axis"]["labelLimit"] = 30  # Vega cuts "conscientiousness" to "con…"
    cut = render_html(report, tmp_path / "cut.html")
    clipped = _check(_browser(cut, "--window-size=1200,2400", "--dump-dom"))["clipped"]
    assert clipped and any(str(c["text"]).endswith("\u2026") for c in clipped), clipped
