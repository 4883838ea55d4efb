"""A killed and resumed replicate suite sends the model the batches of an uninterrupted one.

In bf16 a row's logits depend in their last bits on the other rows of its batch, so a resumed
suite reproduces an uninterrupted one's records only if every batch from the resume point on
has the same rows. The scripted backend here logs each call's requests; a suite killed at
points between and inside the cells' commits of a step is resumed, and its calls must be the
tail of the uninterrupted suite's calls, its records and scorecard the same.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from analysis.replicate import score_suite
from sim.scenario.spec import RunConfig
from sim.sweep.replicate import run_suite
from sim.sweep.suite import load_suite
from tests.support.wave_log import SUITE, CellFault, WaveLog

ROOT = Path(__file__).resolve().parents[1]
CONFIG = RunConfig(backend="scripted", replicas=2, seed=0)
# cells in cohort order: beauty (4 steps), dictator (6), ultimatum (12), pd_oneshot (1),
# pd_chat (2)
FILES = ("agents.parquet", "network.parquet", "events", "surveys", "prompts")


def _run(out: Path, hooks: CellFault | None = None) -> list[list[str]]:
    backend = WaveLog()
    run_suite(load_suite().select(SUITE), CONFIG, out, policies="human", backend=backend,
              hooks=hooks)
    return backend.waves


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("fresh")
    return out, _run(out)


def _frames(cell: Path) -> dict[str, pl.DataFrame]:
    out = {}
    for name in FILES:
        paths = [cell / name] if name.endswith(".parquet") else sorted(
            (cell / name).glob("*.parquet"))
        frames = [pl.read_parquet(p) for p in paths if p.exists()]
        out[name] = (pl.concat(frames, how="diagonal_relaxed").drop("run_id", strict=False)
                     if frames else pl.DataFrame())
    return out


def _same_records(a: Path, b: Path) -> None:
    cells = sorted(p.name for p in (a / "cells").iterdir())
    assert cells == sorted(p.name for p in (b / "cells").iterdir())
    for cell in cells:
        fa, fb = _frames(a / "cells" / cell), _frames(b / "cells" / cell)
        for name in FILES:
            assert fa[name].equals(fb[name]), f"{cell}/{name} differs"
    suite = load_suite().select(SUITE)
    assert score_suite(a, suite, seed=0).to_json() == score_suite(b, suite, seed=0).to_json()


def _tail_of(resumed: list[list[str]], full: list[list[str]]) -> None:
    assert resumed, "the resume sent nothing"
    assert resumed == full[len(full) - len(resumed):], (
        "the resumed suite's calls are not the uninterrupted suite's last calls")


@pytest.mark.parametrize(("cell", "where"), [
    ("beauty", "after-shard:1"),        # step 1: beauty's shard, no cell committed step 1
    ("dictator", "after-shard:3"),      # between commits: beauty at 3, the others at 2
    ("ultimatum", "after-checkpoint:2"),  # pd_chat (its last step) not committed yet
    ("pd_chat", "finish:2"),            # every cell at 2, pd_chat finished, not published
    ("beauty", "before-step:4"),
    ("dictator", "in-wave:5"),
    ("beauty", "finish:4"),
    ("ultimatum", "after-shard:12"),    # the last cell alone, at its last step
])
def test_interrupted_suite_resumes_with_the_same_batches(tmp_path, uninterrupted, cell, where):
    full_out, full = uninterrupted
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "s", CellFault(cell, where, kill=False))
    resumed = _run(tmp_path / "s")
    _tail_of(resumed, full)
    step = int(where.split(":")[1])
    if step >= 3:  # continued from a checkpoint, not from the cells' start
        assert len(resumed) < len(full) - 1
    _same_records(tmp_path / "s", full_out)
    assert not (tmp_path / "s" / ".staging").exists()


def test_interrupted_twice_still_resumes_with_the_same_batches(tmp_path, uninterrupted):
    full_out, full = uninterrupted
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "s", CellFault("dictator", "after-shard:3", kill=False))
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "s", CellFault("beauty", "after-checkpoint:4", kill=False))
    _tail_of(_run(tmp_path / "s"), full)
    _same_records(tmp_path / "s", full_out)


@pytest.mark.parametrize(("cell", "where"), [("dictator", "after-shard:3"),
                                             ("beauty", "finish:4")])
def test_killed_process_resumes_with_the_same_batches(tmp_path, uninterrupted, cell, where):
    """A SIGKILL (no handler runs, the locks die with the process) between two commits."""
    full_out, full = uninterrupted
    out, log = tmp_path / "s", tmp_path / "waves.jsonl"
    command = [sys.executable, "-m", "tests.support.wave_log", str(out), str(log)]
    killed = subprocess.run([*command, f"{cell}:{where}"], cwd=ROOT, capture_output=True,
                            timeout=120)
    assert killed.returncode != 0
    log.unlink()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    _tail_of([json.loads(line) for line in log.read_text().splitlines()], full)
    _same_records(out, full_out)
