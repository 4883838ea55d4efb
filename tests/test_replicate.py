"""`traitlab replicate`: sourced references, the scorer's verdicts, resume and determinism."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from analysis.replicate import classify, direction_effect, score_suite, stat_rows
from sim.cli.main import main
from sim.errors import ScenarioError
from sim.scenario.spec import RunConfig
from sim.sweep.replicate import SUITE_FILE, run_suite
from sim.sweep.suite import SUITE_DIR, StatSpec, cell_scenario, load_suite

FAST = ["ultimatum", "dictator", "prisoners_dilemma", "beauty_contest"]


def test_every_benchmark_has_sourced_references():
    suite = load_suite()
    names = {b.name for b in suite.benchmarks}
    assert names == {"ultimatum", "dictator", "trust", "public_goods", "prisoners_dilemma",
                     "beauty_contest"}
    for bench in suite.benchmarks:
        assert bench.levels and bench.directions, bench.name
        for item in [*bench.levels, *bench.directions, *bench.traits]:
            assert item.source.citation.strip() and item.source.where.strip(), item.id
            assert any(ch.isdigit() for ch in item.source.citation), item.id  # a year
            if not item.source.verified:
                assert item.source.note.strip(), f"{item.id}: say what could be found"
        for level in bench.levels:
            assert level.human.low <= level.human.value <= level.human.high, level.id
    measurement = (SUITE_DIR.parents[1] / "docs" / "measurement.md").read_text()
    for bench in suite.benchmarks:
        for item in [*bench.levels, *bench.directions]:
            first_author = item.source.citation.split()[0].rstrip(",")
            assert first_author in measurement, f"{item.id}: cite {first_author} in the docs"


def test_every_cell_scenario_validates_with_each_population():
    suite = load_suite()
    for cid, (path, cell) in suite.cells.items():
        for policies in (None, "human", "contrary"):
            raw = cell_scenario(path, cell, policies)
            if policies is not None:
                assert raw["population"]["cohorts"], cid


def test_removed_stage_is_bridged_in_the_flow():
    suite = load_suite()
    raw = cell_scenario(*suite.cells["pg"])
    assert [s["id"] for s in raw["stages"]] == ["contribute"]
    assert {(e["from"], e["to"]) for e in raw["flow"]} == {("start", "contribute"),
                                                           ("contribute", "end")}


def test_unknown_benchmark_is_refused_with_the_names():
    with pytest.raises(ScenarioError, match="use one or more of"):
        load_suite().select(["ultimatm"])


def test_bad_benchmark_file_names_file_and_field(tmp_path):
    (tmp_path / "x.yaml").write_text("name: x\ntitle: X\nlevels: []\ndirections: []\n")
    with pytest.raises(ScenarioError) as info:
        load_suite(tmp_path)
    assert info.value.file == str(tmp_path / "x.yaml") and info.value.field == "levels"


# ------------------------------------------------------------------------- the statistics
def _events(rows: list[dict]) -> pl.DataFrame:
    base = {"kind": "choice", "status": "ok", "round": 1, "group": "g0", "agent": "a",
            "choice": None, "value": None}
    return pl.DataFrame([{**base, **r} for r in rows])


def test_partner_filter_keeps_answers_to_low_offers():
    events = _events([
        {"replica": 0, "stage": "offer", "group": "g0", "value": 1.0},
        {"replica": 0, "stage": "respond", "group": "g0", "choice": "reject", "value": 0.0},
        {"replica": 0, "stage": "offer", "group": "g1", "value": 5.0},
        {"replica": 0, "stage": "respond", "group": "g1", "choice": "accept", "value": 1.0},
    ])
    stat = StatSpec.model_validate({"stage": "respond", "measure": "share", "option": "reject",
                                    "partner": {"stage": "offer", "max": 1}})
    assert stat_rows(events, stat)["x"].to_list() == [1.0]
    stat = StatSpec.model_validate({"stage": "respond", "measure": "share", "option": "reject",
                                    "partner": {"stage": "offer", "min": 4}})
    assert stat_rows(events, stat)["x"].to_list() == [0.0]


@pytest.mark.parametrize(("low", "high", "sign", "verdict"), [
    (0.1, 0.3, "positive", "reproduced"), (0.1, 0.3, "negative", "reversed"),
    (-0.3, -0.1, "negative", "reproduced"), (-0.1, 0.2, "positive", "not distinguishable"),
    (0.0, 0.2, "positive", "not distinguishable"), (float("nan"), 0.2, "positive", "no interval"),
])
def test_classification(low, high, sign, verdict):
    assert classify(low, high, sign) == verdict


def test_direction_effect_pools_rows_and_pairs_replicas():
    # replica 0: a = 1/2, b = 1; replica 1: a = 0, b = 1/2 -> b - a = 3/4 - 1/4 = 1/2
    a = pl.DataFrame({"replica": [0, 0, 1, 1], "agent": ["x"] * 4, "x": [1.0, 0.0, 0.0, 0.0]})
    b = pl.DataFrame({"replica": [0, 0, 1, 1], "agent": ["x"] * 4, "x": [1.0, 1.0, 1.0, 0.0]})
    est, lo, hi = direction_effect(a, b, np.random.default_rng(0), paired=True)
    assert est == pytest.approx(0.5)
    assert 0.0 < lo <= 0.5 <= hi <= 1.0  # every paired draw lies in [1/2, 1/2 +- 1/4]
    est1, lo1, hi1 = direction_effect(a.filter(pl.col("replica") == 0),
                                      b.filter(pl.col("replica") == 0),
                                      np.random.default_rng(0), paired=True)
    assert est1 == pytest.approx(0.5) and np.isnan(lo1) and np.isnan(hi1)


# ----------------------------------------------------------- the scorer tells them apart
@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    suite = load_suite().select(FAST)
    cards = {}
    for policies in ("human", "contrary"):
        out = tmp_path_factory.mktemp(policies)
        run_suite(suite, RunConfig(backend="scripted", replicas=2, seed=0), out,
                  policies=policies)
        cards[policies] = (out, score_suite(out, suite, seed=0))
    return suite, cards


def test_policies_built_to_match_reproduce_every_direction(scored):
    _, cards = scored
    card = cards["human"][1]
    assert set(card.directions["verdict"]) == {"reproduced"}
    assert set(card.levels["verdict"]) == {"within"}


def test_policies_built_to_contradict_reverse_every_direction(scored):
    _, cards = scored
    assert set(cards["contrary"][1].directions["verdict"]) == {"reversed"}


def test_scripted_levels_are_the_designed_values(scored):
    card = scored[1]["human"][1]
    got = dict(zip(card.levels["level"], card.levels["model"], strict=True))
    # offers 5 (9 agents) and 1 (3 agents): 48 / 12 / 10; dictators give 3 of 10;
    # 8 of 16 cooperate; level-1 from 50: 2/3 * 50 = 33.3, nearest even level 34
    assert got["mean_offer"] == pytest.approx(0.4)
    assert got["mean_gift"] == pytest.approx(0.3)
    assert got["cooperation_rate"] == pytest.approx(0.5)
    assert got["first_round_guess"] == pytest.approx(0.34)


def test_rerun_reprints_the_same_scorecard_and_runs_nothing(scored):
    suite, cards = scored
    out, card = cards["human"]
    before = json.loads((out / SUITE_FILE).read_text())
    again = run_suite(suite, RunConfig(backend="scripted", replicas=2, seed=0), out,
                      policies="human")
    assert again.manifest["wall_s"] == before["wall_s"]  # nothing ran
    assert score_suite(out, suite, seed=0).to_json() == card.to_json()


def test_other_settings_in_the_folder_are_refused(scored):
    from sim.errors import RunError

    suite, cards = scored
    with pytest.raises(RunError, match="other settings"):
        run_suite(suite, RunConfig(backend="scripted", replicas=3, seed=0),
                  cards["human"][0], policies="human")


def test_killed_suite_resumes_to_the_same_scorecard(tmp_path, monkeypatch, scored):
    """Killed inside the cohort: finished cells are kept, the rest continue; same scorecard."""
    from sim.engine import loop

    suite = load_suite().select(["dictator"])  # reads the ultimatum and dictator cells
    original = loop.drive_engines
    calls = {"n": 0}

    def drive_or_kill(engines, executor):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(engines, executor)

    monkeypatch.setattr("sim.sweep.cohort.drive_engines", drive_or_kill)
    config = RunConfig(backend="scripted", replicas=2, seed=0)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, config, tmp_path / "s", policies="human")
    monkeypatch.undo()
    assert not (tmp_path / "s" / "cells" / "dictator").exists()
    run_suite(suite, config, tmp_path / "s", policies="human")
    run_suite(suite, config, tmp_path / "fresh", policies="human")
    assert (score_suite(tmp_path / "s", suite).to_json()
            == score_suite(tmp_path / "fresh", suite).to_json())


def test_cli_prints_escaped_scorecard_and_writes_html(tmp_path, capsys):
    html = tmp_path / "card.html"
    code = main(["replicate", "--backend", "scripted", "--policies", "human", "--only",
                 "dictator", "--replicas", "2", "--out", str(tmp_path / "s"),
                 "--html", str(html)])
    out = capsys.readouterr().out
    assert code == 0 and "reproduced" in out
    assert "1/1 levels within the human range; 1/1 directions reproduced, 0 reversed" in out
    page = html.read_text()
    assert "<script" in page and "Engel (2011)" in page and "http" not in page.split(
        "<script>")[0]
    assert json.loads((tmp_path / "s" / "scorecard.json").read_text())["directions"]


def test_cli_refuses_policies_on_a_model(capsys):
    assert main(["replicate", "--policies", "human"]) == 2
    assert "--backend scripted" in capsys.readouterr().err


def test_norm_personas_are_sampled_around_human_norms(tmp_path):
    from sim.sweep.suite import HUMAN_NORMS

    suite = load_suite().select(["dictator"])
    path, cell = suite.cells["dictator"]
    raw = cell_scenario(path, cell, None, "norms")
    assert raw["population"]["personality"]["sample"] == "normal"
    # Johnson's IPIP-NEO-120 agreeableness, (3.69 - 1) / 4, and neuroticism, (2.86 - 1) / 4
    assert raw["population"]["personality"]["mean"]["agreeableness"] == pytest.approx(0.673)
    assert HUMAN_NORMS["neuroticism"] == pytest.approx((2.862 - 1) / 4, abs=1e-3)
    assert cell_scenario(path, cell, None)["population"]["personality"]["sample"] == "uniform"
    result = run_suite(suite, RunConfig(backend="scripted", replicas=4, seed=0),
                       tmp_path / "norms", personas="norms")
    agents = pl.concat([pl.read_parquet(p) for p in (result.path / "cells").rglob(
        "agents.parquet")])
    for trait, mean in HUMAN_NORMS.items():  # 4 replicas of two 12-agent cells, sd 0.15
        assert abs(agents[trait].mean() - mean) < 0.06, trait
    from sim.errors import RunError

    with pytest.raises(RunError, match="personas"):
        run_suite(suite, RunConfig(backend="scripted", replicas=4, seed=0),
                  tmp_path / "norms")
