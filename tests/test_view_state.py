"""World state and interventions in the view's API, and interventions applied from the control.

The commons fleet (:mod:`tests.support.commons_fleet`: three greedy and two sustainable
scripted fishers) gives hand-computed values: the lake after months 1-4 is 40, 16, 10, 4.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import polars as pl
import pytest
from starlette.testclient import TestClient

from agents.memory import Moment
from analysis.io import load_run
from sim.errors import RunInterrupted
from sim.records.checkpoint import engine_state_at
from sim.run.control import RunControl
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig
from sim.view.app import ViewState, build_app
from tests.support.commons_fleet import QUOTA, commons_fleet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two replicas of the fleet, no intervention fired (it is declared for month 12)."""
    tmp = tmp_path_factory.mktemp("view-state")
    config = RunConfig(backend="scripted", out=tmp, seed=0, replicas=2)
    return run_scenario(commons_fleet(tmp), config).path


@pytest.fixture(scope="module")
def client(fleet: Path) -> TestClient:
    return TestClient(build_app(ViewState(fleet)))


def test_lake_and_wealth_are_per_round_panels(client: TestClient) -> None:
    agg = client.get("/api/aggregates").json()
    panels = {p["title"]: p for p in agg["panels"]}
    lake = panels["state: lake"]["series"][0]["points"]
    assert lake == [[1, 40, 40, 40], [2, 16, 16, 16], [3, 10, 10, 10], [4, 4, 4, 4]]
    # catches per month: greedy 20, 8, 3, 2 and sustainable 10, 4, 1, 1; mean over the five:
    # 80 / 5, then + 32 / 5, + 11 / 5, + 8 / 5
    wealth = panels["state: wealth (mean over agents)"]["series"][0]["points"]
    assert [p[1] for p in wealth] == pytest.approx([16, 22.4, 24.6, 26.2])
    # catches 0..20 are drawn as their mean, not as 21 choice rates: (3 * 20 + 2 * 10) / 5
    assert panels["mean choice: fish"]["series"][0]["points"][0] == [1, 16, 16, 16]
    assert {v["name"]: (v["scope"], v["lo"], v["hi"]) for v in agg["variables"]} == {
        "lake": ("global", 0, 100), "wealth": ("agent", 0, 33)}  # declared, else seen
    assert agg["interventions"] == []


def test_snapshot_and_card_show_state_at_the_step(client: TestClient) -> None:
    snap = client.get("/api/snapshot?replica=1&step=4").json()  # after month 2's catch
    assert snap["world"] == {"lake": 16}
    assert snap["state"] == {"wealth": [28, 28, 28, 14, 14]}
    card = client.get("/api/agent?replica=1&agent=a003&step=4").json()
    assert card["state"] == {"wealth": [[1, 1, 0], [2, 1, 10], [3, 2, 10], [4, 2, 14]]}


def test_memory_at_any_step_is_that_of_a_run_stopped_there(client: TestClient, fleet: Path,
                                                           tmp_path: Path) -> None:
    config = RunConfig(backend="scripted", out=tmp_path, seed=0, replicas=2, steps=3)
    stopped = run_scenario(commons_fleet(tmp_path), config).path
    final = engine_state_at(stopped, 3)["replicas"][1]["agents"][3]["memory"]["moments"]
    card = client.get("/api/agent?replica=1&agent=a003&step=3").json()
    assert card["memory"]["after_step"] == 3
    assert card["memory"]["moments"] == [Moment.from_dict(m).render() for m in final]
    assert card["memory"]["moments"][1].startswith("Round 1 (fish)")
    later = client.get("/api/agent?replica=1&agent=a003&step=6").json()["memory"]
    assert len(later["moments"]) == 6 and later["moments"][:3] == card["memory"]["moments"]


def _run_with(control: RunControl, scenario: Path, out: Path) -> threading.Thread:
    def work() -> None:
        with contextlib.suppress(RunInterrupted):  # a stopped run: the test reads its manifest
            run_scenario(scenario, RunConfig(backend="scripted", out=out, seed=0),
                         hooks=control)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_control_applies_a_declared_intervention_at_the_next_step(tmp_path: Path) -> None:
    """Quota 2 before month 2: lake 40, then greedy 2 and sustainable 1 each,
    2 * (40 - 8) = 64, then 2 * (64 - 8) = 112 -> 100, and 100 from then on."""
    control = RunControl(paused=True)
    thread = _run_with(control, commons_fleet(tmp_path), tmp_path / "live")
    assert control.wait_until_waiting(30) == 1
    control.step()
    control.step()
    for _ in range(200):
        if control.state()["waiting_before"] == 3:
            break
        threading.Event().wait(0.05)
    with pytest.raises(ValueError, match="unknown intervention 'nope'; the scenario's: quota"):
        control.apply("intervene", "nope")
    assert control.apply("intervene", "quota")["queued"] == ["quota"]
    control.resume()
    thread.join(60)
    assert not thread.is_alive()
    assert control.state()["applied"] == [{"id": "quota", "step": 3}]
    (live,) = (tmp_path / "live").glob("*/*")
    run = load_run(live)
    rows = run.events.filter(pl.col("kind") == "intervention")
    assert rows.select("step", "round", "stage", "intervention", "text").rows() == [
        (3, 2, "talk", "quota", QUOTA)]
    lake = run.state.filter(pl.col("name") == "lake", pl.col("stage") == "fish").sort("step")
    assert lake["value"].to_list() == [40, 64] + [100] * 10
    # the same as the quota declared for month 2 (its first step is step 3)
    scheduled = load_run(run_scenario(commons_fleet(tmp_path, at_round=2), RunConfig(
        backend="scripted", out=tmp_path / "scheduled", seed=0)).path)
    assert scheduled.events.drop("run_id").equals(run.events.drop("run_id"))
    listed = TestClient(build_app(ViewState(live))).get("/api/aggregates").json()
    assert listed["interventions"] == [{"replica": 0, "step": 3, "round": 2, "stage": "talk",
                                        "id": "quota", "text": QUOTA}]


def test_control_endpoint_takes_an_intervention_by_id(fleet: Path) -> None:
    control = RunControl()
    client = TestClient(build_app(ViewState(fleet, control)))
    refused = client.post("/api/control", json={"action": "intervene", "intervention": "x"})
    assert refused.status_code == 400 and "not built its engine yet" in refused.json()["error"]
    assert client.get("/api/control").json()["interventions"] == []
    unknown = client.post("/api/control", json={"action": "vote"})
    assert unknown.status_code == 400 and "unknown control action 'vote'" in (
        unknown.json()["error"])


def test_an_intervention_queued_when_the_run_stops_is_dropped(tmp_path: Path) -> None:
    control = RunControl(paused=True)
    thread = _run_with(control, commons_fleet(tmp_path), tmp_path / "live")
    assert control.wait_until_waiting(30) == 1
    control.apply("intervene", "quota")
    control.stop()
    thread.join(30)
    assert not thread.is_alive() and control.state()["applied"] == []
    with pytest.raises(ValueError, match="the run is stopping"):
        control.apply("intervene", "quota")
    (live,) = (tmp_path / "live").glob("*/*")
    run = load_run(live)
    assert run.manifest["status"] == "interrupted" and run.events.height == 0
