"""The ``kind: survey`` stage: rounds, side channel, in_situ memory, replicas, resume, schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from analysis.io import load_run
from analysis.psychometrics import survey_scores
from sim.cli.main import main
from sim.errors import ScenarioError
from sim.records.checkpoint import checkpoint_steps, engine_state_at
from sim.run.runner import resume_run, run_scenario
from sim.scenario.loader import load_scenario, parse_scenario
from sim.scenario.spec import RunConfig
from tests.conftest import ROOT, SCENARIOS
from tests.support.faults import killed_runs

PD = SCENARIOS / "prisoners_dilemma.yaml"
PD_SURVEY = SCENARIOS / "pd_with_survey.yaml"
SEED = 5
_EVENT_SORT = ["replica", "round", "stage", "kind", "group", "turn", "agent"]
_SURVEY_SORT = ["replica", "step", "agent", "item_id", "order", "paraphrase", "repeat"]


def _events(run_dir: Path, *, drop_step: bool = True) -> pl.DataFrame:
    events = load_run(run_dir).events.drop("run_id")
    return (events.drop("step") if drop_step else events).sort(_EVENT_SORT)


def _surveys(run_dir: Path) -> pl.DataFrame:
    return load_run(run_dir).surveys.drop("run_id").sort(_SURVEY_SORT)


def _small(**survey: Any) -> dict[str, Any]:
    """A 3-round, 4-agent PD whose survey (mini-ipip, one order) runs before each move."""
    raw = yaml.safe_load(PD.read_text())
    raw.update(rounds=3, population={"size": 4})
    stage = {"id": "quiz", "kind": "survey", "instrument": "mini-ipip", "orders": ["asc"],
             **survey}
    raw["stages"] = [stage, *raw["stages"]]
    raw["flow"] = [{"from": "start", "to": "quiz"}, {"from": "quiz", "to": "chat", "every": 5},
                   {"from": "quiz", "to": "play"}, *raw["flow"][2:]]
    return raw


def _parse(raw: dict[str, Any]):
    return parse_scenario(yaml.safe_dump(raw, sort_keys=False), source="<test>")


def _run(raw: dict[str, Any], tmp_path: Path, instance: Any = None, **config: Any) -> Path:
    spec = _parse(raw).spec
    cfg = RunConfig(**{"backend": "scripted", "seed": SEED, "out": tmp_path, **config})
    return run_scenario(spec, cfg, backend=instance).path


@pytest.fixture(scope="module")
def pd_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shipped PD with and without its two surveys, same seed, scripted backend."""
    out = tmp_path_factory.mktemp("pd")
    return {name: run_scenario(path, RunConfig(backend="scripted", seed=SEED, out=out)).path
            for name, path in (("plain", PD), ("survey", PD_SURVEY))}


def test_surveys_happen_only_at_the_listed_rounds(pd_runs):
    surveys = load_run(pd_runs["survey"]).surveys
    by_stage = surveys.group_by("stage", "round", "mode").len().sort("round").rows()
    # 16 agents x 50 items x 2 option orders, at round 1 (intake) and round 10 (exit)
    assert by_stage == [("intake", 1, "isolated", 1600), ("exit", 10, "in_situ", 1600)]
    assert set(surveys["paraphrase"]) == {0, 1, 2}
    assert set(surveys["order"]) == {"asc", "desc"}
    assert surveys["expected"].is_not_null().all() and surveys["mass"].is_not_null().all()
    assert set(surveys["run_id"]) == {pd_runs["survey"].name}


def test_stage_without_rounds_runs_every_round_and_rounds_limit_it(tmp_path):
    every = load_run(_run(_small(), tmp_path)).surveys
    assert sorted(set(every["round"])) == [1, 2, 3]
    only = load_run(_run(_small(rounds=[2]), tmp_path)).surveys
    assert set(only["round"]) == {2} and only.height == 4 * 20


def test_the_survey_is_a_side_channel_events_are_unchanged(pd_runs):
    """Same seed: the events with the surveys are those without them (but for step numbers)."""
    plain, survey = _events(pd_runs["plain"]), _events(pd_runs["survey"])
    assert survey.filter(pl.col("stage").is_in(["intake", "exit"])).is_empty()
    assert_frame_equal(survey, plain)
    assert plain["text"].drop_nulls().len() > 0  # seeded generations were compared too
    checkpoints = [engine_state_at(pd_runs[k], checkpoint_steps(pd_runs[k])[-1])
                   for k in ("plain", "survey")]
    a, b = (c["replicas"][0]["agents"] for c in checkpoints)
    assert a == b  # memory, scores, last choices: nothing was fed back


def test_side_channel_on_the_tiny_model(tmp_path, tiny_model_path):
    """With a real (tiny random) model the answers vary, and the events still do not move."""
    from sim.backends.hf.backend import HFBackend

    backend = HFBackend(tiny_model_path, dtype="float32", threads=1)
    raw = _small(mode="in_situ", rounds=[2, 3])
    plain_raw = yaml.safe_load(PD.read_text())
    plain_raw.update(rounds=3, population={"size": 4})
    kw = {"backend": "hf", "model": str(tiny_model_path), "dtype": "float32"}
    with_survey = _run(raw, tmp_path / "a", backend, **kw)
    plain = _run(plain_raw, tmp_path / "b", backend, **kw)
    assert_frame_equal(_events(with_survey), _events(plain))
    surveys = load_run(with_survey).surveys
    assert surveys.height == 2 * 4 * 20 and surveys["entropy"].max() < 1.6094
    assert surveys["expected"].n_unique() > 1


def test_in_situ_rows_show_memory_and_isolated_rows_do_not(pd_runs):
    surveys = load_run(pd_runs["survey"]).surveys
    isolated = surveys.filter(mode="isolated")
    in_situ = surveys.filter(mode="in_situ")
    assert (isolated["context"] == "").all()
    assert in_situ["context"].str.starts_with("The game is over.").all()
    assert in_situ["context"].str.contains("\n\nWhat you remember:\nRound ", literal=True).all()
    assert in_situ["context"].str.contains("Round 10 (play)", literal=True).all()
    assert not in_situ["context"].str.contains("Round 5 (play)", literal=True).any()  # memory 5
    assert (in_situ["context"].str.count_matches("\n") == 7).all()  # 2 + heading + 5 moments


def test_scripted_agents_are_skipped_and_replicas_are_surveyed(tmp_path):
    raw = _small(rounds=[1])
    raw["population"]["cohorts"] = [{"name": "bots", "count": 1,
                                     "policy": {"name": "always", "option": "defect"}}]
    surveys = load_run(_run(raw, tmp_path, replicas=2)).surveys
    assert sorted(set(surveys["agent"])) == ["a001", "a002", "a003"]
    assert surveys.group_by("replica").len().sort("replica").rows() == [(0, 60), (1, 60)]


def test_a_population_of_scripted_agents_only_is_refused():
    raw = _small()
    raw["population"]["cohorts"] = [{"count": 4, "policy": {"name": "tit_for_tat"}}]
    with pytest.raises(ScenarioError) as info:
        _parse(raw)
    assert info.value.field == "stages.0.kind" and "no respondents" in str(info.value)


@pytest.mark.parametrize("survey,field,message", [
    ({"instrument": "ipip-5O"}, "stages.0.instrument", "did you mean 'ipip-50'"),
    ({"instrument": "bfi-44"}, "stages.0.instrument", "allow_restricted: true"),
    ({"allow_restricted": True}, "stages.0.allow_restricted", "is public domain"),
    ({"rounds": [1, 4]}, "stages.0.rounds.1", "beyond the scenario's 3 rounds"),
    ({"memory": 4}, "stages.0.memory", "only used with mode: in_situ"),
    ({"items": ["MINI01", "EXT1"]}, "stages.0.items.1", "not an item of mini-ipip"),
    ({"groups": {"by": "random_pairs"}}, "stages.0.groups", "it has no groups"),
    ({"prompt": "Round {round}, {partner.name}"}, "stages.0.prompt", "unknown template"),
    ({"orders": ["asc", "asc"]}, "stages.0.orders", "distinct"),
    ({"actors": ["teacher"]}, "stages.0.actors.0", "teacher"),
])
def test_bad_survey_fields_are_refused(survey, field, message):
    with pytest.raises(ScenarioError) as info:
        _parse(_small(**survey))
    assert info.value.field == field and message in str(info.value), str(info.value)
    assert info.value.fix


def test_restricted_instrument_with_opt_in_runs(tmp_path):
    surveys = load_run(_run(_small(instrument="bfi-44", allow_restricted=True, rounds=[1],
                                   items=["BFI01", "BFI02"]), tmp_path)).surveys
    assert set(surveys["instrument"]) == {"bfi-44"} and surveys.height == 4 * 2


def test_survey_scores_per_administration(pd_runs):
    scores = survey_scores(load_run(pd_runs["survey"]).surveys)
    assert scores.height == 2 * 16 * 5
    assert set(scores["stage"]) == {"intake", "exit"}
    # the scripted backend answers uniformly: every trait scores the scale midpoint
    assert (scores["score"] - 3.0).abs().max() < 1e-9
    assert set(scores["n_answers"]) == {20}


def test_manifest_notes_the_survey_file(pd_runs):
    manifest = load_run(pd_runs["survey"]).manifest
    assert manifest["surveys"] == {"dir": "surveys", "stages": ["intake", "exit"],
                                   "rows": 3200}
    assert "surveys" not in load_run(pd_runs["plain"]).manifest
    assert load_run(pd_runs["plain"]).surveys.is_empty()
    assert "expected" in load_run(pd_runs["plain"]).surveys.columns


def test_schema_covers_the_survey_stage(capsys):
    assert main(["schema"]) == 0
    schema = capsys.readouterr().out
    for key in ('"survey"', '"instrument"', '"allow_restricted"', '"in_situ"', '"isolated"',
                '"orders"', '"paraphrases"', '"repeats"', '"items"'):
        assert key in schema, key


# PD with surveys has 32 steps: intake (1), chat or play, ..., exit (32).
KILLS = {
    "after-shard:1": 0,        # intake rows written, no checkpoint: they must be redone once
    "after-checkpoint:1": 1,   # intake committed
    "in-wave:32": 31,          # inside the exit survey's wave
    "after-shard:32": 31,      # exit rows written, not committed
}


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("killed")
    return killed_runs(root, PD_SURVEY, KILLS, ["--seed", str(SEED), "--backend", "scripted"],
                       timeout=180)


@pytest.mark.parametrize("point", list(KILLS))
def test_resumed_run_has_the_same_survey_rows(point, killed, pd_runs):
    run_dir = killed[point]
    assert checkpoint_steps(run_dir)[-1] == KILLS[point]
    outcome = resume_run(run_dir)
    assert outcome.status == "complete" and outcome.steps == 32
    assert_frame_equal(_surveys(run_dir), _surveys(pd_runs["survey"]))
    assert_frame_equal(_events(run_dir, drop_step=False),
                       _events(pd_runs["survey"], drop_step=False))
    assert json.loads((run_dir / "manifest.json").read_text())["surveys"]["rows"] == 3200


def test_example_scenario_validates():
    spec = load_scenario(PD_SURVEY).spec
    assert [s.kind for s in spec.stages] == ["survey", "dialogue", "choice", "survey"]


def _two_round_survey_pd() -> dict[str, Any]:
    raw = yaml.safe_load(PD_SURVEY.read_text())
    raw.update(rounds=2, population={"size": 4})
    raw["stages"][-1]["rounds"] = [2]
    return raw


def test_sweep_cells_record_surveys_like_single_runs(tmp_path):
    """A cohort of cells (waves merged across cells) writes each cell's survey shards."""
    from analysis.io import load_sweep
    from sim.sweep.cohort import run_cohort

    raw = _two_round_survey_pd()
    jobs = [{"id": f"c{seed}", "params": {}, "seed": seed, "attempt": 1, "scenario": raw,
             "sweep": "s.yaml", "sweep_name": "s"} for seed in (1, 2)]
    out = run_cohort(jobs, {"backend": "scripted"}, str(tmp_path / "st"), str(tmp_path / "sw"),
                     node="local")
    assert all(r["status"] == "complete" for r in out.values())
    for seed in (1, 2):
        single = _run(raw, tmp_path / f"single{seed}", seed=seed)
        cell = _surveys(tmp_path / "sw" / f"c{seed}")
        assert cell.height == 2 * 4 * 100
        assert_frame_equal(cell, _surveys(single))
    swept = load_sweep(tmp_path / "sw").surveys
    assert swept.group_by("cell_id").len().sort("cell_id").rows() == [("c1", 800), ("c2", 800)]


@pytest.mark.ray
def test_ray_executor_runs_the_survey_like_the_local_one(tmp_path):
    from sim.executors.ray import RayExecutor, init_ray, shutdown_ray

    raw = _two_round_survey_pd()
    spec = _parse(raw).spec
    config = RunConfig(backend="scripted", seed=SEED, out=tmp_path, replicas=2)
    init_ray(None, num_cpus=2)
    try:
        executor = RayExecutor.start(config, replicas=2)
        try:
            remote = run_scenario(spec, config, executor=executor).path
        finally:
            executor.close()
    finally:
        shutdown_ray()
    local = run_scenario(spec, config).path
    assert_frame_equal(_surveys(remote), _surveys(local))
    assert _surveys(remote).height == 2 * 2 * 4 * 100


def test_resumed_tiny_model_run_has_the_same_survey_rows(tmp_path, tiny_model_path):
    """SIGKILL after the survey rows of step 1 were written but not committed; resume."""
    from sim.backends.hf.backend import HFBackend

    scenario = tmp_path / "small.yaml"
    scenario.write_text(yaml.safe_dump(_small(mode="in_situ", rounds=[1, 2]), sort_keys=False))
    args = ["--backend", "hf", "--model", str(tiny_model_path), "--dtype", "float32",
            "--steps", "4", "--seed", str(SEED), "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "tests.support.faults", "kill", "after-shard:1",
                           "run", str(scenario), *args, "--out", str(tmp_path / "killed")],
                          cwd=ROOT, env=env,
                          capture_output=True, timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    (run_dir,) = (tmp_path / "killed" / "prisoners-dilemma").iterdir()
    (shard,) = (run_dir / "surveys").glob("step-*.parquet")  # written, not committed
    assert pl.read_parquet(shard).height == 4 * 20
    backend = HFBackend(tiny_model_path, dtype="float32", threads=1)
    assert resume_run(run_dir, backend=backend).status == "complete"
    config = {"backend": "hf", "model": str(tiny_model_path), "dtype": "float32", "steps": 4}
    reference = _run(_small(mode="in_situ", rounds=[1, 2]), tmp_path / "ref", backend,
                     **config)
    resumed, expected = _surveys(run_dir), _surveys(reference)
    assert resumed.height == expected.height == 2 * 4 * 20
    assert_frame_equal(resumed, expected)
    assert_frame_equal(_events(run_dir, drop_step=False), _events(reference, drop_step=False))


def test_actors_limit_the_survey_to_a_role(tmp_path):
    raw = _small(rounds=[1], actors=["seller"])
    raw["roles"] = [{"name": "buyer", "count": 2}, {"name": "seller", "count": 2}]
    run = load_run(_run(raw, tmp_path))
    sellers = run.agents.filter(role="seller")["agent"].to_list()
    assert sorted(set(run.surveys["agent"])) == sorted(sellers) and len(sellers) == 2
