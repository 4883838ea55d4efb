"""``scenarios/interventions/commons_quota.yaml`` on scripted commons fleets (run --intervene)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import yaml

from analysis.interventions import intervention_shifts
from analysis.io import load_run
from sim.cli.main import main
from tests.conftest import SCENARIOS

QUOTA = SCENARIOS / "interventions" / "commons_quota.yaml"


def _sustainable_commons(tmp_path: Path) -> Path:
    raw: dict[str, Any] = yaml.safe_load((SCENARIOS / "commons.yaml").read_text())
    raw["population"]["cohorts"] = [{"count": 5, "policy": {"name": "sustainable"}}]
    path = tmp_path / "commons.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_the_quota_fires_in_month_five_and_halves_catches_by_hand(tmp_path: Path, capsys):
    """Sustainable fishers take the largest offered level at or below half the highest.

    Months 1-4: offers 0..min(20, 100 / 5) = 0..20, each takes 10 (lake 100 - 50 doubles back
    to 100). From month 5 the quota caps the offers at 0..8: each takes 4 (100 - 20 = 80,
    doubled to the capacity 100). Mean catch per month: 10 before, 4 after: -6.
    """
    args = ["run", str(_sustainable_commons(tmp_path)), "--backend", "scripted", "--quiet",
            "--out", str(tmp_path / "runs"), "--intervene", str(QUOTA)]
    assert main(args) == 0
    run = load_run(Path(capsys.readouterr().out.strip()))
    rows = run.events.filter(pl.col("kind") == "intervention")
    assert rows.select("round", "stage", "intervention").rows() == [(5, "talk", "quota")]
    assert rows["text"].item() == ("From now on nobody may catch more than 8 tonnes a month. "
                                   "The lake holds 100 tonnes.")
    assert [i["id"] for i in run.scenario["interventions"]] == ["quota"]
    fish = run.events.filter(pl.col("stage") == "fish", pl.col("kind") == "choice")
    per_month = fish.group_by("run_id", "replica", "round").agg(value=pl.col("value").mean())
    assert per_month.sort("round")["value"].to_list() == [10.0] * 4 + [4.0] * 8
    shifts = intervention_shifts(per_month, run.events)
    assert shifts.select("intervention", "round", "before", "after", "difference",
                         "n_before", "n_after").rows() == [("quota", 5, 10.0, 4.0, -6.0, 4, 8)]


def test_run_refuses_an_intervention_without_a_trigger(tmp_path: Path, capsys):
    bad = tmp_path / "now.yaml"
    bad.write_text("interventions:\n  - id: now\n    set: {params.quota: 8}\n")
    assert main(["run", str(SCENARIOS / "commons.yaml"), "--backend", "scripted",
                 "--out", str(tmp_path), "--intervene", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "now.yaml" in err and err.startswith("error: ")


def test_an_unknown_key_in_an_interventions_file_names_the_keys_of_that_file(
        tmp_path: Path, capsys: Any) -> None:
    # A scenario given where the interventions file belongs: the fix lists what such a file
    # holds, not the scenario's own keys.
    bad = tmp_path / "typo.yaml"
    bad.write_text("interventions:\n  - {id: q, at: {round: 2}, announce: hi}\nstages: []\n")
    assert main(["run", str(SCENARIOS / "commons.yaml"), "--backend", "scripted",
                 "--out", str(tmp_path / "runs"), "--intervene", str(bad)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {bad}:3:1: field 'stages': unknown key 'stages'. Fix: allowed keys here: "
        "interventions."]
    assert not (tmp_path / "runs").exists()
