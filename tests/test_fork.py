"""``traitlab fork``: a run continued from another's step, sharing its history by reference."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from analysis.io import load_run
from sim.cli.main import main
from sim.errors import RunError, RunInterrupted
from sim.records import doc
from sim.run.fork import fork_run
from sim.run.runner import resume_run, run_scenario
from sim.scenario.spec import RunConfig
from tests.conftest import SCENARIOS

PD = SCENARIOS / "prisoners_dilemma.yaml"
GATED = SCENARIOS / "public_goods_gated.yaml"
AT = 7


def _events(run_dir: Path) -> pl.DataFrame:
    """A directory's own event shards (not its lineage's)."""
    shards = sorted((run_dir / "events").glob("step-*.parquet"))
    return pl.read_parquet(shards) if shards else pl.DataFrame()


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return run_scenario(PD, RunConfig(backend="scripted", seed=0, out=out)).path


def test_a_fork_without_change_reproduces_the_parent_after_the_step(parent: Path):
    fork = fork_run(parent, AT)
    assert fork.status == "complete" and fork.path.parent == parent.parent
    mine = _events(fork.path)
    assert mine["step"].min() == AT + 1
    assert mine.equals(_events(parent).filter(pl.col("step") > AT))
    # shared, not copied: no shard of a step <= AT in the fork, and far fewer bytes
    for folder in ("events", "prompts", "surveys", "state"):
        steps = [int(p.stem[5:]) for p in (fork.path / folder).glob("step-*.parquet")]
        assert all(s > AT for s in steps), folder
    assert _bytes(fork.path / "events") < _bytes(parent / "events") / 2
    run, whole = load_run(fork.path), load_run(parent)
    assert run.events.drop("run_id").equals(whole.events.drop("run_id"))
    assert run.prompts.drop("run_id").sort("prompt_hash").equals(
        whole.prompts.drop("run_id").sort("prompt_hash"))
    assert run.lineage == ((parent.name, AT),)
    manifest = run.manifest
    assert manifest["parent"] == {"run_dir": f"../{parent.name}", "run_id": parent.name,
                                  "step": AT, "spec_hash": whole.manifest["spec_hash"]}
    assert manifest["steps_completed"] == whole.manifest["steps_completed"]
    assert manifest["events"] == whole.manifest["events"]
    assert set(manifest) <= set(doc.MANIFEST_KEYS)
    first = json.loads((fork.path / "checkpoints" / f"step-{AT:06d}.json").read_text())
    assert first["kind"] == "full" and first["prev"] is None
    assert set(first) == {*doc.CHECKPOINT_KEYS, "parent"}
    assert set(first["parent"]["files"]) >= {f"events/step-{s:06d}.parquet"
                                             for s in range(1, AT + 1)}


def test_a_new_seed_changes_the_draws_and_is_recorded(parent: Path):
    fork = load_run(fork_run(parent, AT, seed="new").path)
    draws = fork.manifest["fork"]["draw_seeds"]
    assert fork.manifest["fork"]["seed"] == "new" and draws != [0]
    after = fork.events.filter(pl.col("step") > AT)
    before = load_run(parent).events.filter(pl.col("step") > AT)
    assert not after.drop("run_id").equals(before.drop("run_id"))
    again = load_run(fork_run(parent, AT, seed="new").path)  # derived, so the same again
    assert again.manifest["fork"]["draw_seeds"] == draws
    assert again.events.drop("run_id").equals(fork.events.drop("run_id"))


def test_a_changed_fork_differs_only_after_the_step(tmp_path: Path):
    base = run_scenario(GATED, RunConfig(backend="scripted", seed=1, out=tmp_path)).path
    fork = fork_run(base, 5, overrides=["params.punishment=1"])
    run, whole = load_run(fork.path), load_run(base)
    assert set(whole.events["stage"]) == {"contribute"}
    early = run.events.filter(pl.col("step") <= 5).drop("run_id")
    assert early.equals(whole.events.filter(pl.col("step") <= 5).drop("run_id"))
    punish = run.events.filter(pl.col("stage") == "punish")
    assert punish["round"].min() == 6 and punish["step"].min() == 7  # round 6: steps 6, 7
    assert run.manifest["overrides"] == {"params.punishment": 1}
    assert run.manifest["steps_completed"] == 5 + 2 * 5


def test_a_fork_of_a_fork_and_its_lineage(parent: Path):
    first = fork_run(parent, AT, seed="new").path
    second = fork_run(first, AT + 2).path
    run = load_run(second)
    assert run.lineage == ((first.name, AT + 2), (parent.name, AT))
    assert _events(second)["step"].min() == AT + 3
    assert run.events.drop("run_id").equals(load_run(first).events.drop("run_id"))
    with pytest.raises(RunError, match="fork its parent for earlier steps"):
        fork_run(first, AT - 1)


def test_a_killed_fork_resumes_to_the_same_records(parent: Path, tmp_path: Path):
    reference = fork_run(parent, AT, overrides=["rounds=12"], seed="new").path

    def stop(report) -> None:
        if report.step == AT + 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        fork_run(parent, AT, overrides=["rounds=12"], seed="new", callbacks=[stop])
    (killed,) = [p for p in parent.parent.iterdir() if json.loads(
        (p / "manifest.json").read_text())["status"] == "interrupted"]
    assert json.loads((killed / "manifest.json").read_text())["status"] == "interrupted"
    assert resume_run(killed).status == "complete"
    assert load_run(killed).events.drop("run_id").equals(
        load_run(reference).events.drop("run_id"))


def test_a_missing_or_changed_parent_is_refused(tmp_path: Path):
    base = run_scenario(PD, RunConfig(backend="scripted", seed=2, out=tmp_path)).path
    fork = fork_run(base, 3).path
    shard = base / "events" / "step-000002.parquet"
    data = shard.read_bytes()
    shard.write_bytes(data[:-8])
    with pytest.raises(RunError, match=r"step-000002\.parquet changed after the fork"):
        load_run(fork)
    shard.write_bytes(data)
    assert load_run(fork).events["step"].min() == 1
    base.rename(base.with_name("moved"))
    with pytest.raises(RunError, match=r"whose directory .* is missing"):
        load_run(fork)
    with pytest.raises(RunError, match="is missing"):
        fork_run(fork, 5)  # a fork of a fork checks the history it would share


@pytest.mark.parametrize(("args", "message"), [
    (["--at", "99"], "--at 99: .* has checkpoints of steps 0 to 12"),
    (["--at", "12"], "--at 12: the run ended at step 12"),
    (["--at", "3", "--set", "population.size=8"], "cannot change population"),
    (["--at", "3", "--set", "params.x"], "--set params.x"),
    (["--at", "7", "--set", "rounds=1"], r"--set rounds=1: the fork step 7 is in round [2-9], "
                                          r"after the last round .* Fix: set rounds to"),
    (["--at", "3", "--replicas", "0"], r"--replicas 0: .* Fix: pass --replicas from 1 to 1,000"),
    (["--at", "3", "--replicas", "5000"], r"--replicas 5000: a fork set makes 1 to 1,000 "),
])
def test_bad_fork_requests_are_one_line_errors(parent: Path, capsys, args, message):
    assert main(["fork", str(parent), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert re.search(message, err), err


def test_a_missing_run_is_a_one_line_error(tmp_path: Path, capsys):
    assert main(["fork", str(tmp_path / "nothing"), "--at", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run directory" in err


def test_a_file_given_as_the_run_is_a_one_line_error(parent: Path, capsys):
    assert main(["fork", str(parent / "manifest.json"), "--at", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run directory" in err and " Fix: " in err, err


def test_the_cli_prints_the_fork(parent: Path, capsys):
    assert main(["fork", str(parent), "--at", str(AT), "--quiet"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert _events(path).equals(_events(parent).filter(pl.col("step") > AT))


def test_tiny_hf_fork_without_change_reproduces_the_parent(tmp_path: Path,
                                                            tiny_model_path: Path):
    from sim.backends.hf.backend import HFBackend

    backend = HFBackend(str(tiny_model_path), dtype="float32")
    config = RunConfig(backend="hf", model=str(tiny_model_path), dtype="float32", seed=0,
                       steps=4, out=tmp_path)
    base = run_scenario(PD, config, backend=backend).path
    fork = fork_run(base, 2, backend=backend).path
    mine = _events(fork)
    assert mine.height > 0 and (mine["status"] == "ok").all()
    assert mine.equals(_events(base).filter(pl.col("step") > 2))


def test_the_view_of_a_fork_shows_its_parents_steps(parent: Path):
    """The live reader follows the lineage: every step, the parent's before the fork."""
    from analysis.live import LiveRun

    first = fork_run(parent, AT, seed="new").path
    second = fork_run(first, AT + 2).path
    live, whole = LiveRun(second), load_run(second)
    assert live.committed == whole.manifest["steps_completed"]
    assert live.events.drop("run_id", strict=False).sort("step", "agent", "kind").equals(
        whole.events.drop("run_id").sort("step", "agent", "kind"))
    assert live.owner(AT) == parent and live.owner(AT + 1) == first
    assert live.owner(AT + 3) == second
    memory_at_fork = live.engine_state(AT)
    assert memory_at_fork is not None and memory_at_fork["steps_done"] == AT


@pytest.mark.parametrize(("tamper", "message"), [
    ("delete", r"events/step-000003\.parquet is missing, but the run committed it by step 5"),
    ("edit", r"events/step-000003\.parquet changed after it was committed"),
    ("plant", r"surveys/step-000002\.parquet was not written by this run"),
])
def test_a_parent_whose_shared_history_was_tampered_is_refused(tmp_path: Path, capsys,
                                                               tamper: str, message: str):
    parent = run_scenario(PD, RunConfig(backend="scripted", seed=0, out=tmp_path / "p",
                                        steps=6)).path
    shard = parent / "events" / "step-000003.parquet"
    if tamper == "delete":
        shard.unlink()
    elif tamper == "edit":
        shard.write_bytes(shard.read_bytes()[:-8])
    else:  # a scenario without surveys: a planted file
        (parent / "surveys").mkdir(exist_ok=True)
        (parent / "surveys" / "step-000002.parquet").write_bytes(shard.read_bytes())
    out = tmp_path / "forks"
    assert main(["fork", str(parent), "--at", "5", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err) and " Fix: " in err, err
    assert not out.exists() or not any(out.rglob("manifest.json"))
    assert main(["fork", str(parent), "--at", "1", "--out", str(out), "--quiet"]) == 0


def test_a_sweep_given_as_the_run_names_its_cells(tmp_path: Path, capsys):
    (tmp_path / "sweep.json").write_text("{}")
    assert main(["fork", str(tmp_path), "--at", "3"]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path} is not a run directory (no manifest.json). Fix: it is a sweep: pass "
        f"one of its cells, e.g. {tmp_path}/<cell-id>.\n")


def test_an_unreadable_checkpoint_is_named_with_a_fix(tmp_path: Path, capsys):
    parent = run_scenario(PD, RunConfig(backend="scripted", seed=0, out=tmp_path, steps=4)).path
    (parent / "checkpoints" / "step-000003.json").write_text('{"step": 3')
    assert main(["fork", str(parent), "--at", "3", "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read {parent}/checkpoints/step-000003.json: ") and \
        err.endswith("; refusing to use it. Fix: restore the file, or start a new run.\n"), err
