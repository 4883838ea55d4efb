"""Crash and resume: SIGKILL a run at exact points, resume it, get identical event records.

The kill points are the run's hook points (:mod:`sim.records.hooks`): each run is the
``traitlab`` command line started through ``tests.support.faults kill POINT:STEP``, which
passes a hook that SIGKILLs the process there. The killed runs of one backend are started
together so that the module stays well under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sim.backends.scripted import ScriptedBackend
from sim.records.checkpoint import checkpoint_steps
from sim.requests import ScoreRequest, ScoreResult
from sim.run.runner import resume_run, run_scenario
from sim.scenario.spec import RunConfig
from tests.conftest import SCENARIOS
from tests.support.faults import killed_runs

if TYPE_CHECKING:
    from sim.backends.hf.backend import HFBackend

PD = SCENARIOS / "prisoners_dilemma.yaml"
SEED = 3
# PD has 12 steps: chat (dialogue, 2 waves) in rounds 1 and 6, play (choice) every round.
SCRIPTED_KILLS = {
    "before-step:1": 0,       # right at the start: only the step-0 checkpoint exists
    "in-wave:7": 6,           # inside the chat of round 6, after its first wave
    "after-shard:3": 2,       # shard 3 written, its checkpoint not: shard 3 is stale
    "after-checkpoint:5": 5,  # checkpoint 5 written, the manifest still says 4 steps
    "finish:12": 12,          # while writing the final manifest (a temp file is left)
}
HF_KILLS = {"in-wave:3": 2, "after-shard:2": 1}
HF_STEPS = 3
_SORT = ["replica", "step", "kind", "group", "turn", "agent"]


def _kill_all(root: Path, points: dict[str, int], backend_args: list[str]) -> dict[str, Path]:
    """Start one run per kill point at once; wait; return each point's run directory."""
    return killed_runs(root, PD, points, ["--seed", str(SEED), *backend_args])


def _events(run_dir: Path) -> pl.DataFrame:
    shards = sorted((run_dir / "events").glob("step-*.parquet"))
    return pl.concat([pl.read_parquet(s) for s in shards]).sort(_SORT)


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def _checkpoint_step(run_dir: Path) -> int:
    return checkpoint_steps(run_dir)[-1]


def _prompts(run_dir: Path) -> pl.DataFrame:
    shards = sorted((run_dir / "prompts").glob("step-*.parquet"))
    return pl.concat([pl.read_parquet(s).with_columns(pl.lit(s.name).alias("shard"))
                      for s in shards])


def _assert_resumed_like(run_dir: Path, reference: Path) -> None:
    assert_frame_equal(_events(run_dir), _events(reference))
    ref_shards = sorted(p.name for p in (reference / "events").iterdir())
    assert sorted(p.name for p in (run_dir / "events").iterdir()) == ref_shards
    # every prompt stored once, in the shard of the step that first sent it
    assert_frame_equal(_prompts(run_dir), _prompts(reference))
    manifest, ref = _manifest(run_dir), _manifest(reference)
    assert manifest["status"] == "complete"
    for key in ("steps_completed", "events", "failures", "retries"):
        assert manifest[key] == ref[key], key
    # prompt-cache hits depend on how waves were batched (a resumed run starts cold)
    for key in ("prompt", "new"):
        assert manifest["tokens"][key] == ref["tokens"][key], key
    assert len(manifest["timings"]["steps"]) == manifest["steps_completed"]
    assert len(manifest["resumes"]) == 1
    assert not list(run_dir.rglob("*.tmp"))


class _Broken(ScriptedBackend):
    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        raise RuntimeError("backend died")


def _assert_uncommitted_shard_is_dropped(run_dir: Path) -> None:
    """Shard 3 is on disk but not checkpointed: a resume that fails in step 3 drops it."""
    shard = run_dir / "events" / "step-000003.parquet"
    prompts = run_dir / "prompts" / "step-000003.parquet"
    assert shard.exists() and prompts.exists()
    with pytest.raises(RuntimeError, match="backend died"):
        resume_run(run_dir, backend=_Broken())
    assert not shard.exists() and not prompts.exists()
    manifest = _manifest(run_dir)
    assert (manifest["status"], manifest["steps_completed"]) == ("failed", 2)
    assert manifest["events"] == _events(run_dir).height
    manifest["resumes"].clear()  # so that the final check sees the one successful resume
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def scripted_kills(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Run directories of PD runs (scripted backend) killed at each point."""
    yield _kill_all(tmp_path_factory.mktemp("killed"), SCRIPTED_KILLS, ["--backend", "scripted"])


@pytest.fixture(scope="module")
def scripted_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run of the same seed."""
    config = RunConfig(backend="scripted", seed=SEED, out=tmp_path_factory.mktemp("ref"))
    return run_scenario(PD, config).path


@pytest.mark.parametrize("point", list(SCRIPTED_KILLS))
def test_sigkilled_scripted_run_resumes_to_identical_records(
        point: str, scripted_kills: dict[str, Path], scripted_reference: Path) -> None:
    run_dir = scripted_kills[point]
    assert _manifest(run_dir)["status"] == "running"
    assert _checkpoint_step(run_dir) == SCRIPTED_KILLS[point]
    if point.startswith("after-shard"):  # a shard exists that no checkpoint covers
        _assert_uncommitted_shard_is_dropped(run_dir)
    if point.startswith("finish"):  # the final manifest never became visible
        assert list(run_dir.glob(".manifest.json.*.tmp"))
    outcome = resume_run(run_dir)
    assert (outcome.path, outcome.status, outcome.steps) == (run_dir, "complete", 12)
    _assert_resumed_like(run_dir, scripted_reference)


@pytest.fixture(scope="module")
def hf_args(tiny_model_path: Path) -> list[str]:
    """CLI flags of the hf backend on the tiny model in fp32."""
    return ["--backend", "hf", "--model", str(tiny_model_path), "--dtype", "float32",
            "--steps", str(HF_STEPS)]


@pytest.fixture(scope="module")
def hf_kills(tmp_path_factory: pytest.TempPathFactory, hf_args: list[str]) -> dict[str, Path]:
    """Run directories of short PD runs (hf backend) killed at each point."""
    return _kill_all(tmp_path_factory.mktemp("hf-killed"), HF_KILLS, hf_args)


@pytest.fixture(scope="module")
def hf_backend(tiny_model_path: Path) -> HFBackend:
    """One fp32 tiny-model backend shared by the reference and the resumes."""
    from sim.backends.hf.backend import HFBackend

    return HFBackend(str(tiny_model_path), dtype="float32")


@pytest.fixture(scope="module")
def hf_reference(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path,
                 hf_backend: HFBackend) -> Path:
    """The uninterrupted hf run of the same seed and step limit."""
    config = RunConfig(backend="hf", model=str(tiny_model_path), dtype="float32", seed=SEED,
                       steps=HF_STEPS, out=tmp_path_factory.mktemp("hf-ref"))
    return run_scenario(PD, config, backend=hf_backend).path


@pytest.mark.parametrize("point", list(HF_KILLS))
def test_sigkilled_hf_run_resumes_to_identical_records(
        point: str, hf_kills: dict[str, Path], hf_reference: Path,
        hf_backend: HFBackend) -> None:
    run_dir = hf_kills[point]
    assert _checkpoint_step(run_dir) == HF_KILLS[point]
    outcome = resume_run(run_dir, backend=hf_backend)
    assert outcome.status == "complete"
    events = _events(run_dir)
    assert events.filter(kind="message")["text"].str.len_chars().sum() > 0  # real generations
    _assert_resumed_like(run_dir, hf_reference)
