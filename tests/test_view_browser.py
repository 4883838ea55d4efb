"""``traitlab view`` and ``traitlab run --view --control`` driven in headless chromium.

The servers run as ``traitlab`` subprocesses on 127.0.0.1 and are killed at the end of each
test; every wait is bounded. The browser resolves no host but 127.0.0.1, so the page proves
it needs no network. Skipped, with the reason, without selenium, chromium or chromedriver.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from analysis.io import load_run
from sim.run.runner import resume_run, run_scenario
from sim.scenario.spec import RunConfig
from tests.support.commons_fleet import QUOTA, commons_fleet

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install -e '.[test]')")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PD = ROOT / "scenarios" / "prisoners_dilemma.yaml"
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver") or next(
    (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if
     os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None or DRIVER is None,
    reason="no headless chromium with chromedriver: apt-get install chromium chromium-driver")
MARKUP = "<b>markup</b><script>window.pwned=1</script>"
WAIT_S = 60.0


def _until(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll ``check`` until it returns something truthy (bounded).

    An element the page re-rendered between finding and reading it counts as not yet.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except StaleElementReferenceException:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.binary_location = str(BROWSER)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    yield driver
    driver.quit()


def _scenario(tmp: Path, rounds: int = 10) -> Path:
    """The library's prisoner's dilemma with a first agent whose name and story are markup."""
    spec = yaml.safe_load(PD.read_text())
    spec["rounds"] = rounds
    spec["population"]["profiles"] = [{"name": MARKUP, "background": f"Story: {MARKUP}",
                                       "mbti": {"type": "ENFP"}}]
    path = tmp / "pd.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


class Traitlab:
    """A ``traitlab`` subprocess whose output lines are read by a thread (bounded waits)."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from sim.cli import main; sys.exit(main())",
             *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def url(self) -> str:
        """The address the command printed."""
        deadline = time.monotonic() + WAIT_S
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.proc.poll() is None, "".join(seen)
                continue
            seen.append(line)
            match = re.search(r"traitlab view: (http://127\.0\.0\.1:\d+/)", line)
            if match:
                return match.group(1)
        raise AssertionError("no address printed: " + "".join(seen))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def _rendered(driver: Any) -> str:
    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-rendered-step")


def test_recorded_run_network_slider_prompt_and_inert_text(browser: Any, tmp_path: Path
                                                          ) -> None:
    run = run_scenario(_scenario(tmp_path), RunConfig(backend="scripted", out=tmp_path,
                                                      seed=2)).path
    server = Traitlab("view", str(run), cwd=tmp_path)
    try:
        browser.get(server.url())
        _until(lambda: _rendered(browser) == "12", "the last step to render")
        nodes = browser.find_elements(By.CSS_SELECTOR, "#nodes circle.agent")
        assert sorted(n.get_attribute("data-agent") for n in nodes) == [
            f"a{i:03d}" for i in range(16)]
        label = browser.find_element(By.ID, "step-label").text
        browser.execute_script("const s = document.getElementById('slider'); s.value = 4; "
                               "s.dispatchEvent(new Event('input'));")
        _until(lambda: _rendered(browser) == "4", "step 4 to render")
        assert browser.find_element(By.ID, "step-label").text == "step 4 · round 3 · play"
        assert label == "step 12 · round 10 · play"
        browser.find_element(By.CSS_SELECTOR, "circle[data-agent='a005']").click()
        _until(lambda: browser.find_elements(By.CSS_SELECTOR, "#card pre.prompt"),
               "the agent card's prompt")
        events = load_run(run)
        hash_ = events.events.filter((pl.col("agent") == "a005") & (pl.col("step") == 4)
                                     & (pl.col("replica") == 0))["prompt_hash"][0]
        stored = json.loads(events.prompts.filter(pl.col("prompt_hash") == hash_)
                            ["messages"][0])
        shown = [p.get_attribute("textContent")
                 for p in browser.find_elements(By.CSS_SELECTOR, "#card pre.prompt")]
        assert shown == [m["content"] for m in stored]
        # a000 carries the markup: as a name in the card and the transcript, and as text only
        browser.find_element(By.CSS_SELECTOR, "circle[data-agent='a000']").click()
        _until(lambda: MARKUP in browser.find_element(By.ID, "agent-title").text,
               "a000's card")
        card = browser.find_element(By.ID, "card").get_attribute("textContent")
        assert f"Story: {MARKUP}" in card
        assert MARKUP in browser.find_element(By.ID, "rows").get_attribute("textContent")
        assert browser.execute_script("return typeof window.pwned") == "undefined"
        assert not browser.find_elements(By.CSS_SELECTOR, "main b, main script")
        shot = tmp_path / "view.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 30_000
    finally:
        server.close()


def _click(driver: Any, action: str) -> None:
    driver.find_element(By.ID, f"control-{action}").click()


def _state(driver: Any) -> str:
    return driver.find_element(By.ID, "control-state").text


def test_live_run_paused_stepped_and_stopped_from_the_page(browser: Any, tmp_path: Path
                                                           ) -> None:
    scenario = _scenario(tmp_path, rounds=100)  # 120 steps: long enough to pause mid-run
    server = Traitlab("run", str(scenario), "--backend", "scripted", "--seed", "4", "--quiet",
                      "--out", str(tmp_path / "live"), "--view", "--control", cwd=tmp_path)
    try:
        browser.get(server.url())
        _until(lambda: _state(browser) == "paused before step 1", "the run to wait")
        _click(browser, "step")
        _until(lambda: _state(browser) == "paused before step 2", "one step")
        _until(lambda: _rendered(browser) == "1", "the page to show step 1")
        _click(browser, "resume")
        _click(browser, "pause")
        paused = _until(lambda: re.fullmatch(r"paused before step (\d+)", _state(browser)),
                        "the run to pause")
        before = int(paused.group(1))
        assert 2 <= before < 120, _state(browser)
        time.sleep(1.0)  # paused: nothing more is committed
        _until(lambda: _rendered(browser) == str(before - 1), "the page to catch up")
        _click(browser, "stop")
        assert server.proc.wait(WAIT_S) == 130
    finally:
        server.close()
    watched = _stopped_then_resumed(tmp_path / "live", before)
    plain = run_scenario(scenario, RunConfig(backend="scripted", out=tmp_path / "plain",
                                             seed=4)).path
    a, b = load_run(plain), load_run(watched)
    for name in ("events", "agents", "network", "prompts"):
        assert getattr(a, name).drop("run_id").equals(getattr(b, name).drop("run_id")), name


def _stopped_then_resumed(out: Path, before: int) -> Path:
    """The run stopped from the page: interrupted before step ``before``, then resumed."""
    (watched,) = out.glob("*/*")
    manifest = json.loads((watched / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["steps_completed"] == before - 1
    assert resume_run(watched).status == "complete"
    return watched


def _memory_step(driver: Any) -> str | None:
    found = driver.find_elements(By.CSS_SELECTOR, "#memory[data-step]")
    return found[0].get_attribute("data-step") if found else None


def _listed(driver: Any) -> tuple[str | None, bool]:
    listed = driver.find_element(By.CSS_SELECTOR, "#interventions .intervention")
    return listed.get_attribute("data-step"), QUOTA in listed.text


def _memory_text(driver: Any) -> str:
    return driver.find_element(By.ID, "memory").text


def test_live_commons_takes_an_intervention_from_the_page(browser: Any, tmp_path: Path
                                                          ) -> None:
    """Quota 2 applied before step 3 (month 2's talk): the lake goes 40, 64, then 100."""
    scenario = commons_fleet(tmp_path, at_round=60, rounds=60)  # declared, far off
    server = Traitlab("run", str(scenario), "--backend", "scripted", "--seed", "0", "--quiet",
                      "--out", str(tmp_path / "live"), "--view", "--control", cwd=tmp_path)
    apply = "button[data-intervention='quota']"
    try:
        browser.get(server.url())
        _until(lambda: _state(browser) == "paused before step 1", "the run to wait")
        _click(browser, "step")
        _until(lambda: _state(browser) == "paused before step 2", "step 1")
        _click(browser, "step")
        _until(lambda: _state(browser) == "paused before step 3", "step 2")
        _until(lambda: _rendered(browser) == "2", "the page to show step 2")
        assert browser.find_elements(By.CSS_SELECTOR, "svg.chart[data-state='lake']")
        browser.find_element(By.CSS_SELECTOR, apply).click()
        def control(name: str) -> str | None:
            return browser.find_element(By.ID, "interventions-control").get_attribute(name)

        _until(lambda: control("data-queued") == "quota", "the quota to queue")
        _click(browser, "step")
        _until(lambda: _state(browser) == "paused before step 4", "step 3")
        _until(lambda: _rendered(browser) == "3", "the page to show step 3")
        _until(lambda: control("data-applied") == "quota@3", "the quota to apply at step 3")
        _until(lambda: _listed(browser) == ("3", True), "the intervention listed at step 3")
        assert browser.find_elements(By.CSS_SELECTOR, "svg.chart .intervention-rule")
        # the card's memory at step 3 holds the announcement; at step 2 it did not yet
        browser.find_element(By.CSS_SELECTOR, "circle[data-agent='a003']").click()
        _until(lambda: _memory_step(browser) == "3" and QUOTA in _memory_text(browser),
               "a003's memory after step 3, with the announcement")
        browser.execute_script("const s = document.getElementById('slider'); s.value = 2; "
                               "s.dispatchEvent(new Event('input'));")
        text = _until(lambda: _memory_step(browser) == "2" and _memory_text(browser),
                      "a003's memory after step 2")
        assert QUOTA not in text
        _click(browser, "resume")
        _click(browser, "pause")
        paused = _until(lambda: re.fullmatch(r"paused before step (\d+)", _state(browser)),
                        "the run to pause")
        before = int(paused.group(1))
        assert 4 <= before < 120, _state(browser)
        _click(browser, "stop")
        assert server.proc.wait(WAIT_S) == 130
    finally:
        server.close()
    watched = _stopped_then_resumed(tmp_path / "live", before)
    run = load_run(watched)
    assert run.events.filter(pl.col("kind") == "intervention").select(
        "step", "round", "stage", "intervention").rows() == [(3, 2, "talk", "quota")]
    lake = run.state.filter(pl.col("name") == "lake", pl.col("stage") == "fish").sort("step")
    assert lake["value"].to_list() == [40, 64] + [100] * 58
    scheduled = run_scenario(commons_fleet(tmp_path, at_round=2, rounds=60), RunConfig(
        backend="scripted", out=tmp_path / "scheduled", seed=0)).path
    assert load_run(scheduled).events.drop("run_id").equals(run.events.drop("run_id"))
