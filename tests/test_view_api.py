"""The view's JSON API, its incremental reader and the run control, without a browser.

Expected values are read straight from the recorded event rows with plain Python (the last
choice of each agent, the per-replica rates), not from the code under test.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import polars as pl
import pytest
from starlette.testclient import TestClient

from analysis.io import load_run
from analysis.live import LiveRun
from sim.cli import main
from sim.errors import RunInterrupted
from sim.run.control import RunControl
from sim.run.runner import resume_run, run_scenario
from sim.scenario.spec import RunConfig
from sim.view.app import ViewState, build_app
from sim.view.layout import node_groups, population

ROOT = Path(__file__).resolve().parents[1]
PD = ROOT / "scenarios" / "prisoners_dilemma.yaml"


@pytest.fixture(scope="module")
def pd_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scripted prisoner's dilemma with two replicas."""
    out = tmp_path_factory.mktemp("view-api")
    return run_scenario(PD, RunConfig(backend="scripted", out=out, seed=1, replicas=2)).path


@pytest.fixture(scope="module")
def client(pd_run: Path) -> TestClient:
    return TestClient(build_app(ViewState(pd_run)))


def test_meta_lists_every_committed_step(client: TestClient, pd_run: Path) -> None:
    meta = client.get("/api/meta").json()
    manifest = json.loads((pd_run / "manifest.json").read_text())
    assert meta["status"] == "complete" and meta["replicas"] == 2 and meta["agents"] == 16
    assert meta["committed"] == manifest["steps_completed"] == len(meta["steps"]) == 12
    # rounds 1 and 6 open with the chat stage (every: 5), so step 1 is the chat of round 1
    assert meta["steps"][0] == [1, 1, "chat"] and meta["steps"][1] == [2, 1, "play"]
    assert meta["control"] is None


def test_snapshot_is_each_agents_last_choice_and_score(client: TestClient,
                                                       pd_run: Path) -> None:
    events = load_run(pd_run).events.filter(pl.col("replica") == 1)
    step = 5
    last: dict[str, tuple[int, str, float]] = {}
    for row in events.filter(pl.col("kind") == "choice").iter_rows(named=True):
        if row["step"] <= step and row["step"] >= last.get(row["agent"], (0, "", 0.0))[0]:
            last[row["agent"]] = (row["step"], row["choice"], row["score"])
    snap = client.get(f"/api/snapshot?replica=1&step={step}").json()
    keys = [f"a{i:03d}" for i in range(16)]
    assert snap["choice"] == [last[k][1] for k in keys]
    assert snap["score"] == [last[k][2] for k in keys]
    assert sorted(a for g in snap["groups"] for a in g["agents"]) == keys  # pairs of 16


def test_aggregate_band_is_mean_and_range_over_replicas(client: TestClient,
                                                        pd_run: Path) -> None:
    events = load_run(pd_run).events.filter(pl.col("kind") == "choice")
    rates = []
    for replica in (0, 1):
        rows = [r for r in events.iter_rows(named=True) if r["replica"] == replica
                and r["round"] == 3]
        rates.append(sum(r["choice"] == "cooperate" for r in rows) / len(rows))
    panel = client.get("/api/aggregates").json()["panels"][0]
    assert panel["title"] == "choice rates: play"
    cooperate = next(s for s in panel["series"] if s["name"] == "cooperate")
    assert cooperate["points"][2] == pytest.approx(
        [3, sum(rates) / 2, min(rates), max(rates)])


def test_agent_card_has_the_stored_prompt_and_memory_at_the_step(
        client: TestClient, pd_run: Path) -> None:
    run = load_run(pd_run)
    row = run.events.filter((pl.col("replica") == 0) & (pl.col("agent") == "a002")
                            & (pl.col("step") == 4)).row(0, named=True)
    stored = run.prompts.filter(pl.col("prompt_hash") == row["prompt_hash"])["messages"][0]
    card = client.get("/api/agent?replica=0&agent=a002&step=4").json()
    assert card["prompts"][0]["messages"] == json.loads(stored)
    assert [c["step"] for c in card["choices"]] == [2, 3, 4]
    # steps 1..4: the chat of round 1, then the plays of rounds 1, 2 and 3
    moments = card["memory"]["moments"]
    assert card["memory"]["after_step"] == 4 and len(moments) == 4
    assert moments[0].startswith("Round 1 (chat)") and moments[3].startswith("Round 3 (play)")
    assert card["conditioning"] == "prompt" and card["persona"]["persona_model"] == "big_five"
    last = client.get("/api/agent?replica=0&agent=a002&step=12").json()
    assert len(last["memory"]["moments"]) == 12  # 10 plays and 2 chats
    assert last["memory"]["moments"][0].startswith("Round 1 (chat)")


def test_bad_queries_get_a_message_not_a_traceback(client: TestClient) -> None:
    bad = client.get("/api/snapshot?replica=0&step=x")
    assert bad.status_code == 400 and bad.json()["error"] == (
        "query parameter step='x': expected an integer")
    assert client.get("/api/agent?replica=0&agent=nobody&step=2").status_code == 400
    assert client.get("/api/transcript?replica=0&step=2").json()["error"] == (
        "query parameter group is missing")
    refused = client.post("/api/control", json={"action": "stop"})
    assert refused.status_code == 403 and "--view --control" in refused.json()["error"]


def test_page_puts_data_in_as_text_only(client: TestClient) -> None:
    page = client.get("/")
    scripts = re.findall(r'<script nonce="([^"]+)" src="(/static/[a-z]+\.js)"></script>',
                         page.text)
    csp = page.headers["content-security-policy"]
    assert len(scripts) == 5 and all(f"script-src 'nonce-{n}';" in csp for n, _ in scripts)
    assert "default-src 'none'" in csp and "style-src 'self';" in csp
    for text in [page.text, *(client.get(src).text for _, src in scripts),
                 client.get("/static/view.css").text]:
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text
        assert "document.write" not in text and "https://" not in text
        assert "<script>" not in text and " style=" not in text  # no inline code or style
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/nothing.js").status_code == 404


def test_live_reader_ignores_uncommitted_shards(pd_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(pd_run, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(steps_completed=3, status="running")
    (run / "manifest.json").write_text(json.dumps(manifest))
    live = LiveRun(run)  # shards 4..12 exist but the manifest has committed only 3
    assert live.committed == 3 and live.events["step"].max() == 3
    manifest["steps_completed"] = 5
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert live.refresh() and live.events["step"].max() == 5
    assert live.events.height == load_run(run).events.filter(pl.col("step") <= 5).height


def test_large_populations_are_drawn_as_groups() -> None:
    agents = pl.DataFrame({"replica": [0] * 6, "agent": [f"a{i:03d}" for i in range(6)],
                           "index": list(range(6)), "name": list("ABCDEF"),
                           "cohort": ["x", "x", "y", "y", "y", None], "role": [None] * 6,
                           "policy": [None] * 6, "backend": ["model"] * 6})
    network = pl.DataFrame({"replica": [0], "source": ["a000"], "target": ["a001"]})
    assert population(agents, network, 0, max_nodes=6)["mode"] == "agents"
    grouped = population(agents, network, 0, max_nodes=5)
    assert grouped["group_by"] == "cohort" and grouped["edges"] == []
    assert [(g["name"], g["members"]) for g in grouped["groups"]] == [
        ("x", [0, 1]), ("y", [2, 3, 4]), ("(no cohort)", [5])]
    by, labels = node_groups(agents.with_columns(cohort=pl.lit(None, pl.String)))
    assert by == "block" and labels[0] == "a000-a000" and len(set(labels)) == 6


def test_control_pauses_steps_and_stops_without_changing_records(tmp_path: Path) -> None:
    config = RunConfig(backend="scripted", out=tmp_path / "a", seed=3)
    plain = run_scenario(PD, config).path
    control = RunControl()
    control.pause()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            run_scenario(PD, config.model_copy(update={"out": tmp_path / "b"}), hooks=control)
        except BaseException as exc:  # the test inspects it
            failure.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    assert control.wait_until_waiting(30) == 1  # paused before the first step
    control.step()
    for _ in range(100):
        if control.state()["waiting_before"] == 2:
            break
        threading.Event().wait(0.05)
    assert control.state()["waiting_before"] == 2
    control.stop()
    thread.join(30)
    assert not thread.is_alive() and isinstance(failure[0], RunInterrupted)
    (watched,) = (tmp_path / "b").glob("*/*")
    manifest = json.loads((watched / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["steps_completed"] == 1
    assert resume_run(watched).status == "complete"
    a, b = load_run(plain), load_run(watched)
    for name in ("events", "agents", "network", "prompts"):
        assert getattr(a, name).drop("run_id").equals(getattr(b, name).drop("run_id")), name


def test_cli_refuses_bad_view_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    assert main(["view", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["view", str(tmp_path)]) == 2
    assert "is not a run directory (no manifest.json)" in capsys.readouterr().err
    assert main(["view", str(tmp_path), "--port", "70000"]) == 2
    assert "--port 70000: not a TCP port" in capsys.readouterr().err
    assert main(["run", str(PD), "--backend", "scripted", "--control"]) == 2
    assert "--control needs --view" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path), "--view"]) == 2
    assert "traitlab view RUN_DIR" in capsys.readouterr().err


def test_view_command_prints_its_address_serves_and_stops_on_ctrl_c(pd_run: Path) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys

    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from sim.cli import main; sys.exit(main())",
         "view", str(pd_run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the first line, printed before serving
        match = re.fullmatch(r"traitlab view: (http://127\.0\.0\.1:\d+/)  \(Ctrl-C to stop\)\n",
                             line)
        assert match, line
        for _ in range(100):  # uvicorn starts after the address is printed
            try:
                meta = httpx.get(match.group(1) + "api/meta", timeout=5).json()
                break
            except httpx.TransportError:
                threading.Event().wait(0.1)
        assert meta["committed"] == 12
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert proc.stderr is not None and proc.stderr.read() == "view stopped.\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
