"""An intervention's ``announce`` with world-state and param fields, filled after its ``set``.

The tiny commons of ``tests/data/commons_interventions.yaml`` (its trajectory is computed by
hand in ``tests/test_interventions.py``): at the start of round 3 the lake is 18, the
restock sets it to 18 + 12 = 30 and the cap to 16; the regime is ``closed`` since round 2
left 18 < 20 tonnes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from analysis.io import load_run
from sim.cli.main import main
from sim.errors import ScenarioError
from sim.run.runner import run_scenario
from sim.scenario.interventions import load_interventions
from sim.scenario.loader import load_scenario
from sim.scenario.spec import RunConfig
from tests.conftest import SCENARIOS

DATA = Path(__file__).parent / "data"
TEMPLATE = ("The lake holds {state.lake} tonnes ({state.regime}); the cap is {params.cap} "
            "from round {round} of {rounds} for {n_agents} fishers. {{Literal}} braces.")
RENDERED = ("The lake holds 30 tonnes (closed); the cap is 16 from round 3 of 10 for 3 "
            "fishers. {Literal} braces.")


def _commons(tmp_path: Path, announce: str) -> Path:
    raw: dict[str, Any] = yaml.safe_load((DATA / "commons_interventions.yaml").read_text())
    raw["interventions"][0]["announce"] = announce
    path = tmp_path / "commons.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_the_fields_are_filled_after_the_set_in_the_event_and_the_memory(tmp_path: Path):
    run = load_run(run_scenario(_commons(tmp_path, TEMPLATE), RunConfig(
        backend="scripted", seed=0, out=tmp_path / "runs")).path)
    rows = run.events.filter(pl.col("kind") == "intervention")
    assert rows["text"].to_list() == [RENDERED]
    # agent 0 alone hears it: its round-3 prompt shows the rendered text in its memory
    prompts = run.prompts.join(run.events.filter(pl.col("kind") == "choice").select(
        "prompt_hash", "agent", "round"), on="prompt_hash")
    shown = {(r["agent"], r["round"]) for r in prompts.iter_rows(named=True)
             if f'announced "{RENDERED}"' in json.loads(r["messages"])[-1]["content"]}
    assert shown == {("a000", 3), ("a000", 4)}
    assert not any("{state.lake}" in json.loads(m)[-1]["content"]
                   for m in run.prompts["messages"])


def test_the_commons_quota_announces_the_lake_after_month_four(tmp_path: Path, capsys):
    """One greedy and four sustainable fishers (h = floor(lake / 5), greedy h, sustainable
    floor(h / 2)): 100 -> 2 * (100 - 60) = 80 -> 2 * (80 - 48) = 64 -> 2 * (64 - 36) = 56
    -> 2 * (56 - 31) = 50 after month 4; the quota is set to 8 before the text is filled."""
    raw: dict[str, Any] = yaml.safe_load((SCENARIOS / "commons.yaml").read_text())
    raw["population"]["cohorts"] = [{"count": 1, "policy": {"name": "greedy"}},
                                    {"count": 4, "policy": {"name": "sustainable"}}]
    path = tmp_path / "commons.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main(["run", str(path), "--backend", "scripted", "--quiet", "--out",
                 str(tmp_path / "runs"), "--intervene",
                 str(SCENARIOS / "interventions" / "commons_quota.yaml")]) == 0
    run = load_run(Path(capsys.readouterr().out.strip()))
    lake = run.state.filter(pl.col("name") == "lake", pl.col("stage") == "fish")
    assert lake.sort("step")["value"].to_list()[:4] == [80.0, 64.0, 56.0, 50.0]
    assert run.events.filter(pl.col("kind") == "intervention")["text"].to_list() == [
        "From now on nobody may catch more than 8 tonnes a month. The lake holds 50 tonnes."]


@pytest.mark.parametrize(("announce", "message", "fix"), [
    ("The lake holds {state.lak} tonnes.", r"unknown template field \{state\.lak\}; allowed: "
     r"\{round\}, \{rounds\}, \{n_agents\}, \{state\.lake\}, \{state\.regime\}, \{params\.cap\}",
     "write a literal brace as {{ or }}"),
    ("You have {my.state.wealth}.", r"unknown template field \{my\.state\.wealth\}",
     "per-agent values belong in a stage prompt"),
    ("Hello {name}.", r"unknown template field \{name\}", "one text for everyone"),
    ("A brace { alone.", r"malformed template", "write a literal brace as {{ or }}"),
    ("The cap is {params.cap:>5}.", r"may not use '!' or ':' modifiers", "listed fields"),
])
def test_unknown_fields_are_refused_with_file_line_field_and_fix(
        tmp_path: Path, announce: str, message: str, fix: str):
    path = _commons(tmp_path, announce)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if text.lstrip().startswith("announce:"))
    with pytest.raises(ScenarioError, match=message) as caught:
        load_scenario(path)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(path), line,
                                                     "interventions.0.announce")
    assert error.value == announce and fix in str(error)


def test_a_file_given_to_a_run_is_checked_the_same_way(tmp_path: Path):
    spec = load_scenario(DATA / "commons_interventions.yaml").spec
    extra = tmp_path / "extra.yaml"
    extra.write_text("interventions:\n  - id: note\n    at: {round: 2}\n"
                     "    announce: 'Stock: {state.lake} ({state.fish}).'\n")
    with pytest.raises(ScenarioError, match=r"extra\.yaml:4.*\{state\.fish\}"):
        load_interventions(extra, spec)
    extra.write_text("interventions:\n  - id: note\n    at: {round: 2}\n"
                     "    announce: 'Stock: {state.lake}, cap {params.cap}.'\n")
    assert [i.id for i in load_interventions(extra, spec)] == ["note"]
