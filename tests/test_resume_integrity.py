"""Resume trusts nothing it did not write: each tampering of an interrupted run directory is
refused with one line naming the file and the fix; a second writer is refused; a full disk
ends the run as ``interrupted`` and it resumes to the records of an uninterrupted run."""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sim.cli.main import main
from sim.engine.loop import Engine, StepReport
from sim.errors import RunError
from sim.records.checkpoint import _document_hash
from sim.records.recorder import Recorder, RunLock
from sim.run.runner import resume_run, run_scenario
from sim.scenario.spec import RunConfig

PD = Path("scenarios/prisoners_dilemma.yaml")


def _events(run_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(run_dir / "events").sort("replica", "step", "group", "turn", "agent")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run every resumed one must equal."""
    return run_scenario(PD, RunConfig(backend="scripted", seed=2,
                                      out=tmp_path_factory.mktemp("ref"))).path


def _interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int = 4) -> Path:
    original = Engine.step

    def step_or_interrupt(self: Engine) -> StepReport:
        if self.steps_done == step:
            raise KeyboardInterrupt
        return original(self)

    with monkeypatch.context() as patch:
        patch.setattr(Engine, "step", step_or_interrupt)
        with pytest.raises(KeyboardInterrupt):
            run_scenario(PD, RunConfig(backend="scripted", seed=2, out=tmp_path))
    (run_dir,) = (tmp_path / "prisoners-dilemma").iterdir()
    return run_dir


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _doc(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:06d}.json"


def _forget(doc: dict) -> None:
    """Drop an agent's memory delta from a checkpoint document (its hash then lies)."""
    (agent,) = [a for r in doc["engine"]["replicas"] for a in r["agents"].values()][:1]
    agent.pop("memory")


def _reseal(doc: dict) -> None:
    """Change a document and recompute its own hash: only the next one's link tells."""
    doc["engine"]["engine"]["steps_done"] = 2
    doc["progress"]["events"] += 1
    doc["sha256"] = _document_hash(doc)


def _legacy(run_dir: Path) -> None:
    """A run directory as versions before the chain wrote it: one checkpoint.json."""
    shutil.rmtree(run_dir / "checkpoints")
    (run_dir / "checkpoint.json").write_text(json.dumps({"format": 2, "step": 4}))


def _delete_shard(run_dir: Path) -> None:
    (run_dir / "events" / "step-000002.parquet").unlink()


def _truncate_shard(run_dir: Path) -> None:
    shard = run_dir / "events" / "step-000003.parquet"
    shard.write_bytes(shard.read_bytes()[:100])


def _swap_shards(run_dir: Path) -> None:
    one, two = (run_dir / "events" / f"step-00000{i}.parquet" for i in (1, 2))
    data = one.read_bytes()
    one.write_bytes(two.read_bytes())
    two.write_bytes(data)


def _foreign_shard(run_dir: Path) -> None:
    src = run_dir / "events" / "step-000001.parquet"
    (run_dir / "events" / "step-000000.parquet").write_bytes(src.read_bytes())


TAMPERING = {
    "deleted shard": (_delete_shard, "step-000002.parquet is missing, but the checkpoint at "
                                     "step 4 committed it; refusing to resume. Fix: restore"),
    "truncated shard": (_truncate_shard, "step-000003.parquet changed after it was committed"),
    "swapped shards": (_swap_shards, "step-000001.parquet changed after it was committed"),
    "foreign shard": (_foreign_shard, "step-000000.parquet was not written by this run"),
    "missing agents.parquet": (lambda d: (d / "agents.parquet").unlink(),
                               "agents.parquet is missing, but the checkpoint"),
    "edited network.parquet": (lambda d: (d / "network.parquet").write_bytes(b"PAR1"),
                               "network.parquet changed after it was committed"),
    "edited checkpoint step": (lambda d: _edit_json(_doc(d, 4), lambda c: c.update(step=2)),
                               "step-000004.json was changed after it was written"),
    "edited checkpoint memory": (lambda d: _edit_json(_doc(d, 2), _forget), "step-000002.json "
                                 "was changed after it was written"),
    "resealed checkpoint": (lambda d: _edit_json(_doc(d, 2), _reseal),
                            "step-000003.json does not follow the checkpoint of step 2"),
    "deleted checkpoint": (lambda d: _doc(d, 1).unlink(),
                           "step-000001.json is missing from the run's chain of checkpoints"),
    "edited seed": (lambda d: _edit_json(d / "manifest.json", lambda m: m.update(seed=5)),
                    "manifest.json says seed = 5 but the run was recorded with 2"),
    "edited run_config": (lambda d: _edit_json(d / "manifest.json", lambda m: m["run_config"]
                                               .update(temperature=0.1)),
                          "manifest.json says run_config = "),
    "checkpoint of an older format": (lambda d: _edit_json(_doc(d, 4),
                                                           lambda c: c.update(format=2)),
                                      "is not a TraitLab checkpoint of format 3"),
    "run of an older version": (_legacy, "checkpoint.json is not a TraitLab checkpoint of "
                                "format 3"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_run_is_refused_by_resume(case, tmp_path, monkeypatch, capsys):
    run_dir = _interrupted(tmp_path, monkeypatch)
    tamper, message = TAMPERING[case]
    tamper(run_dir)
    before = sorted(p.name for p in (run_dir / "events").iterdir())
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert message in err and "Fix: " in err, err
    assert sorted(p.name for p in (run_dir / "events").iterdir()) == before  # nothing touched
    assert json.loads((run_dir / "manifest.json").read_text())["status"] != "complete"


def test_untampered_interrupted_run_resumes_to_identical_records(tmp_path, monkeypatch,
                                                                  reference):
    run_dir = _interrupted(tmp_path, monkeypatch)
    assert resume_run(run_dir).status == "complete"
    assert_frame_equal(_events(run_dir), _events(reference))


def test_a_second_writer_is_refused(tmp_path, monkeypatch, reference):
    run_dir = _interrupted(tmp_path, monkeypatch)
    lock = RunLock(run_dir)  # another process resuming it holds this
    try:
        with pytest.raises(RunError, match=r"is being written by another process \(pid \d+\)"):
            resume_run(run_dir)
    finally:
        lock.release()
    assert resume_run(run_dir).status == "complete"  # once it is gone, resume proceeds
    assert_frame_equal(_events(run_dir), _events(reference))


def test_two_resumes_cannot_both_run(tmp_path, monkeypatch):
    run_dir = _interrupted(tmp_path, monkeypatch)
    seen: list[str] = []
    original = Engine.step

    def step_and_try_again(self: Engine) -> StepReport:
        if not seen:  # while the first resume writes, a second one starts
            try:
                resume_run(run_dir)
            except RunError as exc:
                seen.append(str(exc))
        return original(self)

    monkeypatch.setattr(Engine, "step", step_and_try_again)
    assert resume_run(run_dir).status == "complete"
    assert len(seen) == 1 and "being written by another process" in seen[0]


@pytest.mark.parametrize("at_step", [1, 3])
def test_full_disk_ends_the_run_interrupted_and_resumable(tmp_path, monkeypatch, capsys,
                                                          reference, at_step):
    original = Recorder._write_parquet

    def write_or_fail(self: Recorder, name: str, df: pl.DataFrame) -> None:
        if name == f"events/step-{at_step:06d}.parquet":
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path / name))
        original(self, name, df)

    with monkeypatch.context() as patch:
        patch.setattr(Recorder, "_write_parquet", write_or_fail)
        code = main(["run", str(PD), "--backend", "scripted", "--seed", "2", "--quiet",
                         "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"writing the run failed after step {at_step - 1}: No space left on device" in err
    assert "traitlab run --resume" in err
    (run_dir,) = (tmp_path / "prisoners-dilemma").iterdir()
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"
    assert resume_run(run_dir).status == "complete"
    assert_frame_equal(_events(run_dir), _events(reference))


@pytest.mark.parametrize(("name", "content"), [
    ("manifest.json", b"{"),
    ("scenario.yaml", b": : :\n"),
    ("agents.parquet", b"junk"),
    ("events/step-000002.parquet", b"junk"),
])
@pytest.mark.parametrize("command", ["analyze", "show", "view"])
def test_a_record_file_that_cannot_be_read_is_named(tmp_path, capsys, name, content, command):
    from sim.run.runner import run_scenario
    from sim.scenario.spec import RunConfig
    from tests.conftest import SCENARIOS

    run = run_scenario(SCENARIOS / "commons.yaml",
                       RunConfig(backend="scripted", seed=0, out=tmp_path, steps=3)).path
    (run / name).write_bytes(content)
    assert main([command, str(run)]) == 2  # the view refuses it before a server starts
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run / name} cannot be read (") and err.count("\n") == 1, err
    assert "it was changed after the run wrote it. Fix: restore it" in err
