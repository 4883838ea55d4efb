"""The analysis notebooks execute end to end on a scripted run and print the right numbers.

The kernel is launched with this interpreter (``sys.executable``) through a throwaway
kernelspec, so the test works in a clean venv without ``ipykernel install``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import numpy as np
import polars as pl
import pytest
from nbclient import NotebookClient

from analysis import alignment, drift, norms
from analysis.io import load_run
from analysis.synthetic import synthetic_surveys
from sim.run.runner import run_scenario
from sim.scenario.spec import RunConfig

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "analysis" / "notebooks"
KERNEL = "traitlab-test-python"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scripted prisoner's-dilemma run made by the test itself."""
    out = tmp_path_factory.mktemp("runs")
    return run_scenario(str(ROOT / "scenarios" / "prisoners_dilemma.yaml"),
                        RunConfig(backend="scripted", out=out, seed=1)).path


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_dir: Path) -> str:
    """A kernelspec running ``sys.executable``; TRAITLAB_RUN points at the test's run."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "TraitLab test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("TRAITLAB_RUN", str(run_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return KERNEL


def _execute(name: str, kernel: str) -> str:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit notebooks with outputs cleared"
    NotebookClient(nb, timeout=300, kernel_name=kernel,
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", ""))
            texts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def test_norms_notebook(kernel_env: str, run_dir: Path) -> None:
    out = _execute("norms", kernel_env)
    rate = norms.cooperation_rate(load_run(run_dir).events, stage="play")
    assert rate.height == 10
    for r in rate.iter_rows(named=True):
        assert f"round {r['round']}: cooperation {r['cooperation']:.4f} (n={r['n']})" in out


def test_alignment_notebook(kernel_env: str, run_dir: Path) -> None:
    out = _execute("alignment", kernel_env)
    pairs = alignment.lsm(load_run(run_dir).events)
    assert f"mean LSM: {pairs['lsm'].mean():.4f} over {pairs.height} pairs" in out


def test_drift_notebook(kernel_env: str) -> None:
    out = _execute("drift", kernel_env)
    assert "using SYNTHETIC surveys" in out
    _, surveys = synthetic_surveys(np.random.default_rng(0), drift={"agreeableness": 0.05})
    tests = drift.detect_drift(drift.trait_scores(surveys))
    flagged = tests.filter(pl.col("drift"))["trait"].to_list()
    assert "agreeableness" in flagged
    assert f"drift flagged: {', '.join(flagged)}" in out
