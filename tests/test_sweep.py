"""Sweeps: file validation before anything runs, expansion, the runner on local Ray, load_sweep.

Runner tests use the scripted backend (and the tiny random model for batching) on one local
Ray runtime per module; the two-node cluster and the killed-worker tests are in
tests/test_ray_sweep.py (slow).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from analysis.io import load_run, load_sweep
from sim.cli.main import main
from sim.errors import RunError, ScenarioError
from sim.records.checkpoint import checkpoint_steps, engine_state_at
from sim.sweep.spec import apply_overrides, expand, load_sweep_spec

ROOT = Path(__file__).resolve().parents[1]
PAIR = ROOT / "bench" / "pd_pair.yaml"


def write_sweep(tmp_path: Path, body: str, name: str = "sweep.yaml") -> Path:
    shutil.copy(PAIR, tmp_path / "pd_pair.yaml")
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


GOOD = """
    name: test-sweep
    scenario: pd_pair.yaml
    seeds: [0, 1]
    vary:
      - grid:
          population.personality.mean.agreeableness: [0.2, 0.8]
    run: {backend: scripted}
    max_retries: 1
    threads: 1
"""


# --- validation: every error names file, line, field, value and fix, before anything runs ---

@pytest.mark.parametrize(("body", "line", "field", "pattern"), [
    ("""
     name: s
     scenario: pd_pair.yaml
     vary:
       - grid:
           population.personality.mean.agreableness: [0.2]
     """, 5, "population.personality.mean.agreableness",
     r"unknown field 'agreableness' in population\.personality\.mean\. "
     r"Fix: did you mean 'agreeableness'\?"),
    ("""
     name: s
     scenario: pd_pair.yaml
     vary:
       - zip:
           stages.7.memory: [1]
     """, 5, "stages.7.memory", r"stages has 2 entries in the base scenario; index 7"),
    ("""
     name: s
     scenario: pd_pair.yaml
     vary:
       - grid:
           rounds.count: [1]
     """, 5, "rounds.count", r"rounds is a single value; it has no field 'count'"),
    ("""
     name: s
     scenario: pd_pair.yaml
     vary:
       - grid:
           population.personality.mean.agreeableness: [0.2,
             1.5]
     """, 6, "population.personality.mean.agreeableness",
     r"agreeableness': should be less than or equal to 1, got 1\.5 \(cell c001-\w+\)\. "
     r"Fix: use a value less than or equal to 1"),
    ("""
     name: s
     scenario: pd_pair.yaml
     vary:
       - grid:
           rounds: [2, three]
     """, 5, "rounds", r"should be a valid integer, got 'three' \(cell c001-\w+\)"),
    ("""
     name: s
     scenario: pd_pair.yaml
     vary:
       - grid:
           stages.1.decision: [argmax, greedy]
     """, 5, "stages.1.decision", r"'greedy'.*Fix: use one of 'sample' or 'argmax'"),
    ("""
     name: s
     scenario: pd_pair.yaml
     vary:
       - grid:
           rounds: []
     """, 5, "vary.0.grid.rounds", r"empty list of values: this sweeps over nothing\. Fix:"),
    ("""
     name: s
     scenario: pd_pair.yaml
     vary:
       - grid: {}
     """, 4, "vary.0.grid", r"empty mapping"),
    ("""
     name: s
     scenario: pd_pair.yaml
     vary:
       - zip:
           rounds: [1, 2]
           stages.0.turns: [1]
     """, 5, "vary.0.zip", r"zip lists differ in length"),
    ("""
     name: s
     scenario: pd_pair.yaml
     seedz: [1]
     """, 3, "seedz", r"unknown key 'seedz'\. Fix: did you mean 'seeds'\?"),
    ("""
     name: s
     scenario: pd_pair.yaml
     run: {seed: 3}
     """, 3, "run.seed", r"'seed' cannot be set per sweep\. Fix: list seeds under 'seeds'"),
    ("""
     name: s
     scenario: pd_pair.yaml
     run:
       backend: openai
     """, 4, "run", r"needs the server's address: api.base_url"),
    ("""
     name: s
     scenario: nowhere.yaml
     """, 2, "scenario", r"base scenario 'nowhere\.yaml' not found"),
    ("""
     name: s
     scenario: pd_pair.yaml
     vary:
       - random:
           n: 3
           params:
             rounds: {randint: [5, 2]}
     """, 7, "vary.0.random.params.rounds", r"low 5 is above high 2"),
])
def test_bad_sweep_files(tmp_path, capsys, body, line, field, pattern):
    path = write_sweep(tmp_path, body)
    with pytest.raises(ScenarioError) as info:
        load_sweep_spec(path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field), str(err)
    text = str(err)
    assert text.startswith(f"{path}:{line}"), text
    assert f"field '{field}'" in text and "Fix:" in text, text
    assert __import__("re").search(pattern, text), text
    # the CLI: exit 2, one line, no output directory, nothing ran
    code = main(["sweep", str(path), "--out", str(tmp_path / "runs")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: {text}"]
    assert not (tmp_path / "runs").exists()


def test_bad_base_scenario_points_at_base_file(tmp_path):
    path = write_sweep(tmp_path, GOOD)
    (tmp_path / "pd_pair.yaml").write_text(PAIR.read_text().replace("rounds: 3", "rounds: x"))
    with pytest.raises(ScenarioError, match=r"pd_pair\.yaml:\d+:\d+: field 'rounds'"):
        load_sweep_spec(path)


# --- expansion ---

def test_grid_zip_random_expansion(tmp_path):
    path = write_sweep(tmp_path, """
        name: s
        scenario: pd_pair.yaml
        seeds: [0, 7]
        vary:
          - grid:
              population.personality.mean.agreeableness: [0.2, 0.8]
              stages.1.decision: [sample, argmax]
          - zip:
              rounds: [1, 2, 3]
              stages.0.turns: [1, 2, 3]
          - random:
              n: 2
              seed: 5
              params:
                population.personality.sd: {uniform: [0.05, 0.3]}
                stages.0.memory: {randint: [0, 4]}
                stages.0.groups.redraw: {choice: [round, never]}
    """)
    sweep = load_sweep_spec(path)
    cells = sweep.cells
    assert len(cells) == 2 * 2 * 3 * 2 * 2
    assert [c.seed for c in cells[:4]] == [0, 7, 0, 7]  # seeds innermost
    assert cells[0].params["population.personality.mean.agreeableness"] == 0.2
    assert cells[0].params["stages.1.decision"] == "sample"
    assert {(c.params["rounds"], c.params["stages.0.turns"]) for c in cells} == \
        {(1, 1), (2, 2), (3, 3)}
    draws = {(c.params["population.personality.sd"], c.params["stages.0.memory"],
              c.params["stages.0.groups.redraw"]) for c in cells}
    assert len(draws) <= 2
    for sd, memory, redraw in draws:
        assert 0.05 <= sd <= 0.3 and 0 <= memory <= 4 and redraw in ("round", "never")
    # ids: unique and stable across loads (resume relies on them)
    assert len({c.id for c in cells}) == len(cells)
    assert [c.id for c in load_sweep_spec(path).cells] == [c.id for c in cells]
    assert [c.params for c in expand(sweep.spec)] == [c.params for c in cells]
    spec = sweep.scenario_for(cells[-1])
    assert spec.rounds == cells[-1].params["rounds"]
    assert spec.stages[1].decision == cells[-1].params["stages.1.decision"]


def test_random_is_seeded(tmp_path):
    body = """
        name: s
        scenario: pd_pair.yaml
        vary:
          - random:
              n: 5
              seed: {seed}
              params:
                population.personality.sd: {{uniform: [0.05, 0.3]}}
    """
    a = load_sweep_spec(write_sweep(tmp_path, body.format(seed=1), "a.yaml")).cells
    b = load_sweep_spec(write_sweep(tmp_path, body.format(seed=1), "b.yaml")).cells
    c = load_sweep_spec(write_sweep(tmp_path, body.format(seed=2), "c.yaml")).cells
    assert [x.params for x in a] == [x.params for x in b] != [x.params for x in c]


def test_apply_overrides_creates_mappings_and_copies():
    raw = {"population": {"size": 2}, "stages": [{"id": "a"}]}
    out = apply_overrides(raw, {"population.personality.sd": 0.2, "stages.0.memory": 1})
    assert out["population"]["personality"] == {"sd": 0.2}
    assert out["stages"][0] == {"id": "a", "memory": 1}
    assert raw == {"population": {"size": 2}, "stages": [{"id": "a"}]}


def test_example_sweep_validates(capsys):
    code = main(["sweep", str(ROOT / "scenarios" / "sweeps" / "pd_agreeableness.yaml"),
                 "--validate"])
    assert code == 0
    assert "ok" in capsys.readouterr().out


# --- the runner on local Ray ---

@pytest.fixture(scope="module")
def local_ray():
    from sim.executors.ray import init_ray, shutdown_ray

    init_ray(None, num_cpus=2)
    yield
    shutdown_ray()


def _manifest(root: Path) -> dict:
    return json.loads((root / "sweep.json").read_text())


def _cell_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


@pytest.mark.ray
def test_sweep_runs_resumes_and_loads(tmp_path, local_ray):
    from sim.sweep.runner import run_sweep

    sweep = load_sweep_spec(write_sweep(tmp_path, GOOD))
    result = run_sweep(sweep, out=tmp_path / "runs")
    root = result.path
    assert result.status == "complete" and root == (tmp_path / "runs" / "test-sweep").resolve()
    manifest = _manifest(root)
    ids = [c.id for c in sweep.cells]
    assert [c["id"] for c in manifest["cells"]] == ids
    assert all(c["status"] == "complete" and c["attempts"] == 1 and c["node"]
               for c in manifest["cells"])
    assert _cell_dirs(root) == sorted(ids)  # no staging or partial directory left
    for cell in sweep.cells:
        run = load_run(root / cell.id)
        assert run.manifest["status"] == "complete" and run.manifest["seed"] == cell.seed
        assert json.loads((root / cell.id / "cell.json").read_text())["params"] == cell.params
        mean = run.scenario["population"]["personality"]["mean"]["agreeableness"]
        assert mean == cell.params["population.personality.mean.agreeableness"]

    # load_sweep: one frame, swept parameters as columns
    loaded = load_sweep(root)
    key = "population.personality.mean.agreeableness"
    assert loaded.params == [key]
    assert loaded.cells.height == 4 and set(loaded.cells["status"]) == {"complete"}
    assert {key, "cell_id", "seed"} <= set(loaded.events.columns)
    assert sorted(loaded.events[key].unique().to_list()) == [0.2, 0.8]
    assert loaded.events.height == sum(load_run(root / i).events.height for i in ids)
    assert loaded.agents.group_by("cell_id").len().height == 4

    # --resume on a finished sweep runs nothing
    before = {i: (root / i / "manifest.json").stat().st_mtime_ns for i in ids}
    again = run_sweep(sweep, out=tmp_path / "runs", resume=True)
    assert again.status == "complete"
    assert {i: (root / i / "manifest.json").stat().st_mtime_ns for i in ids} == before
    assert [c["attempts"] for c in _manifest(root)["cells"]] == [1, 1, 1, 1]

    # without --resume the directory is refused
    with pytest.raises(RunError, match="--resume"):
        run_sweep(sweep, out=tmp_path / "runs")

    # an interrupted sweep (two cells missing): --resume runs only those
    for i in ids[1:3]:
        shutil.rmtree(root / i)
    resumed = run_sweep(sweep, out=tmp_path / "runs", resume=True)
    assert resumed.status == "complete" and _cell_dirs(root) == sorted(ids)
    after = {i: (root / i / "manifest.json").stat().st_mtime_ns for i in ids}
    assert [i for i in ids if after[i] != before[i]] == ids[1:3]
    assert len(_manifest(root)["invocations"]) == 3


@pytest.mark.ray
def test_failing_cell_is_retried_then_marked_failed(tmp_path, local_ray, capsys):
    from sim.sweep.runner import run_sweep
    from tests.support.faults import FailCells

    path = write_sweep(tmp_path, GOOD)
    sweep = load_sweep_spec(path)
    flaky, broken = sweep.cells[0].id, sweep.cells[2].id
    result = run_sweep(sweep, out=tmp_path / "runs",
                       hooks=FailCells({flaky: 1, broken: 99}))
    root = result.path
    cells = {c["id"]: c for c in result.manifest["cells"]}
    assert result.status == "failed"
    assert cells[flaky]["status"] == "complete" and cells[flaky]["attempts"] == 2
    assert len(cells[flaky]["errors"]) == 1 and "test hook" in cells[flaky]["errors"][0]["error"]
    assert cells[broken]["status"] == "failed" and cells[broken]["attempts"] == 2  # 1 + 1 retry
    others = [c for i, c in cells.items() if i not in (flaky, broken)]
    assert all(c["status"] == "complete" and c["attempts"] == 1 for c in others)
    assert _cell_dirs(root) == sorted(i for i in cells if i != broken)

    # resume with the fault gone: only the failed cell runs
    before = {i: (root / i / "manifest.json").stat().st_mtime_ns for i in cells if i != broken}
    code = main(["sweep", str(path), "--resume", "--out", str(tmp_path / "runs"), "--quiet"])
    assert code == 0, capsys.readouterr()
    assert "4 complete, 0 failed" in capsys.readouterr().out
    assert {i: (root / i / "manifest.json").stat().st_mtime_ns for i in before} == before
    assert _cell_dirs(root) == sorted(cells)


@pytest.mark.ray
def test_cohort_batches_cells_and_matches_single_runs(tmp_path, local_ray, tiny_model_path):
    """Cells run in lock-step (one backend call per wave for all cells) record the same
    events as each cell run alone."""
    from sim.backends.factory import open_backend
    from sim.run.runner import run_scenario
    from sim.scenario.loader import LoadedScenario
    from sim.sweep.runner import run_sweep

    body = GOOD.replace("run: {backend: scripted}",
                        f"run: {{backend: hf, model: '{tiny_model_path}', dtype: float32, "
                        "max_new_tokens: 8}")
    sweep = load_sweep_spec(write_sweep(tmp_path, body))
    result = run_sweep(sweep, out=tmp_path / "runs")
    assert result.status == "complete"
    backend = open_backend(sweep.run)
    for cell in sweep.cells:
        config = sweep.run.model_copy(update={"seed": cell.seed, "out": tmp_path / "alone"})
        alone = run_scenario(LoadedScenario(spec=sweep.scenario_for(cell), path="<t>", raw={}),
                             config, backend=backend)
        a = load_run(alone.path).events.drop("run_id")
        b = load_run(result.path / cell.id).events.drop("run_id")
        assert a.height > 0
        # same text, choices, payoffs; option probabilities up to batching float noise
        assert a.drop("option_probs").equals(b.drop("option_probs")), cell.id
        for pa, pb in zip(a["option_probs"].to_list(), b["option_probs"].to_list(),
                          strict=True):
            assert (pa is None) == (pb is None)
            assert pa is None or max(abs(x - y) for x, y in zip(pa, pb, strict=True)) < 1e-6
        # the cell counted its own tokens, not its cohort's (cache hits depend on batching)
        ta, tb = (load_run(p).manifest["tokens"] for p in (alone.path, result.path / cell.id))
        assert (tb["prompt"], tb["new"]) == (ta["prompt"], ta["new"]), cell.id
    manifest = load_run(result.path / sweep.cells[0].id).manifest
    assert manifest["tokens"]["new"] > 0 and manifest["timings"]["model_s"] > 0


@pytest.mark.ray
def test_ray_executor_matches_local(tmp_path, local_ray):
    from sim.executors.ray import RayExecutor
    from sim.run.runner import run_scenario
    from sim.scenario.spec import RunConfig

    config = RunConfig(backend="scripted", seed=3, steps=4, out=tmp_path)
    scenario = ROOT / "scenarios" / "prisoners_dilemma.yaml"
    executor = RayExecutor.start(config, replicas=2)
    try:
        assert len(set(executor.pool.pids())) == 2
        remote = run_scenario(scenario, config, executor=executor)
        assert executor.stats.requests > 0 and executor.stats.waves > 0
    finally:
        executor.close()
    local = run_scenario(scenario, config)
    a, b = (load_run(o.path) for o in (remote, local))
    assert a.events.drop("run_id").equals(b.events.drop("run_id"))
    assert a.manifest["model"]["backend"] == "scripted"


class CountingBackend:
    """The scripted backend, counting the calls and requests that reach it."""

    def __init__(self):
        from sim.backends.scripted import ScriptedBackend

        self.inner = ScriptedBackend()
        self.calls = []

    @property
    def info(self):
        return self.inner.info

    def generate(self, requests):
        self.calls.append(("generate", len(requests)))
        return self.inner.generate(requests)

    def score(self, requests):
        self.calls.append(("score", len(requests)))
        return self.inner.score(requests)


def test_cohort_merges_the_waves_of_its_cells(tmp_path):
    """4 cells in a cohort cost the backend as many calls as 1 cell alone, 4x the rows."""
    from sim.sweep.cohort import run_cohort

    sweep = load_sweep_spec(write_sweep(tmp_path, GOOD))
    run_config = sweep.run.model_dump(mode="json", exclude={"out", "seed"})

    def jobs(cells):
        return [{"id": c.id, "params": c.params, "seed": c.seed, "attempt": 1,
                 "scenario": apply_overrides(sweep.base.raw, c.params), "sweep": "s.yaml",
                 "sweep_name": "s"} for c in cells]

    one, four = CountingBackend(), CountingBackend()
    run_cohort(jobs(sweep.cells[:1]), run_config, str(tmp_path / "st1"), str(tmp_path / "one"),
               node="local", backend=one)
    out = run_cohort(jobs(sweep.cells), run_config, str(tmp_path / "st4"),
                     str(tmp_path / "four"), node="local", backend=four)
    assert all(r["status"] == "complete" for r in out.values())
    assert len(four.calls) == len(one.calls) > 0
    assert [n for _, n in four.calls] == [4 * n for _, n in one.calls]
    assert _cell_dirs(tmp_path / "four") == sorted(c.id for c in sweep.cells)
    assert not (tmp_path / "st4").exists()
    # each cell counts its own share of the merged waves: as much as when it ran alone
    first = sweep.cells[0].id
    alone, merged = (json.loads((tmp_path / d / first / "manifest.json").read_text())
                     for d in ("one", "four"))
    assert alone["events"] > 0
    for key in ("events", "tokens", "failures", "steps_completed"):
        assert merged[key] == alone[key], key
    alone_stats, merged_stats = (
        engine_state_at(tmp_path / d / first,
                        checkpoint_steps(tmp_path / d / first)[-1])["executor"]
        for d in ("one", "four"))
    for key in ("requests", "waves", "calls"):
        assert merged_stats[key] == alone_stats[key], key
    assert alone_stats["requests"] == alone["events"]  # one request per event of pd_pair


@pytest.mark.ray
def test_cli_run_with_ray_executor(tmp_path, local_ray, capsys):
    scenario = str(ROOT / "scenarios" / "prisoners_dilemma.yaml")
    code = main(["run", scenario, "--backend", "scripted", "--steps", "2", "--executor", "ray",
                 "--ray-replicas", "2", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    run = load_run(capsys.readouterr().out.strip())
    assert run.manifest["status"] == "complete" and run.events.height > 0


def test_cli_ray_flags_need_the_ray_executor(tmp_path, capsys):
    scenario = str(ROOT / "scenarios" / "prisoners_dilemma.yaml")
    code = main(["run", scenario, "--backend", "scripted", "--ray-replicas", "2",
                 "--out", str(tmp_path)])
    assert code == 2
    assert "need --executor ray" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_sweep_help_shows_a_worked_example(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "traitlab sweep scenarios/sweeps/pd_agreeableness.yaml" in out
    assert "--ray-address" in out and "--resume" in out and "--max-retries" in out


@pytest.mark.ray
def test_gpu_sweep_without_gpu_nodes_is_refused(tmp_path, local_ray):
    from sim.sweep.runner import run_sweep

    body = GOOD.replace("run: {backend: scripted}", "run: {backend: scripted, device: cuda}")
    sweep = load_sweep_spec(write_sweep(tmp_path, body))
    with pytest.raises(RunError, match=r"no node of the Ray cluster has a GPU; 4 cells"):
        run_sweep(sweep, out=tmp_path / "runs")
    assert _cell_dirs(tmp_path / "runs" / "test-sweep") == []
